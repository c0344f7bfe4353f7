"""LoadGen Offline throughput against direct batched calls of the same model.

For each model the same process alternates a quick LoadGen Offline run (through
greenperf's batching SUT) with a direct replay of exactly the batches that run
sent to the model, and reports the ratio LoadGen samples/s / direct samples/s:
how much of the model's speed survives the harness. Targets: >= 0.90 for
MLP-sized models, >= 0.95 for ResNet/BERT-sized ones.

    python -m benchmarks.bench_loadgen_offline --models mlp_workload resnet_workload \
        bert_workload [--threads N] [--rounds 3]
    python -m pytest benchmarks/bench_loadgen_offline.py -s

Both sides run the model in the main thread with the same torch thread count (default:
torch's, one per usable core), as ``greenperf infer`` does. Timings need a quiet machine;
each row shows the foreign CPU load measured while it ran (greenperf.contention).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from greenperf.contention import ContentionWindow, wait_until_quiet
from greenperf.inference import ModelSpeed, measure_speed, quick_settings, run_loadgen
from greenperf.inference.driver import probe_offline_sps
from torch import nn


class RecordingClassifier:
    """An inference target over seeded random inputs that can record the batches
    LoadGen's SUT sends it, so that direct calls can replay exactly those."""

    def __init__(self, name: str, model: nn.Module, inputs: torch.Tensor, max_batch: int) -> None:
        self.name = name
        self.model = model.eval()
        self.inputs = inputs
        self.sample_count = len(inputs)
        self.performance_sample_count = len(inputs)
        self.max_batch = max_batch
        self.recorded: list[list[int]] | None = None

    def load_samples(self, indices: list[int]) -> None:
        pass

    def unload_samples(self, indices: list[int]) -> None:
        pass

    def predict(self, indices: list[int]) -> np.ndarray:
        if self.recorded is not None:
            self.recorded.append(indices)
        with torch.inference_mode():
            return self.model(self.inputs[indices]).argmax(1).numpy()

    def score(self, predictions: dict[int, np.ndarray]) -> float:
        return float(len(predictions))


def mlp_target() -> RecordingClassifier:
    """The MLP workload's shape: MNIST-1D's 40 features, two 256-wide hidden layers."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    return RecordingClassifier("mlp-40-256-256-10", model, torch.randn(8192, 40), 256)


def cnn_target() -> RecordingClassifier:
    """A small ResNet-like CNN on 3x32x32 images (the Shapes-10 input size)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip
    return RecordingClassifier("cnn-32-64-128", model, torch.randn(2048, 3, 32, 32), 64)


class RecordingWorkloadTarget:
    """A reference workload's own serving target (``greenperf.serving.WorkloadTarget``) over
    its untrained model and held-out set, recording batches like RecordingClassifier."""

    def __init__(self, workload_name: str) -> None:
        from greenperf.serving import WorkloadTarget
        from greenperf.workload import get_workload

        workload = get_workload(workload_name)
        phase = workload.serving_phase()
        data = phase.build_data(phase.recipe("tiny"), "tiny", None)
        torch.manual_seed(0)
        model = phase.build_model(data, "tiny", None)
        inputs, labels = phase.inference_set(data)
        self._inner = WorkloadTarget(workload_name, phase, model, inputs, labels,
                                     workload.inference_max_batch, "cpu")
        self.name = f"workload-{workload_name}"
        self.sample_count = self._inner.sample_count
        self.performance_sample_count = self._inner.performance_sample_count
        self.max_batch = self._inner.max_batch
        self.recorded: list[list[int]] | None = None

    def load_samples(self, indices: list[int]) -> None:
        pass

    def unload_samples(self, indices: list[int]) -> None:
        pass

    def predict(self, indices: list[int]) -> np.ndarray:
        if self.recorded is not None:
            self.recorded.append(indices)
        return self._inner.predict(indices)

    def score(self, predictions: dict[int, np.ndarray]) -> float:
        return self._inner.score(predictions)


MODELS: dict[str, Callable[[], object]] = {
    "mlp": mlp_target,
    "cnn": cnn_target,
    # The three reference workloads as greenperf serves them (issue targets: >= 0.90 for the
    # MLP, >= 0.95 for ResNet and BERT-small).
    "mlp_workload": lambda: RecordingWorkloadTarget("mlp"),
    "resnet_workload": lambda: RecordingWorkloadTarget("resnet"),
    "bert_workload": lambda: RecordingWorkloadTarget("bert_small"),
}


@dataclass(frozen=True)
class Pair:
    loadgen_sps: float
    direct_sps: float
    samples: int
    batches: int
    foreign_cores: float | None

    @property
    def ratio(self) -> float:
        return self.loadgen_sps / self.direct_sps


def calibrated_speed(target: RecordingClassifier, folder: Path) -> ModelSpeed:
    speed = measure_speed(target)
    probed = probe_offline_sps(target, speed, folder / "probe")
    return dataclasses.replace(speed, loadgen_offline_sps=probed)


def measure_pair(target: RecordingClassifier, speed: ModelSpeed, folder: Path) -> Pair:
    """One LoadGen Offline run, then a direct replay of the batches it ran."""
    window = ContentionWindow()
    window.begin()
    settings = quick_settings("Offline", speed)
    for _ in range(3):
        target.recorded = []
        result = run_loadgen(target, settings, folder)
        batches, target.recorded = target.recorded, None
        if result.valid or result.loadgen_checks.get("result_min_duration_met") is not False:
            break
        # Faster than the probe said (a quieter machine): size the query up, as
        # run_inference does, and measure again.
        settings = settings.replace(offline_expected_qps=result.samples_per_second * 2)
    if not result.valid:
        raise RuntimeError(f"{target.name}: LoadGen run INVALID: {result.invalid_reasons}")
    started = time.perf_counter()
    for batch in batches:
        target.predict(batch)
    direct_seconds = time.perf_counter() - started
    samples = sum(len(batch) for batch in batches)
    return Pair(
        loadgen_sps=float(result.samples_per_second),
        direct_sps=samples / direct_seconds,
        samples=samples,
        batches=len(batches),
        foreign_cores=window.end().foreign_cores,
    )


def run(
    models: list[str], rounds: int, threads: int, quiet_timeout_s: float = 0.0
) -> dict[str, list[Pair]]:
    """``quiet_timeout_s`` > 0 waits (up to that long) for a quiet machine before each pair."""
    torch.set_num_threads(threads)
    results: dict[str, list[Pair]] = {}
    with tempfile.TemporaryDirectory(prefix="greenperf-bench-lg-") as tmp:
        for name in models:
            target = MODELS[name]()
            if quiet_timeout_s:
                wait_until_quiet(timeout=quiet_timeout_s)
            speed = calibrated_speed(target, Path(tmp) / name)
            results[name] = []
            for r in range(rounds):
                if quiet_timeout_s:
                    wait_until_quiet(timeout=quiet_timeout_s)
                results[name].append(measure_pair(target, speed, Path(tmp) / name / f"round{r}"))
    return results


def report(results: dict[str, list[Pair]], threads: int) -> None:
    print(f"\nLoadGen Offline vs direct batched calls (torch threads = {threads})")
    print(
        f"{'model':<20} {'LoadGen/s':>11} {'direct/s':>11} {'ratio':>7} {'batches':>8} "
        f"{'foreign cores':>14}"
    )
    for name, pairs in results.items():
        for pair in pairs:
            foreign = "n/a" if pair.foreign_cores is None else f"{pair.foreign_cores:.2f}"
            print(
                f"{name:<20} {pair.loadgen_sps:>11,.0f} "
                f"{pair.direct_sps:>11,.0f} {pair.ratio:>7.3f} {pair.batches:>8} {foreign:>14}"
            )
        median = statistics.median(pair.ratio for pair in pairs)
        print(f"{name + ' median':<20} {'':>11} {'':>11} {median:>7.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["mlp", "cnn"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to SECONDS for other processes to go quiet",
    )
    args = parser.parse_args(argv)
    report(run(args.models, args.rounds, args.threads, args.wait_quiet), args.threads)


# --- pytest-benchmark cases ----------------------------------------------------------------------


def _bench(benchmark, name: str) -> None:
    torch.set_num_threads(1)
    target = MODELS[name]()
    with tempfile.TemporaryDirectory(prefix="greenperf-bench-lg-") as tmp:
        speed = calibrated_speed(target, Path(tmp))
        pair = benchmark.pedantic(
            measure_pair, args=(target, speed, Path(tmp) / "run"), rounds=1, iterations=1
        )
    benchmark.extra_info.update(
        loadgen_sps=pair.loadgen_sps,
        direct_sps=pair.direct_sps,
        ratio=pair.ratio,
        foreign_cores=pair.foreign_cores,
    )
    print(
        f"\n{name}: LoadGen {pair.loadgen_sps:,.0f}/s, direct {pair.direct_sps:,.0f}/s, "
        f"ratio {pair.ratio:.3f}"
    )


def test_loadgen_offline_ratio_mlp(benchmark):
    _bench(benchmark, "mlp")


def test_loadgen_offline_ratio_cnn(benchmark):
    _bench(benchmark, "cnn")


if __name__ == "__main__":
    main()
