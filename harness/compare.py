"""Regression comparison of two greenperf results: is the candidate significantly worse?

Each result holds several runs, so each metric is a small sample per side (one value per run):
time to target, samples to target, training throughput and energy to target for every
training phase; throughput and latency percentiles for every inference scenario.

The statistics, and why:

* **Estimate: the ratio of medians** (candidate / baseline), with a 95% percentile-bootstrap
  interval that resamples the runs of each side independently (10,000 resamples, fixed seed,
  so the same files always give the same report). Medians, because run times are skewed: a
  seed that converges one evaluation later, or a run that shares the machine, produces a long
  tail that would drag a mean.
* **Test: one-sided Mann-Whitney U** (exact distribution for small samples without ties),
  asking "are candidate values stochastically worse than baseline values?". It is rank
  based, so it assumes no distribution (five runs cannot support a normality assumption)
  and one contended run cannot on its own make a difference significant. Aborted runs count
  as infinitely slow, the rank of the MLPerf rule that treats them as the slowest runs.
* **Verdict: asv's rule.** A metric *regressed* only when the difference is significant
  (p < ``alpha``, default 0.01) **and** the median moved the wrong way by more than the
  threshold (default 5%). Significance alone would flag real but negligible changes;
  a threshold alone would flag noise. ``alpha`` is one-sided 0.01 because a result reports
  several metrics per phase and a CI gate must rarely cry wolf; with it, 5 runs a side
  (the MLPerf submission count) can reach significance (smallest p = 1/252).
* **Too few runs** (e.g. 1 vs 1, or 3 vs 3 at alpha 0.01): when even a complete
  separation of the two samples could not reach ``alpha``, there is no test. The report
  says so and never fails on that metric.

What the test cannot see: the runs of one result share the machine's state, so drift of the
whole machine between two invocations (other jobs, frequency, a noisy neighbour) moves every
run of a block together and looks like a code change to any test over runs. Only the
threshold absorbs it: it must exceed the machine's noise floor between invocations (a few
percent on a quiet, dedicated runner; measured up to 2x on the shared 2-core development VM,
see tests/fixtures/compare_pairs/README.md). Runs flagged contended can be left out of the
time and energy figures (``exclude_contended``), as DESIGN.md does not trust them.

"Worse by a factor" is symmetric in time and rate: a throughput that drops from 100 to 80
samples/s is worse by the same factor (1.25) as a time that grows from 80 to 100 s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import GreenperfError, UsageError
from harness.results import NON_RESULT_DIRS, checksum_problem, read_result

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.01
BOOTSTRAP_RESAMPLES = 10_000

REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
TOO_FEW_RUNS = "too few runs"
NO_DATA = "no data"

LOWER = "lower"
HIGHER = "higher"

# LoadGen percentiles worth gating on; the rest stay in the result file.
_LATENCY_PERCENTILES = ("p50", "p90", "p99")


def parse_threshold(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05; a bare number of 1 or more is ambiguous and refused."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError as exc:
        raise UsageError(f"--threshold {text}", "expected a percentage like 5% or a "
                                                "fraction like 0.05") from exc
    if not raw.endswith("%") and value >= 1:
        raise UsageError(f"--threshold {text}", "ambiguous: write 5% or 0.05")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--threshold {text}", "must be a non-negative percentage")
    return value


@dataclass
class MetricComparison:
    """One metric of one phase or scenario, baseline against candidate."""

    workload: str
    scale: str
    kind: str
    section: str
    metric: str
    unit: str
    better: str
    baseline: list[float]
    candidate: list[float]
    baseline_median: float | None = None
    candidate_median: float | None = None
    ratio: float | None = None
    ratio_ci95: list[float] | None = None
    worse_factor: float | None = None
    p_value: float | None = None
    min_p_value: float | None = None
    verdict: str = NO_DATA
    reason: str = ""

    @property
    def change(self) -> float | None:
        """Relative change of the metric itself (+0.12 = 12% larger)."""
        if self.ratio is None or not math.isfinite(self.ratio):
            return None
        return self.ratio - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["baseline"] = [_json_number(v) for v in self.baseline]
        out["candidate"] = [_json_number(v) for v in self.candidate]
        for key in ("baseline_median", "candidate_median", "ratio", "worse_factor"):
            out[key] = _json_number(out[key])
        out["change"] = self.change
        return out


@dataclass
class Comparison:
    """Every metric of every matched result; ``regressed`` decides the exit code."""

    threshold: float
    alpha: float
    metrics: list[MetricComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    matched: list[tuple[str, str]] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.verdict == REGRESSED]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "alpha": self.alpha, "regressed": self.regressed,
                "matched": [{"baseline": b, "candidate": c} for b, c in self.matched],
                "metrics": [m.to_dict() for m in self.metrics], "notes": self.notes}


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"


# -- statistics -------------------------------------------------------------------------------


def smallest_p_value(n_baseline: int, n_candidate: int) -> float:
    """The smallest one-sided exact Mann-Whitney p-value these sample sizes allow."""
    return 1.0 / math.comb(n_baseline + n_candidate, n_baseline)


def worse_p_value(baseline: Sequence[float], candidate: Sequence[float], better: str) -> float:
    """One-sided Mann-Whitney U p-value of "the candidate is worse"."""
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if np.all(np.concatenate([base, cand]) == base[0]):
        return 1.0  # every value tied: no evidence either way
    import scipy.stats  # imported here: the pytest plugin loads this module in every session

    alternative = "greater" if better == LOWER else "less"
    return float(scipy.stats.mannwhitneyu(cand, base, alternative=alternative).pvalue)


def ratio_ci(baseline: Sequence[float], candidate: Sequence[float], level: float = 0.95,
             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of median(candidate) / median(baseline)."""
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if base.size < 2 or cand.size < 2:
        return None
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"):  # aborted runs are infinite
        base_medians = np.median(base[rng.integers(0, base.size, (resamples, base.size))],
                                 axis=1)
        cand_medians = np.median(cand[rng.integers(0, cand.size, (resamples, cand.size))],
                                 axis=1)
        ratios = cand_medians / base_medians
    alpha = (1.0 - level) / 2.0
    defined = ratios[~np.isnan(ratios)]
    if defined.size < resamples * 0.5:
        return None
    with np.errstate(invalid="ignore"):  # inf - inf between two infinite quantiles
        lo, hi = np.quantile(defined, [alpha, 1.0 - alpha])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [float(lo), float(hi)]


def compare_samples(metric: MetricComparison, threshold: float, alpha: float) -> MetricComparison:
    """Fill in medians, ratio, interval, p-value and verdict of ``metric``."""
    base, cand = metric.baseline, metric.candidate
    if not base or not cand:
        side = "baseline" if not base else "candidate"
        metric.verdict, metric.reason = NO_DATA, f"no {side} values"
        return metric
    with np.errstate(divide="ignore", invalid="ignore"):  # aborted runs are infinite
        metric.baseline_median = float(np.median(base))
        metric.candidate_median = float(np.median(cand))
        ratio = np.float64(metric.candidate_median) / np.float64(metric.baseline_median)
    metric.ratio = None if math.isnan(ratio) else float(ratio)
    if metric.ratio is not None:
        worse = metric.ratio if metric.better == LOWER else _inverse(metric.ratio)
        metric.worse_factor = worse
    metric.ratio_ci95 = ratio_ci(base, cand)
    metric.min_p_value = smallest_p_value(len(base), len(cand))
    if metric.min_p_value >= alpha:
        metric.verdict = TOO_FEW_RUNS
        metric.reason = (f"{len(base)} vs {len(cand)} runs: even a complete separation gives "
                         f"p = {metric.min_p_value:.3g}, not below alpha {alpha:g}; "
                         "no significance test possible")
        return metric
    metric.p_value = worse_p_value(base, cand, metric.better)
    better_p = worse_p_value(cand, base, metric.better)
    worse = metric.worse_factor
    limit = 1.0 + threshold
    if worse is not None and worse > limit and metric.p_value < alpha:
        metric.verdict = REGRESSED
        metric.reason = (f"worse by {_factor_text(worse)} (threshold {_percent(threshold)}), "
                         f"p = {metric.p_value:.3g} < {alpha:g}")
    elif worse is not None and _inverse(worse) > limit and better_p < alpha:
        metric.verdict = IMPROVED
        metric.reason = f"better by {_factor_text(_inverse(worse))}, p = {better_p:.3g}"
    else:
        metric.verdict = UNCHANGED
        if metric.p_value >= alpha and better_p >= alpha:
            metric.reason = f"difference not significant (p = {metric.p_value:.3g})"
        else:
            metric.reason = f"significant but within the {_percent(threshold)} threshold"
    return metric


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _inverse(value: float) -> float:
    if value == 0:
        return math.inf
    return 1.0 / value if math.isfinite(value) else 0.0


def _factor_text(factor: float) -> str:
    if not math.isfinite(factor):
        return "an unbounded factor (runs aborted)"
    return f"{(factor - 1.0):.1%}"


# -- metrics of a result document -------------------------------------------------------------


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
    (DESIGN: time figures without the noise guard are not trusted); samples to target do not
    depend on the machine and keep every run.
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


# -- files and folders ------------------------------------------------------------------------


def load_side(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The result documents of a file or folder.

    In a folder, ``NON_RESULT_DIRS`` (logs, rcps, ...) and JSON files that are no greenperf result
    at all (no ``schema_version``) are skipped; a broken result file is an error.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json")
                       if not NON_RESULT_DIRS & set(p.relative_to(path).parts[:-1])
                       and _looks_like_result(p))
        if not files:
            raise UsageError(str(path), "folder holds no result files (*.json)")
    elif path.is_file():
        files = [path]
    else:
        raise UsageError(str(path), "no such result file or folder")
    docs = []
    for file in files:
        try:
            doc = read_result(file)
        except GreenperfError as exc:
            # A broken input is a usage error (exit 2), never a "regression" (exit 1).
            raise UsageError(exc.where, exc.problem) from exc
        docs.append((file, doc))
    return docs


def _looks_like_result(path: Path) -> bool:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return True  # let read_result name the problem
    return not isinstance(raw, dict) or "schema_version" in raw


def compare_paths(baseline: Path, candidate: Path, threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA, exclude_contended: bool = False) -> Comparison:
    """Compare two result files, or the matching result files of two folders."""
    if not 0 < alpha < 1:
        raise UsageError("--alpha", f"{alpha} must be between 0 and 1")
    base_docs = load_side(baseline)
    cand_docs = load_side(candidate)
    comparison = Comparison(threshold, alpha)
    for side, docs in (("baseline", base_docs), ("candidate", cand_docs)):
        for file, doc in docs:
            problem = checksum_problem(doc)
            if problem:
                comparison.notes.append(f"{side} {file}: {problem}")
    if len(base_docs) == 1 and len(cand_docs) == 1 and baseline.is_file() and candidate.is_file():
        (bfile, bdoc), (cfile, cdoc) = base_docs[0], cand_docs[0]
        if result_key(bdoc) != result_key(cdoc):
            raise UsageError(f"{cfile}", f"not comparable with {bfile}: "
                                         f"{key_text(result_key(cdoc))} vs "
                                         f"{key_text(result_key(bdoc))}")
        pairs = [(bfile, bdoc, cfile, cdoc)]
    else:
        pairs = _match(base_docs, cand_docs, comparison.notes)
        if not pairs:
            raise UsageError(f"{baseline} and {candidate}",
                             "no result in one matches a result in the other "
                             "(by workload, scale, kind and scenario)")
    for bfile, bdoc, cfile, cdoc in pairs:
        metrics, notes = compare_docs(bdoc, cdoc, threshold, alpha, exclude_contended)
        comparison.metrics.extend(metrics)
        comparison.notes.extend(notes)
        comparison.matched.append((str(bfile), str(cfile)))
    return comparison


def _match(base_docs: list[tuple[Path, dict[str, Any]]],
           cand_docs: list[tuple[Path, dict[str, Any]]],
           notes: list[str]) -> list[tuple[Path, dict[str, Any], Path, dict[str, Any]]]:
    base = _by_key(base_docs, "baseline")
    cand = _by_key(cand_docs, "candidate")
    for key in base.keys() - cand.keys():
        notes.append(f"only in the baseline: {key_text(key)} ({base[key][0]})")
    for key in cand.keys() - base.keys():
        notes.append(f"only in the candidate: {key_text(key)} ({cand[key][0]})")
    return [(*base[key], *cand[key]) for key in sorted(base.keys() & cand.keys())]


def _by_key(docs: list[tuple[Path, dict[str, Any]]],
            side: str) -> dict[tuple[str, str, str, str], tuple[Path, dict[str, Any]]]:
    found: dict[tuple[str, str, str, str], tuple[Path, dict[str, Any]]] = {}
    for file, doc in docs:
        key = result_key(doc)
        if key in found:
            raise UsageError(str(file), f"the {side} holds two results for {key_text(key)} "
                                        f"(also {found[key][0]}); compare them one by one")
        found[key] = (file, doc)
    return found


# -- rendering --------------------------------------------------------------------------------

_HEADER = ("workload", "phase/scenario", "metric", "baseline", "candidate", "change",
           "95% CI", "p", "runs", "verdict")


def rows(comparison: Comparison) -> list[list[str]]:
    """The comparison as table rows of text (shared by the text and Markdown renderings)."""
    out = []
    for m in comparison.metrics:
        out.append([
            f"{m.workload} {m.scale}", m.section, m.metric,
            _value_text(m.baseline_median, m.unit), _value_text(m.candidate_median, m.unit),
            _change_text(m.change), _ci_text(m.ratio_ci95),
            "-" if m.p_value is None else f"{m.p_value:.3g}",
            f"{len(m.baseline)} vs {len(m.candidate)}",
            m.verdict.upper() if m.verdict == REGRESSED else m.verdict,
        ])
    return out


def summary_line(comparison: Comparison) -> str:
    regressions = comparison.regressions
    if regressions:
        names = ", ".join(f"{m.workload} {m.section} {m.metric}" for m in regressions)
        return (f"REGRESSION: {len(regressions)} metric(s) significantly worse than the "
                f"baseline by more than {_percent(comparison.threshold)}: {names}")
    few = [m for m in comparison.metrics if m.verdict == TOO_FEW_RUNS]
    if few and len(few) == len(comparison.metrics):
        return ("no verdict: too few runs for a significance test "
                f"(alpha {comparison.alpha:g}); nothing fails")
    text = (f"no significant regression beyond {_percent(comparison.threshold)} "
            f"(one-sided Mann-Whitney U, alpha {comparison.alpha:g})")
    unjudged = [m for m in comparison.metrics if m.verdict in (TOO_FEW_RUNS, NO_DATA)]
    if unjudged:
        text += f"; {len(unjudged)} metric(s) not judged (too few runs or no data)"
    return text


def render_text(comparison: Comparison) -> str:
    from harness.commands.output import table

    lines = [table(rows(comparison), _HEADER), "", summary_line(comparison)]
    lines += _reason_lines(comparison)
    lines += [f"note: {note}" for note in comparison.notes]
    return "\n".join(lines)


def render_markdown(comparison: Comparison) -> str:
    header = "| " + " | ".join(_HEADER) + " |"
    rule = "|" + "|".join("---" for _ in _HEADER) + "|"
    body = []
    for row in rows(comparison):
        cells = [c.replace("|", "\\|") for c in row]
        if cells[-1] == REGRESSED.upper():
            cells[-1] = f"**{cells[-1]}**"
        body.append("| " + " | ".join(cells) + " |")
    verdict = summary_line(comparison)
    mark = "**" if comparison.regressed else ""
    lines = ["### greenperf compare", "", f"{mark}{verdict}{mark}", "", header, rule, *body]
    extra = _reason_lines(comparison) + [f"note: {n}" for n in comparison.notes]
    if extra:
        lines += ["", *[f"- {line}" for line in extra]]
    return "\n".join(lines) + "\n"


def _reason_lines(comparison: Comparison) -> list[str]:
    out = []
    for m in comparison.metrics:
        if m.verdict in (REGRESSED, IMPROVED, TOO_FEW_RUNS, NO_DATA):
            out.append(f"{m.workload} {m.scale} {m.section} {m.metric}: {m.verdict}: {m.reason}")
    if any(m.verdict == TOO_FEW_RUNS for m in comparison.metrics):
        out.append("with too few runs there is no significance; run more (5 a side is enough "
                   f"at alpha {comparison.alpha:g})")
    return list(dict.fromkeys(out))


def _value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "aborted"
    if unit == "samples" or abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.4g} {unit}"


def _change_text(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


def _ci_text(ci: list[float] | None) -> str:
    if ci is None:
        return "-"
    return f"{ci[0] - 1:+.1%} .. {ci[1] - 1:+.1%}"
