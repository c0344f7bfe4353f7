"""The Server metric: the highest Poisson QPS at which LoadGen judges the run VALID
(its p99 latency within the bound), found by bracketing then bisecting over a
bounded number of LoadGen runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from greenperf.errors import UsageError
from greenperf.inference.driver import probe_offline_sps, run_loadgen
from greenperf.inference.result import InferenceResult, ServerTrial
from greenperf.inference.settings import PROFILES, LoadGenSettings, Mode, ModelSpeed, Scenario
from greenperf.inference.target import InferenceTarget

GROWTH = 2.0  # bracketing step, up or down
# Server capacity sits below Offline throughput: per-query issue overhead and the
# latency bound both cost. Starting at a quarter keeps the first runs from
# building a long backlog (an overloaded run lasts as long as its backlog).
START_FRACTION = 4.0


@dataclass(frozen=True)
class SearchStep:
    qps: float
    valid: bool


def next_qps(
    steps: list[SearchStep], max_qps: float, rel_tol: float, growth: float = GROWTH
) -> float | None:
    """The next QPS to try given the runs so far, or None when the search is done.

    ``lo`` is the highest VALID rate seen and ``hi`` the lowest INVALID rate above
    it; a noisy INVALID below ``lo`` does not pull the bracket down.
    """
    if not steps:
        raise ValueError("the search needs a first run")
    valid = [s.qps for s in steps if s.valid]
    lo = max(valid) if valid else None
    above = [s.qps for s in steps if not s.valid and (lo is None or s.qps > lo)]
    hi = min(above) if above else None
    if lo is None:
        return hi / growth
    if hi is None:
        if lo >= max_qps * (1 - 1e-9):
            return None
        return min(lo * growth, max_qps)
    if (hi - lo) / lo <= rel_tol:
        return None
    return (lo + hi) / 2


def search_peak_qps(
    run_at: Callable[[float], bool],
    start_qps: float,
    max_qps: float,
    max_runs: int,
    rel_tol: float,
) -> list[SearchStep]:
    """Drive ``run_at(qps) -> valid`` through the bracket-and-bisect search."""
    if not 0 < start_qps <= max_qps:
        raise UsageError("server search", f"start QPS {start_qps:g} not in (0, {max_qps:g}]")
    steps: list[SearchStep] = []
    qps: float | None = start_qps
    while qps is not None and len(steps) < max_runs:
        steps.append(SearchStep(qps, run_at(qps)))
        qps = next_qps(steps, max_qps, rel_tol)
    return steps


def _trial(result: InferenceResult) -> ServerTrial:
    return ServerTrial(
        target_qps=float(result.server_target_qps or 0.0),
        valid=result.valid,
        loadgen_verdict=result.loadgen_verdict,
        p99_latency_ns=result.latency.percentiles_ns["p99"] if result.latency else None,
        completed_samples_per_second=result.samples_per_second,
        log_folder=result.logs["folder"],
    )


def find_server_qps(
    target: InferenceTarget,
    settings: LoadGenSettings,
    output_dir: str | Path,
    *,
    max_qps: float | None = None,
    start_qps: float | None = None,
    speed: ModelSpeed | None = None,
) -> InferenceResult:
    """Search the peak VALID Server QPS; return the best run's result with every trial.

    ``max_qps`` caps the search; by default it is the LoadGen Offline throughput
    (``speed.loadgen_offline_sps``, or a short probe run): no Server rate can beat
    Offline, and asking LoadGen for more only builds a backlog that slows each run.
    """
    if settings.scenario is not Scenario.SERVER or settings.mode is not Mode.PERFORMANCE:
        raise UsageError("server search", "needs Server settings in performance mode")
    folder = Path(output_dir)
    if max_qps is None:
        if speed is not None and speed.loadgen_offline_sps:
            max_qps = speed.loadgen_offline_sps
        else:
            probe_speed = speed or _speed_from(settings)
            profile = settings.profile if settings.profile in PROFILES else "quick"
            max_qps = probe_offline_sps(target, probe_speed, folder / "offline_probe", profile)
    start = min(start_qps or max_qps / START_FRACTION, max_qps)

    results: list[InferenceResult] = []  # parallel to the search steps

    def run_at(qps: float) -> bool:
        result = run_loadgen(
            target,
            settings.replace(server_target_qps=qps),
            folder / f"run_{len(results) + 1:02d}_qps_{qps:.6g}",
            speed=speed,
        )
        results.append(result)
        return result.valid

    steps = search_peak_qps(
        run_at, start, max_qps, settings.server_search_max_runs, settings.server_search_rel_tol
    )
    trials = [_trial(result) for result in results]
    valid = [result for result in results if result.valid]
    if valid:
        best = max(valid, key=lambda result: result.server_target_qps or 0.0)
    else:
        best = min(results, key=lambda result: result.server_target_qps or 0.0)
        percentile = 100 * settings.server_target_latency_percentile
        best.invalid_reasons.append(
            f"no Server QPS from {min(s.qps for s in steps):.4g} to "
            f"{max(s.qps for s in steps):.4g} met the p{percentile:g} latency bound of "
            f"{settings.server_target_latency_ns / 1e6:g} ms in {len(steps)} runs"
        )
    best.server_trials = trials
    best.settings = {**best.settings, "server_search_max_qps": max_qps}
    return best


def _speed_from(settings: LoadGenSettings) -> ModelSpeed:
    """A stand-in speed when the caller has none: the probe only needs its batch size
    and a throughput guess, which LoadGen's Offline schedule is sized from."""
    return ModelSpeed(
        single_latency_s=settings.single_stream_expected_latency_ns / 1e9,
        multi_query_latency_s=settings.multi_stream_expected_latency_ns / 1e9,
        throughput_sps=settings.server_target_qps * START_FRACTION,
        max_batch=settings.max_batch,
    )
