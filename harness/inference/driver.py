"""One LoadGen test over any :class:`InferenceTarget`, start to parsed result."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
from greenperf.errors import GreenperfError, UsageError
from greenperf.inference.calibrate import direct_quality
from greenperf.inference.logs import (
    ACCURACY_FILE,
    DETAIL_FILE,
    SUMMARY_FILE,
    TRACE_FILE,
    DetailLog,
    LogPaths,
    parse_detail,
    read_accuracy_log,
    summary_verdict,
)
from greenperf.inference.result import AccuracyReport, InferenceResult, LatencyStats
from greenperf.inference.settings import LoadGenSettings, Mode, ModelSpeed, Scenario, settings_for
from greenperf.inference.sut import BatchingSUT
from greenperf.inference.target import InferenceTarget, check_target

# LoadGen keeps process-wide state; two tests at once would mix their logs.
_LOADGEN_LOCK = threading.Lock()

# The result field MLPerf's submission checker reads per scenario (v5.0 on).
_METRICS = {
    Scenario.OFFLINE: ("samples_per_second", "samples/s", "result_samples_per_second"),
    Scenario.SINGLE_STREAM: ("p90_latency", "ns", "early_stopping_latency_ss"),
    Scenario.MULTI_STREAM: ("p99_latency", "ns", "early_stopping_latency_ms"),
    Scenario.SERVER: ("server_qps", "samples/s", "result_completed_samples_per_sec"),
}
# LoadGen's individual pass/fail checks behind its verdict.
_CHECK_KEYS = (
    "result_min_duration_met",
    "result_min_queries_met",
    "early_stopping_met",
    "result_perf_constraints_met",
)
# Long enough to get past warm-up, short enough to cost well under a second.
PROBE_DURATION_MS = 100
PROBE_MIN_BATCHES = 8
# Used when LoadGen logged no early-stopping estimate (too few queries).
_METRIC_FALLBACK = {
    Scenario.SINGLE_STREAM: "result_90.00_percentile_latency_ns",
    Scenario.MULTI_STREAM: "result_99.00_percentile_per_query_latency_ns",
}


class _Watchdog:
    """Ends a test whose samples stop being answered, instead of hanging forever."""

    def __init__(self, sut: BatchingSUT, timeout_s: float) -> None:
        self._sut = sut
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="greenperf-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        poll = min(0.25, self._timeout_s / 5)
        while not self._stop.wait(poll):
            stalled = self._sut.stalled_for()
            if stalled > self._timeout_s:
                waiting = self._sut.outstanding_count()
                self._sut.fail(
                    f"{self._sut.target.name}.predict",
                    f"no sample answered for {stalled:.1f} s with {waiting} outstanding "
                    f"(settings.response_timeout_s = {self._timeout_s:g}); the watchdog "
                    "answered them empty so that LoadGen could end the test",
                )


class _ModelStuck(BaseException):
    """Raised in the serving thread when the model has not returned long after LoadGen ended
    its test (a BaseException, so that the SUT's own error handling lets it through)."""


def _serve_while_testing(sut: BatchingSUT, run_test: Any, response_timeout_s: float) -> None:
    """Run LoadGen's test in a helper thread while this (the main) thread runs the model.

    A model stuck for good keeps this thread in ``predict``: once LoadGen has ended the test
    (the watchdog answered the stuck samples), a SIGUSR1 (handled only while serving; the
    previous handler is put back) interrupts the wait, which ends a Python-level hang; a hang
    inside a C call cannot be interrupted.
    """
    failures: list[BaseException] = []
    state = {"served": False}
    grace_s = max(1.0, response_timeout_s)

    def test() -> None:
        try:
            run_test()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the serving thread
            failures.append(exc)
        finally:
            sut.stop_serving()
        deadline = time.monotonic() + grace_s
        while not state["served"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if not state["served"]:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def on_signal(signum: int, frame: Any) -> None:
        if not state["served"]:
            raise _ModelStuck

    previous = signal.signal(signal.SIGUSR1, on_signal)
    tester = threading.Thread(target=test, name="greenperf-loadgen", daemon=True)
    tester.start()
    interrupted: BaseException | None = None
    try:
        try:
            sut.serve()
        except _ModelStuck:
            pass  # the watchdog has recorded the failure; LoadGen has ended
        except BaseException as exc:  # noqa: BLE001 - re-raised once LoadGen has ended
            interrupted = exc
        state["served"] = True
        # LoadGen must end its test before anything it uses is destroyed, so a Ctrl-C now
        # answers every sample and is raised once LoadGen is done.
        while True:
            if interrupted is not None:
                # Ctrl-C (or a bug) while serving: answer everything so LoadGen can end.
                sut.fail("LoadGen test", f"interrupted ({type(interrupted).__name__})")
            try:
                tester.join()
                break
            except BaseException as exc:  # noqa: BLE001 - as above
                interrupted = interrupted or exc
    finally:
        signal.signal(signal.SIGUSR1, previous)
    if interrupted is not None:
        raise interrupted
    if failures:
        raise failures[0]


def _log_settings(folder: Path) -> Any:
    log = lg.LogSettings()
    log.log_output.outdir = str(folder)
    log.log_output.prefix = "mlperf_log_"
    log.log_output.suffix = ""
    log.log_output.prefix_with_datetime = False
    log.log_output.copy_summary_to_stdout = False
    log.log_output.copy_detail_to_stdout = False
    log.enable_trace = False
    return log


def prepare_log_folder(output_dir: str | Path) -> Path:
    """Create the folder (LoadGen silently logs nowhere, then crashes, without it) and
    clear LoadGen files of an earlier run so they cannot pass for this one's."""
    folder = Path(output_dir).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in (SUMMARY_FILE, DETAIL_FILE, ACCURACY_FILE, TRACE_FILE):
            (folder / name).unlink(missing_ok=True)
    except OSError as exc:
        raise GreenperfError(
            str(folder), f"cannot prepare LoadGen log folder: {exc.strerror}"
        ) from None
    return folder


def _start_test(
    target: InferenceTarget, settings: LoadGenSettings, folder: Path
) -> tuple[BatchingSUT, float]:
    batch_timeout_s = (
        settings.server_batch_timeout_ms / 1000 if settings.scenario is Scenario.SERVER else 0.0
    )
    test_settings = settings.to_test_settings()
    log_settings = _log_settings(folder)
    in_caller = threading.current_thread() is threading.main_thread()
    with _LOADGEN_LOCK:
        sut = BatchingSUT(target, settings.max_batch, batch_timeout_s, settings.respond_in_thread,
                          serve_in_caller=in_caller)
        if settings.use_fast_sut:
            # The fast callback gets two int lists instead of one Python object per sample.
            handle = lg.ConstructFastSUT(sut.issue_fast, sut.flush)
        else:
            handle = lg.ConstructSUT(sut.issue, sut.flush)
        qsl = lg.ConstructQSL(
            target.sample_count,
            target.performance_sample_count,
            sut.load_samples,
            sut.unload_samples,
        )
        started = time.perf_counter()

        def run_test() -> None:
            with _Watchdog(sut, settings.response_timeout_s):
                lg.StartTestWithLogSettings(handle, qsl, test_settings, log_settings)

        try:
            if in_caller:
                _serve_while_testing(sut, run_test, settings.response_timeout_s)
            else:
                run_test()
        finally:
            elapsed = time.perf_counter() - started
            # After a failure the worker may be stuck in the model for good.
            sut.close(join_timeout_s=0.5 if sut.failure else 5.0)
            lg.DestroyQSL(qsl)
            (lg.DestroyFastSUT if settings.use_fast_sut else lg.DestroySUT)(handle)
    return sut, elapsed


def _metric(scenario: Scenario, detail: DetailLog) -> float | None:
    _, _, key = _METRICS[scenario]
    value = detail.get(key)
    if (value is None or value == 0) and scenario in _METRIC_FALLBACK:
        value = detail.get(_METRIC_FALLBACK[scenario])
    return float(value) if value is not None else None


def _samples_per_second(scenario: Scenario, detail: DetailLog, sut: BatchingSUT) -> float | None:
    """LoadGen's own throughput figure where it logs one, else the SUT's answer rate."""
    key = {
        Scenario.OFFLINE: "result_samples_per_second",
        Scenario.SERVER: "result_completed_samples_per_sec",
        Scenario.SINGLE_STREAM: "result_qps_with_loadgen_overhead",  # one sample per query
    }.get(scenario)
    value = detail.get(key) if key else None
    if value is None:
        # MultiStream logs no rate: samples answered over first issue to last answer.
        return sut.stats().samples_per_second
    return float(value)


def _gate(
    target: InferenceTarget,
    settings: LoadGenSettings,
    paths: LogPaths,
    sut: BatchingSUT,
    reference_quality: float,
) -> AccuracyReport:
    predictions = read_accuracy_log(paths.accuracy, sut.output_dtype, sut.row_shape)
    quality = float(target.score(predictions))
    threshold = settings.accuracy_ratio * reference_quality
    complete = len(predictions) == target.sample_count
    return AccuracyReport(
        quality=quality,
        reference_quality=reference_quality,
        ratio=settings.accuracy_ratio,
        threshold=threshold,
        passed=complete and quality >= threshold,
        samples_scored=len(predictions),
        samples_expected=target.sample_count,
    )


def run_loadgen(
    target: InferenceTarget,
    settings: LoadGenSettings,
    output_dir: str | Path,
    *,
    reference_quality: float | None = None,
    speed: ModelSpeed | None = None,
) -> InferenceResult:
    """Run one LoadGen test and return its parsed, gated result.

    Accuracy mode gates ``target.score`` of LoadGen's logged responses against
    ``settings.accuracy_ratio * reference_quality``; without a reference it is the
    same target's quality from direct calls. A failing model or a stalled sample
    raises :class:`GreenperfError` once LoadGen has ended its test.

    What the gate relies on: each logged response is, bit for bit, the row the model
    returned for that sample inside LoadGen (the SUT pairs every response id with its own
    row and keeps the buffer alive until LoadGen has copied it; the LoadGen guard tests
    prove this, and that a mix-up is caught). It does not rely on that row being
    bit-identical to a direct call's: a model's floats may depend on the batch a sample
    was computed in (BLAS uses other kernels for other batch shapes, and the Server
    scenario batches whatever has arrived), so the gate compares the quality metric,
    never bytes, and the ratio leaves room for a last-bit difference flipping a near-tie.
    """
    check_target(target)
    if settings.max_batch > target.max_batch:
        raise UsageError(
            "inference settings.max_batch",
            f"{settings.max_batch} exceeds {target.name}.max_batch {target.max_batch}",
        )
    folder = prepare_log_folder(output_dir)
    paths = LogPaths(folder)
    if settings.mode is Mode.ACCURACY and reference_quality is None:
        reference_quality = direct_quality(target)

    sut, elapsed = _start_test(target, settings, folder)
    if sut.failure is not None:
        raise GreenperfError(
            sut.failure.where,
            f"{sut.failure.problem} [{settings.scenario.value} {settings.mode.value} run; "
            f"LoadGen logs in {folder}]",
        )

    detail = parse_detail(paths.detail)
    reasons = list(detail.errors)
    accuracy = None
    loadgen_verdict = None
    if settings.mode is Mode.PERFORMANCE:
        loadgen_verdict = detail.get("result_validity")
        summary = summary_verdict(paths.summary)
        if summary != loadgen_verdict:
            reasons.append(f"summary says {summary} but detail log says {loadgen_verdict}")
        if loadgen_verdict != "VALID":
            reasons.append(
                f"LoadGen: {detail.get('result_invalid_reason') or 'result is INVALID'}".strip()
            )
        valid = loadgen_verdict == "VALID" and not reasons
        name, unit, _ = _METRICS[settings.scenario]
        metric = _metric(settings.scenario, detail)
    else:
        assert reference_quality is not None
        accuracy = _gate(target, settings, paths, sut, reference_quality)
        if accuracy.samples_scored != accuracy.samples_expected:
            reasons.append(
                f"accuracy log holds {accuracy.samples_scored} of "
                f"{accuracy.samples_expected} samples"
            )
        if accuracy.quality < accuracy.threshold:
            reasons.append(
                f"quality {accuracy.quality:.6g} < {accuracy.ratio:g} x reference "
                f"{accuracy.reference_quality:.6g} = {accuracy.threshold:.6g}"
            )
        valid = accuracy.passed and not reasons
        name, unit, metric = "quality", "score", accuracy.quality

    per_query = settings.scenario is Scenario.MULTI_STREAM
    return InferenceResult(
        target=target.name,
        scenario=settings.scenario.value,
        mode=settings.mode.value,
        settings=settings.to_dict(),
        valid=valid,
        loadgen_verdict=loadgen_verdict,
        invalid_reasons=reasons,
        metric_name=name,
        metric_unit=unit,
        metric_value=metric,
        samples_per_second=_samples_per_second(settings.scenario, detail, sut)
        if settings.mode is Mode.PERFORMANCE
        else None,
        latency=LatencyStats.from_detail(detail, per_query=per_query),
        accuracy=accuracy,
        logs=paths.to_dict(),
        duration_s=elapsed,
        loadgen_version=detail.get("loadgen_version"),
        sut=dataclasses.asdict(sut.stats()),
        speed=speed.to_dict() if speed else None,
        server_target_qps=settings.server_target_qps
        if settings.scenario is Scenario.SERVER
        else None,
        early_stopping=detail.get("early_stopping_result") or None,
        loadgen_checks={key: detail.get(key) for key in _CHECK_KEYS if key in detail.values},
        warnings=list(detail.warnings),
    )


def probe_offline_sps(
    target: InferenceTarget, speed: ModelSpeed, output_dir: str | Path, profile: str = "quick"
) -> float:
    """Samples/s of a short LoadGen Offline run: what the whole path (LoadGen, SUT,
    model) sustains, to size the real Offline query and cap the Server search."""
    settings = settings_for(
        profile,
        Scenario.OFFLINE,
        speed,
        min_duration_ms=PROBE_DURATION_MS,
        min_query_count=PROBE_MIN_BATCHES * speed.max_batch,
        offline_expected_qps=speed.throughput_sps,
    )
    result = run_loadgen(target, settings, output_dir, speed=speed)
    if not result.samples_per_second:
        raise GreenperfError(str(output_dir), "the Offline probe run measured no throughput")
    return result.samples_per_second
