"""The plain, JSON-ready result of one inference measurement."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from greenperf.inference.logs import DetailLog

# Percentile labels as LoadGen writes them in its detail-log keys.
_PERCENTILES = {
    "p50": "50.00",
    "p90": "90.00",
    "p95": "95.00",
    "p97": "97.00",
    "p99": "99.00",
    "p99.9": "99.90",
}


@dataclass(frozen=True)
class LatencyStats:
    """Per-sample latency (per-query for MultiStream), in nanoseconds, from LoadGen."""

    min_ns: int
    max_ns: int
    mean_ns: float
    percentiles_ns: dict[str, int]

    @classmethod
    def from_detail(cls, detail: DetailLog, per_query: bool = False) -> LatencyStats | None:
        infix = "per_query_" if per_query else ""
        stem = "query_" if per_query else ""
        keys = {
            label: f"result_{pct}_percentile_{infix}latency_ns"
            for label, pct in _PERCENTILES.items()
        }
        if any(key not in detail.values for key in keys.values()):
            return None
        return cls(
            min_ns=int(detail.get(f"result_min_{stem}latency_ns")),
            max_ns=int(detail.get(f"result_max_{stem}latency_ns")),
            mean_ns=float(detail.get(f"result_mean_{stem}latency_ns")),
            percentiles_ns={label: int(detail.get(key)) for label, key in keys.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AccuracyReport:
    """Accuracy-mode quality, gated against the reference (FP32) quality."""

    quality: float
    reference_quality: float
    ratio: float
    threshold: float
    passed: bool
    samples_scored: int
    samples_expected: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ServerTrial:
    """One LoadGen Server run of the peak-QPS search."""

    target_qps: float
    valid: bool
    loadgen_verdict: str | None
    p99_latency_ns: int | None
    completed_samples_per_second: float | None
    log_folder: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class InferenceResult:
    """One scenario in one mode; ``valid`` combines LoadGen's verdict and our gates."""

    target: str
    scenario: str
    mode: str
    settings: dict[str, Any]
    valid: bool
    loadgen_verdict: str | None
    invalid_reasons: list[str]
    metric_name: str
    metric_unit: str
    metric_value: float | None
    samples_per_second: float | None
    latency: LatencyStats | None
    accuracy: AccuracyReport | None
    logs: dict[str, str]
    duration_s: float
    loadgen_version: str | None
    sut: dict[str, Any]
    speed: dict[str, Any] | None = None
    server_target_qps: float | None = None
    server_trials: list[ServerTrial] = field(default_factory=list)
    early_stopping: str | None = None
    loadgen_checks: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["verdict"] = self.verdict
        data["latency"] = self.latency.to_dict() if self.latency else None
        data["accuracy"] = self.accuracy.to_dict() if self.accuracy else None
        data["server_trials"] = [t.to_dict() for t in self.server_trials]
        return data
