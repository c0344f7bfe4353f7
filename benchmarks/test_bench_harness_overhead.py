"""Harness training-loop throughput vs. a bare PyTorch loop (issue targets: >= 0.97).

Run: ``pytest benchmarks/test_bench_harness_overhead.py -s``. Needs a quiet
machine; the contention figure of the harness runs is in the result dicts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from greenperf.workload import available_workloads
from harness_vs_bare import compare  # noqa: E402

CASES = {"mlp": (400, 7), "resnet": (40, 5)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_harness_throughput_matches_bare_loop(name, benchmark):
    workloads = available_workloads()
    if name not in workloads:
        pytest.skip(f"workload {name} not installed")
    steps, rounds = CASES[name]
    result = benchmark.pedantic(compare, args=(workloads[name], "tiny", steps, rounds),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\n{name}: harness/bare = {result['ratio_median']:.3f} "
          f"(bare {result['bare_samples_per_s']:,.0f} samples/s, "
          f"harness {result['harness_samples_per_s']:,.0f} samples/s, "
          f"ratios {[round(r, 3) for r in result['ratios']]})")
    assert result["ratio_median"] >= 0.97
