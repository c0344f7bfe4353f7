"""Leaderboard render time vs. number of result files (issue target: 10,000 files in < 10 s,
growing linearly). Per-result pages and copied logs are included in every figure.

Run: ``pytest benchmarks/test_bench_leaderboard_scale.py -s``. Generating the synthetic
files takes longer than rendering them; only the render is timed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import resource
import time
from pathlib import Path
from typing import Any

import pytest
from greenperf.leaderboard import render_site
from greenperf.results import seal

SIZES = (1_000, 2_000, 5_000, 10_000)
RUNS = 5
WORKLOADS = (("mlp", "accuracy", 0.88), ("resnet", "accuracy", 0.7), ("bert_small", "f1", 0.8))
LOG_TEXT = "".join(f':::MLLOG {{"key": "eval_accuracy", "value": 0.{i:02d}}}\n' for i in range(40))


def _account() -> dict[str, Any] | None:
    """A real sustainability account shape, when the account module is installed."""
    try:
        from greenperf.account import build_account, resolve_settings
    except ImportError:
        return None
    doc = {"kind": "training", "config": {"device": "cpu"},
           "system": {"auto": {"logical_cpus": 8, "cpu_model": "CPU"}, "declared": {}},
           "phases": [_phase("mlp", "accuracy", 0.88, random.Random(0))]}
    return build_account(doc, resolve_settings())


def _run(index: int, rng: random.Random, target: float) -> dict[str, Any]:
    tta = rng.uniform(5, 500)
    evals = 10
    curve = [{"samples": 2048 * (i + 1), "seconds": tta * (i + 1) / evals,
              "metric": target * (0.6 + 0.42 * (i + 1) / evals)} for i in range(evals)]
    joules = tta * rng.uniform(20, 300)
    trace = [[round(tta * i / 10, 3), round(rng.uniform(10, 300), 3)] for i in range(11)]
    reading = {"component": "cpu", "source": "estimate-tdp", "label": "estimated",
               "joules": joules, "seconds": tta, "per_device": {"cpu": joules},
               "formula": "12 W per busy logical CPU x CPU-seconds", "power_trace": trace,
               "details": {}, "notes": [], "lower_bound": False}
    return {
        "index": index, "seed": index - 1, "status": "success", "abort_reason": None,
        "init_seconds": 1.0, "tta_seconds": tta, "samples_seen": 2048 * evals,
        "samples_to_target": 2048 * evals, "epochs": 2.0, "train_seconds": tta * 0.9,
        "eval_seconds": tta * 0.1, "train_throughput": 2048 * evals / tta, "evals": evals,
        "final_metric": curve[-1]["metric"], "eval_curve": curve, "peak_rss_bytes": 3 << 28,
        "cuda_max_allocated_bytes": None,
        "contention": {"foreign_cores": rng.uniform(0, 0.4), "threshold": 0.25,
                       "contended": False},
        "energy": {"name": f"train-run{index}", "seconds": tta, "total_joules": joules,
                   "label": "estimated", "lower_bound": False,
                   "joules_by_component": {"cpu": joules}, "readings": [reading], "notes": []},
        "log": {"path": f"logs/train/result_{index}.txt",
                "sha256": hashlib.sha256(LOG_TEXT.encode()).hexdigest()},
    }


def _phase(workload: str, metric: str, target: float, rng: random.Random) -> dict[str, Any]:
    runs = [_run(i, rng, target) for i in range(1, RUNS + 1)]
    times = sorted(r["tta_seconds"] for r in runs)
    return {"name": "train", "metric": metric, "target": target,
            "recipe": {"batch_size": 32, "eval_every": 2048, "max_samples": 10 ** 6,
                       "target": target},
            "dataset": {"name": f"{workload}-data", "source": "procedural", "checksum": "0" * 64,
                        "train_samples": 10_000, "eval_samples": 1_000, "nbytes": 3_000_000},
            "runs": runs,
            "score": {"method": "olympic_mean", "value": sum(times[1:-1]) / 3, "unit": "s",
                      "n_runs": RUNS, "n_success": RUNS, "reason": None,
                      "median": times[2], "std": 1.0, "ci95": [times[1], times[3]],
                      "dropped_runs": [1, 5]}}


def write_results(root: Path, count: int, seed: int = 0) -> None:
    """``count`` sealed result files, each in its own folder with its five MLLOG logs."""
    rng = random.Random(seed)
    account = _account()
    for i in range(count):
        workload, metric, target = WORKLOADS[i % len(WORKLOADS)]
        folder = root / f"sub{i // 500:03d}" / f"result{i:05d}"
        (folder / "logs" / "train").mkdir(parents=True)
        for k in range(1, RUNS + 1):
            (folder / "logs" / "train" / f"result_{k}.txt").write_text(LOG_TEXT)
        doc = {
            "schema_version": "1.0", "kind": "training",
            "generator": {"name": "greenperf", "version": "0.1.0"},
            "created_utc": "2026-01-01T00:00:00+00:00", "status": "complete",
            "status_reason": None, "workload": workload, "scale": "standard",
            "division": "closed", "origin": "greenperf",
            "system": {"name": f"system-{i % 997:03d}-{i}",
                       "auto": {"hostname": f"host{i}", "cpu_model": "Synthetic CPU",
                                "logical_cpus": 16, "memory_bytes": 1 << 36,
                                "gpus": {"available": False, "devices": []}},
                       "declared": {"submitter": f"org{i % 37}",
                                    "human_effort": {"porting_hours": 4, "tuning_hours": 2,
                                                     "hourly_rate": 90, "currency": "EUR"}},
                       "declared_source": None},
            "software": {"python": "3.11", "torch": "2.13.0"},
            "config": {"workload": workload}, "config_hash": "0" * 64,
            "phases": [_phase(workload, metric, target, rng)],
            "sustainability": copy.deepcopy(account),
            "compliance": {"rulesets": ["6.0.0"], "findings": [
                {"log": f"logs/train/result_{k}.txt", "ruleset": "6.0.0", "passed": True,
                 "messages": [], "run": k, "phase": "train"} for k in range(1, RUNS + 1)]},
        }
        (folder / f"{workload}_standard_training.json").write_text(json.dumps(seal(doc)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("leaderboard-scale")
    write_results(root / "results", max(SIZES))
    return root


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the render workers)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _subset(corpus: Path, count: int) -> list[Path]:
    """The first ``count`` result folders (500 per sub-folder)."""
    subs = sorted((corpus / "results").iterdir())
    return subs[:count // 500]


@pytest.mark.parametrize("count", SIZES)
def test_render_time_scales_linearly(corpus: Path, count: int, benchmark) -> None:
    out = corpus / f"site-{count}"

    def render() -> tuple[float, float]:
        cpu_before = _cpu_seconds()
        begin = time.perf_counter()
        summary = render_site(_subset(corpus, count), out)
        assert summary.pages == count and not summary.skipped
        return time.perf_counter() - begin, _cpu_seconds() - cpu_before

    seconds, cpu = benchmark.pedantic(render, rounds=1, iterations=1)
    benchmark.extra_info.update({"files": count, "seconds": seconds, "cpu_seconds": cpu,
                                 "ms_per_file": 1000 * seconds / count})
    print(f"\n{count:>6,} result files: {seconds:6.2f} s wall, {cpu:6.2f} s CPU in all processes "
          f"({1000 * seconds / count:.3f} ms wall and {1000 * cpu / count:.3f} ms CPU per file; "
          f"per-result pages and logs included; load average {os.getloadavg()[0]:.1f})")
