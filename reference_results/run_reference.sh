#!/usr/bin/env bash
# Regenerate greenperf's reference results on this machine, then the RCP files.
# Usage: bash reference_results/run_reference.sh [SYSTEM_FOLDER]   (default: ci-2c-x86-cpu)
# Each workload runs 10 seeds (2x the 5 a submission needs, as the RCP method asks),
# one at a time, waiting for a quiet machine before each run. Threads are fixed at 2 (the
# machine's cores) rather than chosen from the load, so the reference system is one configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
system=${1:-ci-2c-x86-cpu}
out=reference_results/$system
for workload in mlp resnet bert_small; do
    greenperf run "$workload" --scale tiny --runs 10 --threads 2 --system "$out/system.toml" \
        --out "$out" --wait-quiet --quiet
done
greenperf rcp "$out" -o reference_results/rcps
