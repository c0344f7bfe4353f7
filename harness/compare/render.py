"""A comparison as a text table (terminal) or Markdown (a CI job summary or PR comment)."""

from __future__ import annotations

import math

from greenperf.compare.verdict import (
    IMPROVED,
    NO_DATA,
    REGRESSED,
    TOO_FEW_RUNS,
    Comparison,
    percent_text,
)

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
                f"baseline by more than {percent_text(comparison.threshold)}: {names}")
    few = [m for m in comparison.metrics if m.verdict == TOO_FEW_RUNS]
    if few and len(few) == len(comparison.metrics):
        return ("no verdict: too few runs for a significance test "
                f"(alpha {comparison.alpha:g}); nothing fails")
    text = (f"no significant regression beyond {percent_text(comparison.threshold)} "
            f"(one-sided Mann-Whitney U, alpha {comparison.alpha:g})")
    unjudged = [m for m in comparison.metrics if m.verdict in (TOO_FEW_RUNS, NO_DATA)]
    if unjudged:
        text += f"; {len(unjudged)} metric(s) not judged (too few runs or no data)"
    return text


def render_text(comparison: Comparison) -> str:
    from greenperf.commands.output import table

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
