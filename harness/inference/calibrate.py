"""Direct calls to the model, outside LoadGen: its speed (to size LoadGen's schedule)
and its reference quality (the accuracy gate's yardstick)."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from greenperf.inference.settings import ModelSpeed
from greenperf.inference.target import InferenceTarget, check_target

MULTI_STREAM_SAMPLES = 8  # LoadGen's samples per MultiStream query (mlperf.conf)


def _median_seconds(target: InferenceTarget, batch: list[int], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        target.predict(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_speed(target: InferenceTarget, repeats: int = 5, warmup: int = 2) -> ModelSpeed:
    """Median wall time of direct ``predict`` calls at batch 1, 8 and ``max_batch``."""
    check_target(target)
    loaded = list(range(min(target.performance_sample_count, target.max_batch)))

    def batch_of(n: int) -> list[int]:
        return [loaded[k % len(loaded)] for k in range(n)]

    multi_batch = min(MULTI_STREAM_SAMPLES, target.max_batch)
    target.load_samples(loaded)
    try:
        for _ in range(warmup):
            target.predict(batch_of(target.max_batch))
            target.predict(batch_of(1))
        single = _median_seconds(target, batch_of(1), repeats)
        multi = _median_seconds(target, batch_of(multi_batch), repeats)
        full = _median_seconds(target, batch_of(target.max_batch), repeats)
    finally:
        target.unload_samples(loaded)
    calls_per_query = math.ceil(MULTI_STREAM_SAMPLES / multi_batch)
    return ModelSpeed(
        single_latency_s=single,
        multi_query_latency_s=multi * calls_per_query,
        throughput_sps=target.max_batch / full,
        max_batch=target.max_batch,
    )


def direct_predictions(target: InferenceTarget) -> dict[int, np.ndarray]:
    """Every sample's prediction from plain batched calls, loading at most
    ``performance_sample_count`` samples at a time as LoadGen would.

    Batches are ``max_batch`` consecutive samples; inside LoadGen the same sample may be
    computed in a batch of another size (a Server run serves many alone), and a model's
    floats can differ in their last bits between the two, so compare predictions made
    here with LoadGen's responses within float rounding, not bit for bit."""
    check_target(target)
    predictions: dict[int, np.ndarray] = {}
    for start in range(0, target.sample_count, target.performance_sample_count):
        chunk = list(
            range(start, min(start + target.performance_sample_count, target.sample_count))
        )
        target.load_samples(chunk)
        try:
            for first in range(0, len(chunk), target.max_batch):
                batch = chunk[first : first + target.max_batch]
                rows = np.asarray(target.predict(batch))
                predictions.update(zip(batch, rows.copy(), strict=True))
        finally:
            target.unload_samples(chunk)
    return predictions


def direct_quality(target: InferenceTarget) -> float:
    """The model's quality computed without LoadGen: the accuracy gate's reference."""
    return float(target.score(direct_predictions(target)))
