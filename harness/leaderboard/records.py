"""Typed records parsed from a result document: everything the leaderboard reads, checked once.

Result files come from strangers and there may be ten thousand of them, so full JSON-Schema
validation (milliseconds a file) is too slow here. Instead, every field the index and the
server-rendered part of a page use is read through a typed accessor that names the field when
its type is wrong. The rest (system description, software, the account, energy readings and
power traces) is only drawn by the page's script, which reads any shape as text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import isfinite
from typing import Any

from greenperf.results import SCHEMA_VERSION


class BadField(Exception):
    """A field the leaderboard needs is missing or has the wrong type."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"field {where}: {problem}")


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


_REAL = (int, float)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def num(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> float | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not _is_number(value):
        raise BadField(_at(where, key), "missing or not a finite number")
    return float(value)


def integer(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> int | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadField(_at(where, key), "missing or not an integer")
    return value


def text(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadField(_at(where, key), "missing or not a string")
    return value


def mapping(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> dict[str, Any]:
    value = obj.get(key)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise BadField(_at(where, key), "missing or not an object")
    return value


def sequence(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> list[Any]:
    value = obj.get(key)
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise BadField(_at(where, key), "missing or not an array")
    return value


def _item(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadField(where, "not an object")
    return value


@dataclass
class Energy:
    total_joules: float | None
    label: str | None


@dataclass
class Run:
    index: int
    seed: int
    status: str
    abort_reason: str | None
    tta_seconds: float
    samples_seen: int
    samples_to_target: int | None
    epochs: float
    train_throughput: float
    peak_rss_bytes: int
    cuda_max_allocated_bytes: int | None
    foreign_cores: float | None
    contended: bool
    curve: list[tuple[int, float, float]]  # (samples, seconds, metric); None metrics dropped
    energy: Energy | None
    log_path: str
    attempts: int | None

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


@dataclass
class Score:
    value: float | None
    unit: str
    method: str
    reason: str | None
    median: float | None
    ci95: tuple[float, float] | None
    n_runs: int
    n_success: int


@dataclass
class Phase:
    name: str
    metric: str
    target: float
    dataset_name: str
    dataset_bytes: int
    train_samples: int
    eval_samples: int
    recipe: dict[str, Any]
    runs: list[Run]
    score: Score


@dataclass
class Scenario:
    """One inference scenario (and mode) of an inference result."""

    name: str
    mode: str
    verdict: str | None
    metric_name: str | None
    metric_unit: str | None
    metric_value: float | None
    samples_per_second: float | None
    latency_ms: dict[str, float]
    energy: Energy | None

    @property
    def key(self) -> str:
        """The scenario name folded: 'Single-Stream', 'single_stream' -> 'singlestream'."""
        return self.name.lower().replace("-", "").replace("_", "").replace(" ", "")

    @property
    def latency_bound(self) -> bool:
        """SingleStream and MultiStream are scored by latency, the rest by throughput."""
        return self.key in ("singlestream", "multistream")


@dataclass
class Finding:
    log: str
    ruleset: str
    passed: bool
    run: int | None
    phase: str | None


@dataclass
class Record:
    """One result file, typed."""

    kind: str
    status: str
    status_reason: str | None
    workload: str
    scale: str
    division: str
    origin: str
    created_utc: str | None
    generator_version: str | None
    system_name: str
    system_auto: dict[str, Any]
    system_declared: dict[str, Any]
    software: dict[str, Any]
    phases: list[Phase]
    scenarios: list[Scenario]
    sustainability: dict[str, Any] | None
    findings: list[Finding]

    @property
    def imported(self) -> bool:
        return self.origin == "imported-mlperf"


def _version_newer(version: str) -> bool:
    try:
        return tuple(map(int, version.split("."))) > tuple(map(int, SCHEMA_VERSION.split(".")))
    except ValueError as exc:
        raise BadField("schema_version", f"{version!r} is not N.N") from exc


def parse_record(doc: Any) -> Record:
    """Turn a parsed result document into a ``Record``; raises ``BadField`` naming the field."""
    if not isinstance(doc, dict):
        raise BadField("(top level)", "not an object")
    version = text(doc, "schema_version", "")
    if _version_newer(version or ""):
        raise BadField("schema_version", f"{version} is newer than this greenperf reads "
                                         f"({SCHEMA_VERSION})")
    kind = text(doc, "kind", "")
    if kind not in ("training", "inference"):
        raise BadField("kind", f"{kind!r} is not 'training' or 'inference'")
    system = mapping(doc, "system", "")
    generator = doc.get("generator")
    phases = [_phase(_item(p, f"phases[{i}]"), f"phases[{i}]")
              for i, p in enumerate(sequence(doc, "phases", "", optional=kind == "inference"))]
    compliance = mapping(doc, "compliance", "", optional=True)
    sustainability = doc.get("sustainability")
    if sustainability is not None and not isinstance(sustainability, dict):
        raise BadField("sustainability", "not an object or null")
    return Record(
        kind=kind,
        status=text(doc, "status", ""),
        status_reason=text(doc, "status_reason", "", optional=True),
        workload=text(doc, "workload", ""),
        scale=text(doc, "scale", ""),
        division=text(doc, "division", ""),
        origin=text(doc, "origin", ""),
        created_utc=text(doc, "created_utc", "", optional=True),
        generator_version=(generator.get("version") if isinstance(generator, dict)
                           and isinstance(generator.get("version"), str) else None),
        system_name=text(system, "name", "system"),
        system_auto=mapping(system, "auto", "system", optional=True),
        system_declared=mapping(system, "declared", "system", optional=True),
        software=mapping(doc, "software", "", optional=True),
        phases=phases,
        scenarios=_scenarios(doc.get("inference")),
        sustainability=sustainability,
        findings=[_finding(_item(f, f"compliance.findings[{i}]"), f"compliance.findings[{i}]")
                  for i, f in enumerate(sequence(compliance, "findings", "compliance",
                                                 optional=True))],
    )


def _phase(doc: dict[str, Any], where: str) -> Phase:
    dataset = mapping(doc, "dataset", where)
    score = mapping(doc, "score", where)
    return Phase(
        name=text(doc, "name", where),
        metric=text(doc, "metric", where),
        target=num(doc, "target", where),
        dataset_name=text(dataset, "name", f"{where}.dataset", optional=True) or "",
        dataset_bytes=integer(dataset, "nbytes", f"{where}.dataset"),
        train_samples=integer(dataset, "train_samples", f"{where}.dataset"),
        eval_samples=integer(dataset, "eval_samples", f"{where}.dataset"),
        recipe=mapping(doc, "recipe", where, optional=True),
        runs=[_run(_item(r, f"{where}.runs[{i}]"), f"{where}.runs[{i}]")
              for i, r in enumerate(sequence(doc, "runs", where))],
        score=_score(score, f"{where}.score"),
    )


def _score(doc: dict[str, Any], where: str) -> Score:
    ci = doc.get("ci95")
    if ci is not None:
        if not (isinstance(ci, list) and len(ci) == 2 and all(map(_is_number, ci))):
            raise BadField(f"{where}.ci95", "not a pair of numbers or null")
        ci = (float(ci[0]), float(ci[1]))
    return Score(
        value=num(doc, "value", where, optional=True),
        unit=text(doc, "unit", where, optional=True) or "s",
        method=text(doc, "method", where, optional=True) or "",
        reason=text(doc, "reason", where, optional=True),
        median=num(doc, "median", where, optional=True),
        ci95=ci,
        n_runs=integer(doc, "n_runs", where, optional=True) or 0,
        n_success=integer(doc, "n_success", where, optional=True) or 0,
    )


def _curve(points: list[Any], where: str) -> list[tuple[int, float, float]]:
    """(samples, seconds, metric) of every evaluation with a metric; the common, well-typed
    case in one pass, the slow path only to name the bad field."""
    try:
        curve = [(p["samples"], p["seconds"], p["metric"]) for p in points]
        if all(type(n) is int and type(t) in _REAL and isfinite(t) and (
                m is None or (type(m) in _REAL and isfinite(m))) for n, t, m in curve):
            return [(n, float(t), float(m)) for n, t, m in curve if m is not None]
    except (TypeError, KeyError):
        pass
    out = []
    for i, point in enumerate(points):
        here = f"{where}.eval_curve[{i}]"
        point = _item(point, here)
        metric = num(point, "metric", here, optional=True)
        samples = integer(point, "samples", here)
        seconds = num(point, "seconds", here)
        if metric is not None:
            out.append((samples, seconds, metric))
    return out


def _run(doc: dict[str, Any], where: str) -> Run:
    contention = mapping(doc, "contention", where)
    curve = _curve(sequence(doc, "eval_curve", where), where)
    energy = doc.get("energy")
    log = mapping(doc, "log", where)
    contended = contention.get("contended")
    if not isinstance(contended, bool):
        raise BadField(f"{where}.contention.contended", "missing or not a boolean")
    return Run(
        index=integer(doc, "index", where),
        seed=integer(doc, "seed", where),
        status=text(doc, "status", where),
        abort_reason=text(doc, "abort_reason", where, optional=True),
        tta_seconds=num(doc, "tta_seconds", where),
        samples_seen=integer(doc, "samples_seen", where),
        samples_to_target=integer(doc, "samples_to_target", where, optional=True),
        epochs=num(doc, "epochs", where),
        train_throughput=num(doc, "train_throughput", where),
        peak_rss_bytes=integer(doc, "peak_rss_bytes", where),
        cuda_max_allocated_bytes=integer(doc, "cuda_max_allocated_bytes", where, optional=True),
        foreign_cores=num(contention, "foreign_cores", f"{where}.contention", optional=True),
        contended=contended,
        curve=curve,
        energy=None if energy is None else _energy(_item(energy, f"{where}.energy"),
                                                   f"{where}.energy"),
        log_path=text(log, "path", f"{where}.log"),
        attempts=integer(doc, "attempts", where, optional=True),
    )


def _energy(doc: dict[str, Any], where: str) -> Energy:
    """The total and its label; the readings and power traces are only drawn by the page's
    script, which reads them from the result defensively."""
    return Energy(total_joules=num(doc, "total_joules", where, optional=True),
                  label=text(doc, "label", where, optional=True))


def _finding(doc: dict[str, Any], where: str) -> Finding:
    passed = doc.get("passed")
    if not isinstance(passed, bool):
        raise BadField(f"{where}.passed", "missing or not a boolean")
    return Finding(log=text(doc, "log", where, optional=True) or "",
                   ruleset=text(doc, "ruleset", where, optional=True) or "",
                   passed=passed,
                   run=integer(doc, "run", where, optional=True),
                   phase=text(doc, "phase", where, optional=True))


def _scenario_docs(inference: Any) -> list[tuple[str, dict[str, Any]]]:
    """The per-scenario objects of ``doc['inference']``, whichever of the plausible shapes
    (one scenario, a list, or a mapping keyed by scenario) it has."""
    if inference is None:
        return []
    if not isinstance(inference, dict):
        raise BadField("inference", "not an object or null")
    if "scenario" in inference:
        return [("inference", inference)]
    for key in ("results", "scenarios"):
        inner = inference.get(key)
        if isinstance(inner, list):
            return [(f"inference.{key}[{i}]", _item(v, f"inference.{key}[{i}]"))
                    for i, v in enumerate(inner)]
        if isinstance(inner, dict):
            out = []
            for name, value in inner.items():
                value = _item(value, f"inference.{key}.{name}")
                out.append((f"inference.{key}.{name}", {"scenario": name, **value}))
            return out
    return []


def _scenarios(inference: Any) -> list[Scenario]:
    out = []
    for where, doc in _scenario_docs(inference):
        latency = doc.get("latency")
        latency_ms: dict[str, float] = {}
        if isinstance(latency, dict) and isinstance(latency.get("percentiles_ns"), dict):
            for label, value in latency["percentiles_ns"].items():
                if isinstance(label, str) and _is_number(value):
                    latency_ms[label] = float(value) / 1e6
        verdict = doc.get("verdict")
        if verdict is None and isinstance(doc.get("valid"), bool):
            verdict = "VALID" if doc["valid"] else "INVALID"
        energy = doc.get("energy")
        out.append(Scenario(
            name=text(doc, "scenario", where),
            mode=text(doc, "mode", where, optional=True) or "performance",
            verdict=verdict if isinstance(verdict, str) else None,
            metric_name=text(doc, "metric_name", where, optional=True),
            metric_unit=text(doc, "metric_unit", where, optional=True),
            metric_value=num(doc, "metric_value", where, optional=True),
            samples_per_second=num(doc, "samples_per_second", where, optional=True),
            latency_ms=latency_ms,
            energy=_energy(energy, f"{where}.energy") if isinstance(energy, dict) else None,
        ))
    return out
