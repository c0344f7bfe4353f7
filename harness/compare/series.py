"""Metric values out of result documents, one sample (a value per run) per metric.

Each series belongs to a phase (training) or a scenario (inference); ``compare_docs`` pairs
the series of two comparable results into ``MetricComparison`` objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from greenperf.compare.verdict import (
    HIGHER,
    LOWER,
    NO_DATA,
    TOO_FEW_RUNS,
    MetricComparison,
    compare_samples,
)

# LoadGen percentiles worth gating on; the rest stay in the result file.
_LATENCY_PERCENTILES = ("p50", "p90", "p99")


@dataclass(frozen=True)
class _Series:
    section: str
    metric: str
    unit: str
    better: str
    values: tuple[float, ...]
    excluded: int = 0  # contended runs left out (``exclude_contended``)


def training_series(doc: dict[str, Any], exclude_contended: bool = False) -> list[_Series]:
    """Per phase: time to target, samples to target, train throughput, energy to target.

    ``exclude_contended`` leaves runs flagged contended out of the time and energy figures
    (another process used the CPU while they ran, so their times are not the code's own);
    samples to target do not depend on the machine and keep every run.
    """
    out: list[_Series] = []
    for phase in doc.get("phases") or []:
        name = str(phase.get("name", "train"))
        runs = [r for r in phase.get("runs") or [] if isinstance(r, dict)]
        # A run skipped because an earlier phase aborted did not run at all.
        every = [r for r in runs if r.get("samples_seen", 0) > 0 or r.get("status") == "success"]
        ran = [r for r in every if not (exclude_contended and _contended(r))]
        excluded = len(every) - len(ran)
        tta = [_number(r.get("tta_seconds")) if r.get("status") == "success" else math.inf
               for r in ran]
        samples = [_number(r.get("samples_to_target")) if r.get("status") == "success"
                   else math.inf for r in every]
        throughput = [_number(r.get("train_throughput")) for r in ran
                      if (r.get("train_throughput") or 0) > 0]
        energy = [_number((r.get("energy") or {}).get("total_joules")) for r in ran
                  if r.get("status") == "success" and isinstance(r.get("energy"), dict)
                  and r["energy"].get("total_joules") is not None]
        out += [
            _Series(name, "time to target", "s", LOWER, _clean(tta), excluded),
            _Series(name, "samples to target", "samples", LOWER, _clean(samples)),
            _Series(name, "train throughput", "samples/s", HIGHER, _clean(throughput), excluded),
            _Series(name, "energy to target", "J", LOWER, _clean(energy), excluded),
        ]
    return out


def _contended(run: dict[str, Any]) -> bool:
    return bool((run.get("contention") or {}).get("contended"))


def inference_series(doc: dict[str, Any]) -> list[_Series]:
    """Per scenario: throughput, the headline metric and latency percentiles (performance mode).

    The inference section is read defensively: any object with a ``scenario`` and
    performance figures counts as one measurement; several for the same scenario and
    mode are repeats.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in _measurements(doc.get("inference")):
        if str(item.get("mode", "performance")).lower().startswith("acc"):
            continue
        groups.setdefault(str(item["scenario"]), []).append(item)
    out: list[_Series] = []
    for scenario, items in groups.items():
        qps = [_number(i.get("samples_per_second")) for i in items
               if _is_number(i.get("samples_per_second"))]
        out.append(_Series(scenario, "throughput", "samples/s", HIGHER, _clean(qps)))
        headline = [i for i in items if _is_number(i.get("metric_value")) and i.get("metric_name")]
        if headline:
            unit = str(headline[0].get("metric_unit") or "")
            better = HIGHER if "/s" in unit or "per second" in unit.lower() else LOWER
            out.append(_Series(scenario, str(headline[0]["metric_name"]), unit, better,
                               _clean([_number(i["metric_value"]) for i in headline])))
        for label in _LATENCY_PERCENTILES:
            values = [_number(pct[label]) / 1e6 for i in items
                      if isinstance(i.get("latency"), dict)
                      and isinstance(pct := i["latency"].get("percentiles_ns"), dict)
                      and _is_number(pct.get(label))]
            if values:
                out.append(_Series(scenario, f"latency {label}", "ms", LOWER, _clean(values)))
        energy = [_number(i["energy"]["total_joules"]) for i in items
                  if isinstance(i.get("energy"), dict)
                  and _is_number(i["energy"].get("total_joules"))]
        if energy:
            out.append(_Series(scenario, "energy", "J", LOWER, _clean(energy)))
    return out


def _measurements(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("scenario"), str) and any(
                k in node for k in ("samples_per_second", "latency", "metric_value")):
            yield node
            return
        for value in node.values():
            yield from _measurements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _measurements(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float:
    return float(value) if _is_number(value) else math.nan


def _clean(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(v for v in values if not math.isnan(v))


def result_key(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    """What makes two result files comparable: kind, workload, scale and scenario."""
    scenario = doc.get("scenario")
    if scenario is None and isinstance(doc.get("inference"), dict):
        scenario = doc["inference"].get("scenario")
    return (str(doc.get("kind")), str(doc.get("workload")), str(doc.get("scale")),
            str(scenario or ""))


def key_text(key: tuple[str, str, str, str]) -> str:
    kind, workload, scale, scenario = key
    return " ".join(p for p in (workload, scale, kind, scenario) if p)


def compare_docs(baseline: dict[str, Any], candidate: dict[str, Any], threshold: float,
                 alpha: float, exclude_contended: bool = False,
                 ) -> tuple[list[MetricComparison], list[str]]:
    """Every metric of two comparable result documents, and notes about them."""
    kind, workload, scale, _ = result_key(candidate)
    if kind == "training":
        base_series = training_series(baseline, exclude_contended)
        cand_series = training_series(candidate, exclude_contended)
    else:
        base_series, cand_series = inference_series(baseline), inference_series(candidate)
    base = {(s.section, s.metric): s for s in base_series}
    cand = {(s.section, s.metric): s for s in cand_series}
    metrics = []
    for key in list(dict.fromkeys([*base, *cand])):
        b, c = base.get(key), cand.get(key)
        excluded = (b.excluded if b else 0) + (c.excluded if c else 0)
        if (b is None or not b.values) and (c is None or not c.values) and not excluded:
            continue
        like = c or b
        assert like is not None
        metric = MetricComparison(workload, scale, kind, like.section, like.metric, like.unit,
                                  like.better, list(b.values if b else ()),
                                  list(c.values if c else ()))
        metrics.append(compare_samples(metric, threshold, alpha))
        if excluded and metric.verdict in (NO_DATA, TOO_FEW_RUNS):
            metric.reason = (f"{excluded} contended run(s) left out (--exclude-contended); "
                             f"{metric.reason}")
    notes = _notes(baseline, candidate)
    if exclude_contended:
        for side, series in (("baseline", base_series), ("candidate", cand_series)):
            left_out = max((s.excluded for s in series), default=0)
            if left_out:
                notes.append(f"{key_text(result_key(candidate))}: {left_out} contended {side} "
                             "run(s) left out of the time and energy figures")
    return metrics, notes


def _notes(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    label = key_text(result_key(candidate))
    notes = []
    if baseline.get("config_hash") != candidate.get("config_hash"):
        notes.append(f"{label}: the configurations differ (config_hash): baseline and candidate "
                     "did not run the same recipe and settings")
    for side, doc in (("baseline", baseline), ("candidate", candidate)):
        if doc.get("status") != "complete":
            notes.append(f"{label}: the {side} result is incomplete "
                         f"({doc.get('status_reason') or 'no reason recorded'})")
        contended = sum(1 for phase in doc.get("phases") or [] for r in phase.get("runs") or []
                        if (r.get("contention") or {}).get("contended"))
        if contended:
            notes.append(f"{label}: {contended} {side} run(s) were CONTENDED (another process "
                         "used the CPU): their times are not trustworthy")
    return notes

