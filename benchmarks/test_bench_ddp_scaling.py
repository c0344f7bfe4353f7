"""Training throughput with 1 vs. 2 data-parallel processes (torchrun, gloo on CPU).

Run: ``pytest benchmarks/test_bench_ddp_scaling.py -s``. Both configurations train
the MLP at tiny scale with the same per-rank batch (256) for one seeded run, one
after the other, and report train samples/s (evaluation excluded). On a 2-core
machine two processes with one thread each compete with the one 2-thread process
for the same cores, so the interesting figure is how much gloo's gradient
all-reduce costs, not a speed-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _throughput(nproc: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "greenperf.cli", "run", "mlp", "--runs", "1", "--out", out,
               "--quiet", "--no-energy", "--no-compliance", "--threads", str(threads)]
        if nproc > 1:
            cmd += ["--nproc-per-node", str(nproc)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
        doc = json.loads((Path(out) / "mlp_tiny_training.json").read_text())
    run = doc["phases"][0]["runs"][0]
    return {"processes": nproc, "threads_per_process": threads,
            "global_batch": doc["phases"][0]["recipe"]["batch_size"],
            "samples_per_s": run["train_throughput"], "tta_s": run["tta_seconds"],
            "samples_to_target": run["samples_to_target"],
            "foreign_cores": run["contention"]["foreign_cores"]}


def test_ddp_scaling_one_vs_two_processes(benchmark):
    def both():
        return [_throughput(1, 2), _throughput(2, 1)]

    single, double = benchmark.pedantic(both, rounds=1, iterations=1)
    ratio = double["samples_per_s"] / single["samples_per_s"]
    benchmark.extra_info.update({"one_process": single, "two_processes": double,
                                 "throughput_ratio": ratio})
    print(f"\n1 process x 2 threads: {single['samples_per_s']:,.0f} samples/s "
          f"(batch {single['global_batch']}, TTA {single['tta_s']:.1f} s)")
    print(f"2 processes x 1 thread: {double['samples_per_s']:,.0f} samples/s "
          f"(global batch {double['global_batch']}, TTA {double['tta_s']:.1f} s)")
    print(f"ratio {ratio:.2f}")
