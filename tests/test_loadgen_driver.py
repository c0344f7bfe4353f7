"""The LoadGen driver over a tiny deterministic torch classifier: every scenario VALID
under quick settings, accuracy mode and its gate, the logs and the settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from greenperf.errors import UsageError
from greenperf.inference import (
    InferenceResult,
    LoadGenSettings,
    Mode,
    ModelSpeed,
    Scenario,
    direct_predictions,
    direct_quality,
    loadgen_defaults,
    measure_speed,
    parse_detail,
    quick_settings,
    read_accuracy_log,
    run_inference,
    run_loadgen,
    search_peak_qps,
    standard_settings,
    summary_verdict,
)
from greenperf.inference.server_search import SearchStep, next_qps

FEATURES, CLASSES = 16, 10


class LinearClassifier:
    """A fixed linear classifier over seeded random data.

    Labels come from a teacher matrix; the model is the teacher plus a little
    noise, so its accuracy is high but not perfect. ``zero_weights`` gives the
    broken model (every logit 0, always class 0).
    """

    def __init__(
        self,
        sample_count: int = 512,
        performance_sample_count: int = 128,
        max_batch: int = 32,
        zero_weights: bool = False,
        logits: bool = False,
    ) -> None:
        generator = torch.Generator().manual_seed(1234)
        self.features = torch.randn(sample_count, FEATURES, generator=generator)
        teacher = torch.randn(FEATURES, CLASSES, generator=generator)
        self.labels = (self.features @ teacher).argmax(1).numpy()
        noisy = teacher + 0.3 * torch.randn(FEATURES, CLASSES, generator=generator)
        self.model = torch.nn.Linear(FEATURES, CLASSES, bias=False)
        with torch.no_grad():
            self.model.weight.copy_(torch.zeros_like(noisy.T) if zero_weights else noisy.T)
        self.logits = logits
        self.name = "linear-logits" if logits else "linear"
        self.sample_count = sample_count
        self.performance_sample_count = performance_sample_count
        self.max_batch = max_batch
        self.loaded: set[int] = set()

    def load_samples(self, indices: list[int]) -> None:
        self.loaded.update(indices)

    def unload_samples(self, indices: list[int]) -> None:
        self.loaded.difference_update(indices)

    def predict(self, indices: list[int]) -> np.ndarray:
        missing = set(indices) - self.loaded
        if missing:
            raise KeyError(f"samples {sorted(missing)[:3]} were not loaded")
        with torch.inference_mode():
            logits = self.model(self.features[indices])
        return logits.numpy() if self.logits else logits.argmax(1).numpy()

    def score(self, predictions: dict[int, np.ndarray]) -> float:
        hits = 0
        for index in range(self.sample_count):
            row = predictions.get(index)
            if row is not None:
                label = int(np.argmax(row)) if self.logits else int(row)
                hits += label == self.labels[index]
        return hits / self.sample_count


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def target() -> LinearClassifier:
    return LinearClassifier()


@pytest.fixture(scope="module")
def speed(target: LinearClassifier) -> ModelSpeed:
    return measure_speed(target)


def _json_round_trip(result: InferenceResult) -> dict:
    return json.loads(json.dumps(result.to_dict()))


def _assert_valid_performance(result: InferenceResult, scenario: Scenario) -> dict:
    assert result.valid, result.invalid_reasons
    assert result.loadgen_verdict == "VALID"
    assert result.scenario == scenario.value and result.mode == "performance"
    assert result.metric_value is not None and result.metric_value > 0
    assert result.samples_per_second and result.samples_per_second > 0
    percentiles = result.latency.percentiles_ns
    assert list(percentiles) == ["p50", "p90", "p95", "p97", "p99", "p99.9"]
    ordered = [result.latency.min_ns, *percentiles.values(), result.latency.max_ns]
    assert ordered == sorted(ordered)
    assert result.latency.min_ns <= result.latency.mean_ns <= result.latency.max_ns
    folder = Path(result.logs["folder"])
    assert summary_verdict(folder / "mlperf_log_summary.txt") == "VALID"
    detail = parse_detail(folder / "mlperf_log_detail.txt")
    assert detail.get("result_validity") == "VALID"
    assert detail.get("effective_scenario") == scenario.value
    # Every setting we asked for is what LoadGen says it used.
    assert detail.get("requested_min_duration_ms") == result.settings["min_duration_ms"]
    assert detail.get("requested_min_query_count") == result.settings["min_query_count"]
    assert result.sut["samples_answered"] > 0 and result.sut["samples_answered_empty"] == 0
    data = _json_round_trip(result)
    assert data["verdict"] == "VALID" and data["settings"]["scenario"] == scenario.value
    return data


def test_offline_is_valid_and_reports_throughput(target, speed, tmp_path):
    result = run_inference(target, "offline", tmp_path / "offline", speed=speed)
    _assert_valid_performance(result, Scenario.OFFLINE)
    assert result.metric_name == "samples_per_second"
    detail = parse_detail(tmp_path / "offline" / "mlperf_log_detail.txt")
    assert result.metric_value == pytest.approx(detail.get("result_samples_per_second"))
    # Batching: LoadGen's single Offline query is answered in full batches.
    assert result.sut["mean_batch_size"] > target.max_batch * 0.9
    # The throughput probe that sized the query kept its own logs.
    assert (tmp_path / "offline" / "offline_probe" / "mlperf_log_detail.txt").is_file()
    assert result.speed["loadgen_offline_sps"] > 0


def test_offline_resizes_its_query_once_when_it_ends_too_soon(target, speed, tmp_path):
    # A throughput estimate far too low makes LoadGen's one query finish before the
    # minimum duration (INVALID); the driver reruns it sized from the measured rate.
    pessimistic = dataclasses.replace(speed, loadgen_offline_sps=200.0)
    result = run_inference(target, "Offline", tmp_path, speed=pessimistic)
    _assert_valid_performance(result, Scenario.OFFLINE)
    assert result.settings["offline_expected_qps"] > 200.0 * 1.5


def test_single_stream_is_valid_and_reports_p90(target, speed, tmp_path):
    result = run_inference(target, Scenario.SINGLE_STREAM, tmp_path, speed=speed)
    _assert_valid_performance(result, Scenario.SINGLE_STREAM)
    assert result.metric_name == "p90_latency" and result.metric_unit == "ns"
    detail = parse_detail(tmp_path / "mlperf_log_detail.txt")
    assert result.metric_value == detail.get("early_stopping_latency_ss")
    assert result.sut["mean_batch_size"] == 1.0


def test_multi_stream_is_valid_and_reports_p99(target, speed, tmp_path):
    result = run_inference(target, "MultiStream", tmp_path, speed=speed)
    _assert_valid_performance(result, Scenario.MULTI_STREAM)
    assert result.metric_name == "p99_latency"
    detail = parse_detail(tmp_path / "mlperf_log_detail.txt")
    assert result.metric_value == detail.get("early_stopping_latency_ms")
    assert detail.get("result_query_count") >= 662
    # Each query's eight samples go to the model as one batch.
    assert result.sut["mean_batch_size"] == 8.0


def test_server_search_finds_a_valid_peak(target, speed, tmp_path):
    result = run_inference(
        target,
        "server",
        tmp_path,
        speed=speed,
        server_target_latency_ns=20_000_000,
        server_search_max_runs=4,
        server_search_rel_tol=0.3,
    )
    _assert_valid_performance(result, Scenario.SERVER)
    trials = result.server_trials
    assert 2 <= len(trials) <= 4
    best_valid = max(t.target_qps for t in trials if t.valid)
    assert result.server_target_qps == best_valid
    assert result.settings["server_target_qps"] == best_valid
    assert result.metric_name == "server_qps"
    detail = parse_detail(Path(result.logs["folder"]) / "mlperf_log_detail.txt")
    assert result.metric_value == pytest.approx(detail.get("result_completed_samples_per_sec"))
    assert detail.get("result_perf_constraints_met") is True
    for trial in trials:
        assert (Path(trial.log_folder) / "mlperf_log_summary.txt").is_file()
        verdict = summary_verdict(Path(trial.log_folder) / "mlperf_log_summary.txt")
        assert verdict == trial.loadgen_verdict
    assert max(t.target_qps for t in trials) <= result.settings["server_search_max_qps"]


def test_plain_sut_path_is_valid(target, speed, tmp_path):
    settings = quick_settings("SingleStream", speed, use_fast_sut=False)
    result = run_loadgen(target, settings, tmp_path)
    _assert_valid_performance(result, Scenario.SINGLE_STREAM)
    assert result.settings["use_fast_sut"] is False
    assert parse_detail(tmp_path / "mlperf_log_detail.txt").get("sut_name") == "PySUT"


def test_accuracy_mode_passes_the_gate(target, speed, tmp_path):
    result = run_inference(target, "Offline", tmp_path, mode="accuracy", speed=speed)
    assert result.valid, result.invalid_reasons
    assert result.mode == "accuracy" and result.loadgen_verdict is None
    accuracy = result.accuracy
    assert accuracy.samples_scored == accuracy.samples_expected == target.sample_count
    # LoadGen's logged responses score exactly like direct calls to the same model.
    assert accuracy.quality == accuracy.reference_quality == direct_quality(target)
    assert 0.5 < accuracy.quality < 1.0
    assert accuracy.threshold == pytest.approx(0.99 * accuracy.reference_quality)
    assert result.metric_name == "quality" and result.metric_value == accuracy.quality
    assert _json_round_trip(result)["accuracy"]["passed"] is True


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server"])
def test_accuracy_mode_in_other_scenarios(scenario, target, speed, tmp_path):
    result = run_inference(
        target, scenario, tmp_path, mode=Mode.ACCURACY, speed=speed, server_target_qps=2000.0
    )
    assert result.valid, result.invalid_reasons
    assert result.accuracy.samples_scored == target.sample_count


def test_broken_model_fails_the_accuracy_gate(target, tmp_path):
    broken = LinearClassifier(zero_weights=True)
    reference = direct_quality(target)
    result = run_inference(
        broken, "Offline", tmp_path, mode="accuracy", reference_quality=reference
    )
    assert not result.valid and result.verdict == "INVALID"
    assert not result.accuracy.passed
    assert result.accuracy.quality == direct_quality(broken) < 0.99 * reference
    assert any("quality" in reason for reason in result.invalid_reasons)


def test_accuracy_gate_uses_the_ratio_setting(target, speed, tmp_path):
    # A reference just above what the model reaches: fails at 0.99, passes at 0.5.
    reference = direct_quality(target) / 0.98
    strict = run_inference(
        target,
        "Offline",
        tmp_path / "strict",
        mode="accuracy",
        speed=speed,
        reference_quality=reference,
    )
    lenient = run_inference(
        target,
        "Offline",
        tmp_path / "lenient",
        mode="accuracy",
        speed=speed,
        reference_quality=reference,
        accuracy_ratio=0.5,
    )
    assert not strict.valid and lenient.valid


def test_logits_round_trip_through_the_accuracy_log(speed, tmp_path):
    logits_target = LinearClassifier(logits=True)
    settings = quick_settings("Offline", speed, mode="accuracy")
    result = run_loadgen(logits_target, settings, tmp_path)
    assert result.valid, result.invalid_reasons
    logged = read_accuracy_log(tmp_path / "mlperf_log_accuracy.json", np.float32, (CLASSES,))
    direct = direct_predictions(logits_target)
    assert sorted(logged) == list(range(logits_target.sample_count))
    # Bit for bit against direct calls holds here because Offline computes every sample in
    # a batch of max_batch, as direct_predictions does (each 128 loaded samples are one
    # query, 4 batches of 32), whatever the load. Rows computed in batches of another size
    # may differ in their last bits (see test_loadgen_guards' round-trip test).
    for index, row in direct.items():
        assert logged[index].tobytes() == row.tobytes()


def test_detail_log_parses_with_mlperf_logging(target, speed, tmp_path):
    from mlperf_logging.compliance_checker import mlp_parser

    run_loadgen(target, quick_settings("SingleStream", speed), tmp_path)
    lines, failures = mlp_parser.parse_file(str(tmp_path / "mlperf_log_detail.txt"), "6.1.0")
    assert failures == []
    keys = {line.key for line in lines}
    assert {"loadgen_version", "result_validity", "effective_scenario"} <= keys
    assert parse_detail(tmp_path / "mlperf_log_detail.txt").line_count == len(lines)


def test_a_second_run_replaces_the_first_runs_logs(target, speed, tmp_path):
    run_loadgen(target, quick_settings("Offline", speed, mode="accuracy"), tmp_path)
    run_loadgen(target, quick_settings("SingleStream", speed), tmp_path)
    detail = parse_detail(tmp_path / "mlperf_log_detail.txt")
    assert detail.get("effective_scenario") == "SingleStream"
    assert json.loads((tmp_path / "mlperf_log_accuracy.json").read_text()) == []


def test_standard_settings_are_loadgen_defaults():
    speed = ModelSpeed(1e-3, 4e-3, 1000.0, 32, loadgen_offline_sps=800.0)
    for scenario in Scenario:
        settings = standard_settings(scenario, speed)
        defaults = loadgen_defaults(scenario)
        assert settings.min_duration_ms == 600_000
        assert settings.min_query_count == defaults["min_query_count"]
        for seed in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
            assert getattr(settings, seed) == defaults[seed] != 0
        test_settings = settings.to_test_settings()
        assert test_settings.min_duration_ms == 600_000
        assert test_settings.scenario.name == scenario.value
    assert standard_settings("MultiStream", speed).min_query_count == 662
    assert standard_settings("Server", speed).server_target_latency_ns == 10_000_000
    assert standard_settings("Offline", speed).offline_expected_qps == pytest.approx(960.0)


def test_quick_settings_are_short_and_recorded():
    speed = ModelSpeed(1e-3, 4e-3, 1000.0, 32)
    for scenario in Scenario:
        settings = quick_settings(scenario, speed, mode="accuracy")
        assert settings.min_duration_ms <= 1000 and settings.mode is Mode.ACCURACY
        data = settings.to_dict()
        assert data["scenario"] == scenario.value and data["mode"] == "accuracy"
        assert LoadGenSettings(**data) == settings
    single = quick_settings("SingleStream", speed)
    # Expecting lower latency than measured keeps LoadGen from running out of queries.
    assert single.single_stream_expected_latency_ns < 1_000_000
    assert quick_settings(
        "Server", speed, server_target_latency_ns=5_000_000
    ).server_batch_timeout_ms == pytest.approx(0.5)


def test_settings_reject_bad_values():
    speed = ModelSpeed(1e-3, 4e-3, 1000.0, 32)
    with pytest.raises(UsageError, match="no_such_knob"):
        quick_settings("Offline", speed, no_such_knob=1)
    with pytest.raises(UsageError, match="min_duration_ms"):
        quick_settings("Offline", speed, min_duration_ms=0)
    with pytest.raises(UsageError, match="scenario"):
        quick_settings("Batch", speed)
    with pytest.raises(UsageError, match="profile"):
        from greenperf.inference import settings_for

        settings_for("long", "Offline", speed)


def test_max_batch_above_the_targets_is_refused(target, speed, tmp_path):
    with pytest.raises(UsageError, match="max_batch"):
        run_loadgen(target, quick_settings("Offline", speed, max_batch=1024), tmp_path)


def test_search_brackets_then_bisects_to_the_capacity():
    capacity = 730.0
    steps = search_peak_qps(lambda qps: qps <= capacity, 100.0, 5000.0, 20, 0.01)
    qps = [step.qps for step in steps]
    assert qps[:4] == [100.0, 200.0, 400.0, 800.0]  # bracket up until INVALID
    best = max(step.qps for step in steps if step.valid)
    assert capacity * 0.99 <= best <= capacity
    assert len(steps) <= 20


def test_search_brackets_down_and_stays_within_its_bounds():
    steps = search_peak_qps(lambda qps: qps <= 30.0, 1000.0, 1000.0, 6, 0.1)
    assert [s.qps for s in steps[:3]] == [1000.0, 500.0, 250.0]
    assert len(steps) == 6
    # Nothing ever meets a bound below the smallest rate: the search still stops.
    never = search_peak_qps(lambda qps: False, 64.0, 64.0, 3, 0.1)
    assert [s.qps for s in never] == [64.0, 32.0, 16.0]


def test_search_ignores_a_noisy_invalid_below_a_valid_rate():
    steps = [
        SearchStep(100.0, True),
        SearchStep(200.0, False),
        SearchStep(150.0, True),
        SearchStep(120.0, False),
    ]
    # 120 failed by noise; the bracket stays (150, 200).
    assert next_qps(steps, 1000.0, 0.01) == pytest.approx(175.0)
    assert next_qps([SearchStep(1000.0, True)], 1000.0, 0.1) is None
