"""Every knob of one LoadGen run, as a plain recordable dataclass, plus the quick and
standard profiles.

``standard`` takes LoadGen's own defaults (its built-in mlperf.conf: 600 s minimum
duration, 662 MultiStream queries, the official RNG seeds). ``quick`` keeps the
seeds but shortens every run to about a second so that CI gets VALID runs on two
CPU cores. Both fill the expected latency / QPS fields from a measured
:class:`ModelSpeed`, because LoadGen sizes its pre-generated query schedule from
them: too pessimistic and it runs out of queries before the minimum duration
(an INVALID run), too optimistic and an Offline run lasts longer than needed.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from greenperf.errors import UsageError


class Scenario(str, enum.Enum):
    """LoadGen's four scenarios; the values are LoadGen's own names."""

    OFFLINE = "Offline"
    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"
    SERVER = "Server"

    @classmethod
    def parse(cls, value: str | Scenario) -> Scenario:
        if isinstance(value, Scenario):
            return value
        folded = str(value).replace("_", "").replace("-", "").lower()
        for scenario in cls:
            if scenario.value.lower() == folded:
                return scenario
        names = ", ".join(s.value for s in cls)
        raise UsageError("scenario", f"unknown scenario {value!r}; expected one of {names}")


class Mode(str, enum.Enum):
    PERFORMANCE = "performance"
    ACCURACY = "accuracy"

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        if isinstance(value, Mode):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise UsageError(
                "mode", f"unknown mode {value!r}; expected performance or accuracy"
            ) from None


@dataclass(frozen=True)
class ModelSpeed:
    """What direct calls to the model cost; seeds LoadGen's expected-speed fields."""

    single_latency_s: float  # one predict() of batch 1
    multi_query_latency_s: float  # answering one MultiStream query (8 samples)
    throughput_sps: float  # samples/s at max_batch
    max_batch: int
    # Samples/s through LoadGen and the SUT in a short Offline probe; per-sample
    # overhead makes it far lower than direct calls for small models.
    loadgen_offline_sps: float | None = None

    @property
    def offline_sps(self) -> float:
        """Best available estimate of Offline throughput through LoadGen."""
        return self.loadgen_offline_sps or self.throughput_sps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES = ("quick", "standard")

# Enough queries for LoadGen's early-stopping estimate to exist in a short run:
# SingleStream's p90 needs 64, MultiStream's p99 needs 662, Server's p99 with no
# late query needs a few hundred.
_QUICK_MIN_QUERIES = {
    Scenario.OFFLINE: 1,
    Scenario.SINGLE_STREAM: 100,
    Scenario.MULTI_STREAM: 662,
    Scenario.SERVER: 512,
}
_QUICK_MIN_DURATION_MS = 1000
# Offline is one query sized from the expected QPS; over-ask so the run cannot
# finish before the minimum duration when the real run is faster than the estimate.
_OFFLINE_QPS_MARGIN = {"quick": 1.5, "standard": 1.2}
# Expecting lower latency than measured only makes LoadGen generate more queries
# than it uses; expecting higher latency makes it run out (INVALID).
_LATENCY_MARGIN = 0.5


@dataclass(frozen=True)
class LoadGenSettings:
    """One LoadGen run's settings: the LoadGen fields and the driver's own."""

    scenario: Scenario
    mode: Mode
    profile: str
    # LoadGen TestSettings fields (names as in LoadGen).
    min_duration_ms: int
    min_query_count: int
    offline_expected_qps: float
    single_stream_expected_latency_ns: int
    multi_stream_expected_latency_ns: int
    server_target_qps: float
    server_target_latency_ns: int
    qsl_rng_seed: int
    sample_index_rng_seed: int
    schedule_rng_seed: int
    max_duration_ms: int = 0
    max_query_count: int = 0
    single_stream_target_latency_percentile: float = 0.9
    multi_stream_target_latency_percentile: float = 0.99
    multi_stream_samples_per_query: int = 8
    server_target_latency_percentile: float = 0.99
    performance_sample_count_override: int = 0
    accuracy_log_probability: float = 0.0
    accuracy_log_rng_seed: int = 0
    # Driver fields.
    max_batch: int = 1
    server_batch_timeout_ms: float = 1.0
    response_timeout_s: float = 60.0
    use_fast_sut: bool = True
    respond_in_thread: bool = False
    accuracy_ratio: float = 0.99
    server_search_max_runs: int = 8
    server_search_rel_tol: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenario", Scenario.parse(self.scenario))
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        positive = {
            "min_duration_ms": self.min_duration_ms,
            "offline_expected_qps": self.offline_expected_qps,
            "single_stream_expected_latency_ns": self.single_stream_expected_latency_ns,
            "multi_stream_expected_latency_ns": self.multi_stream_expected_latency_ns,
            "server_target_qps": self.server_target_qps,
            "server_target_latency_ns": self.server_target_latency_ns,
            "max_batch": self.max_batch,
            "response_timeout_s": self.response_timeout_s,
            "multi_stream_samples_per_query": self.multi_stream_samples_per_query,
            "server_search_max_runs": self.server_search_max_runs,
        }
        for field, value in positive.items():
            if not value > 0:
                raise UsageError(f"inference settings.{field}", f"must be > 0, got {value!r}")
        if self.min_query_count < 1:
            raise UsageError("inference settings.min_query_count", "must be >= 1")
        if self.server_batch_timeout_ms < 0:
            raise UsageError("inference settings.server_batch_timeout_ms", "must be >= 0")
        if not 0 < self.accuracy_ratio <= 1:
            raise UsageError("inference settings.accuracy_ratio", "must be in (0, 1]")
        if not 0 < self.server_search_rel_tol < 1:
            raise UsageError("inference settings.server_search_rel_tol", "must be in (0, 1)")

    def replace(self, **changes: Any) -> LoadGenSettings:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UsageError("inference settings", f"unknown setting(s) {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scenario"] = self.scenario.value
        data["mode"] = self.mode.value
        return data

    def to_test_settings(self) -> Any:
        """The ``mlperf_loadgen.TestSettings`` these settings describe."""
        import mlperf_loadgen as lg

        ts = lg.TestSettings()
        ts.scenario = getattr(lg.TestScenario, self.scenario.value)
        ts.mode = (
            lg.TestMode.AccuracyOnly if self.mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
        )
        for field in _LOADGEN_FIELDS:
            setattr(ts, field, getattr(self, field))
        return ts


# Fields copied one-to-one onto lg.TestSettings.
_LOADGEN_FIELDS = (
    "min_duration_ms",
    "max_duration_ms",
    "min_query_count",
    "max_query_count",
    "offline_expected_qps",
    "single_stream_expected_latency_ns",
    "single_stream_target_latency_percentile",
    "multi_stream_expected_latency_ns",
    "multi_stream_target_latency_percentile",
    "multi_stream_samples_per_query",
    "server_target_qps",
    "server_target_latency_ns",
    "server_target_latency_percentile",
    "qsl_rng_seed",
    "sample_index_rng_seed",
    "schedule_rng_seed",
    "performance_sample_count_override",
    "accuracy_log_probability",
    "accuracy_log_rng_seed",
)


def loadgen_defaults(scenario: Scenario | str) -> dict[str, Any]:
    """LoadGen's built-in mlperf.conf values for ``scenario`` (no user.conf)."""
    import mlperf_loadgen as lg

    scenario = Scenario.parse(scenario)
    ts = lg.TestSettings()
    # conf_type 0 loads only the mlperf.conf compiled into LoadGen; a model name
    # of our own matches just its "*" wildcard lines.
    if ts.FromConfig("", "greenperf", scenario.value, 0) != 0:
        raise UsageError("mlperf_loadgen", "could not load its built-in mlperf.conf")
    return {field: getattr(ts, field) for field in _LOADGEN_FIELDS}


def offline_qps_margin(profile: str) -> float:
    return _OFFLINE_QPS_MARGIN[profile]


def _build(
    profile: str, scenario: Scenario | str, speed: ModelSpeed, mode: Mode | str, **overrides: Any
) -> LoadGenSettings:
    if profile not in PROFILES:
        raise UsageError(
            "inference profile", f"unknown profile {profile!r}; expected quick or standard"
        )
    scenario = Scenario.parse(scenario)
    base = loadgen_defaults(scenario)
    quick = profile == "quick"
    per_query = base["multi_stream_samples_per_query"]
    fields: dict[str, Any] = {
        "scenario": scenario,
        "mode": Mode.parse(mode),
        "profile": profile,
        "min_duration_ms": _QUICK_MIN_DURATION_MS if quick else int(base["min_duration_ms"]),
        "min_query_count": _QUICK_MIN_QUERIES[scenario] if quick else int(base["min_query_count"]),
        "offline_expected_qps": speed.offline_sps * _OFFLINE_QPS_MARGIN[profile],
        "single_stream_expected_latency_ns": max(
            1, int(speed.single_latency_s * _LATENCY_MARGIN * 1e9)
        ),
        "multi_stream_expected_latency_ns": max(
            1, int(speed.multi_query_latency_s * _LATENCY_MARGIN * 1e9)
        ),
        # A first guess only: the Server search replaces it run by run.
        "server_target_qps": max(1.0, speed.offline_sps / 4),
        "server_target_latency_ns": int(base["server_target_latency_ns"]),
        "qsl_rng_seed": int(base["qsl_rng_seed"]),
        "sample_index_rng_seed": int(base["sample_index_rng_seed"]),
        "schedule_rng_seed": int(base["schedule_rng_seed"]),
        "single_stream_target_latency_percentile": base["single_stream_target_latency_percentile"],
        "multi_stream_target_latency_percentile": base["multi_stream_target_latency_percentile"],
        "multi_stream_samples_per_query": per_query,
        "server_target_latency_percentile": base["server_target_latency_percentile"],
        "max_batch": speed.max_batch,
        # Throughput scenarios answer LoadGen from a second thread, overlapping the
        # per-sample response cost with the next batch; latency ones save the hand-off.
        "respond_in_thread": scenario in (Scenario.OFFLINE, Scenario.SERVER),
        "response_timeout_s": 30.0 if quick else 300.0,
        "server_search_max_runs": 8 if quick else 12,
        "server_search_rel_tol": 0.1 if quick else 0.02,
    }
    bound_ns = overrides.get("server_target_latency_ns", fields["server_target_latency_ns"])
    # Waiting a tenth of the latency bound to fill a batch leaves the rest for compute.
    fields["server_batch_timeout_ms"] = bound_ns / 1e6 / 10
    settings = LoadGenSettings(**fields)
    return settings.replace(**overrides) if overrides else settings


def quick_settings(
    scenario: Scenario | str,
    speed: ModelSpeed,
    mode: Mode | str = Mode.PERFORMANCE,
    **overrides: Any,
) -> LoadGenSettings:
    """About a second per LoadGen run: for CI and smoke tests, not for submissions."""
    return _build("quick", scenario, speed, mode, **overrides)


def standard_settings(
    scenario: Scenario | str,
    speed: ModelSpeed,
    mode: Mode | str = Mode.PERFORMANCE,
    **overrides: Any,
) -> LoadGenSettings:
    """LoadGen's own defaults (600 s minimum duration): for submissions."""
    return _build("standard", scenario, speed, mode, **overrides)


def settings_for(
    profile: str,
    scenario: Scenario | str,
    speed: ModelSpeed,
    mode: Mode | str = Mode.PERFORMANCE,
    **overrides: Any,
) -> LoadGenSettings:
    return _build(profile, scenario, speed, mode, **overrides)
