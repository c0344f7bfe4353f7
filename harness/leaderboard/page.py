"""What one result page shows, prepared for ``result.html``.

The server renders the header, the summary and the inference table; the detail (system
description, every run, curves, power, account, compliance) is drawn in the browser by
``result.js`` from the result file itself, embedded in the page. That keeps a page's
rendering cost to reading the result once, which is what lets ten thousand pages render in
seconds (see ``benchmarks/test_bench_leaderboard_scale.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from greenperf.labels import ESTIMATED, MEASURED
from greenperf.leaderboard import fmt
from greenperf.leaderboard.load import Loaded
from greenperf.leaderboard.records import Phase, Scenario
from greenperf.leaderboard.rows import accelerator, badges, energy_figure
from greenperf.leaderboard.tree import scalar_text
from markupsafe import Markup

# Parts of the account that say how it was computed (region, prices, devices), shown apart
# from its figures.
ACCOUNT_SETTINGS = ("settings", "devices", "version", "kind")
NEEDS_SCRIPT = Markup('<p class="empty">Drawn by this page\'s script from the result embedded '
                      'in it: enable JavaScript, or read the raw result JSON.</p>')


@dataclass
class LogLink:
    """A log the page links to: ``href`` when it was copied into the site, else why not."""

    path: str
    href: str | None
    problem: str | None = None


@dataclass
class PhaseView:
    phase: Phase
    score: str
    ci: str
    energy: str
    energy_label: str | None


@dataclass
class ScenarioView:
    scenario: Scenario
    throughput: str
    latency: str
    metric: str
    energy: str
    energy_label: str | None


def _phase_view(phase: Phase) -> PhaseView:
    score = phase.score
    joules, label = energy_figure(phase.runs)
    return PhaseView(
        phase=phase,
        score=fmt.seconds(score.value) if score.value is not None else "no score",
        ci=(f"{fmt.sig(score.ci95[0])}–{fmt.sig(score.ci95[1])} s" if score.ci95 else fmt.DASH),
        energy=fmt.DASH if joules is None else fmt.scaled(joules, "J"),
        energy_label=label,
    )


def _scenario_view(scenario: Scenario) -> ScenarioView:
    latency = ", ".join(f"{k} {fmt.sig(v)} ms" for k, v in scenario.latency_ms.items()) or fmt.DASH
    joules = scenario.energy.total_joules if scenario.energy else None
    metric = fmt.DASH
    if scenario.metric_value is not None:
        metric = (f"{scenario.metric_name or 'metric'} {fmt.sig(scenario.metric_value)} "
                  f"{scenario.metric_unit or ''}").strip()
    return ScenarioView(
        scenario=scenario,
        throughput=fmt.DASH if scenario.samples_per_second is None else
        f"{fmt.sig(scenario.samples_per_second)} samples/s",
        latency=latency,
        metric=metric,
        energy=fmt.DASH if joules is None else fmt.scaled(joules, "J"),
        energy_label=((scenario.energy.label or ESTIMATED) if scenario.energy and joules is not None
                      else None),
    )


def embedded_json(raw: bytes) -> Markup:
    """The result file as the text of a ``<script type="application/json">`` element.

    In JSON a "<" can only stand inside a string, where "\\u003c" means the same; with every
    "<" replaced, the text can neither close the element nor open a comment or tag, so it is
    safe verbatim, and the browser's JSON.parse gives back exactly the checked document."""
    text = raw.decode(json.detect_encoding(raw))
    return Markup(text.replace("<", "\\u003c"))


def result_context(item: Loaded, links: dict[str, LogLink]) -> dict[str, Any]:
    """Everything ``result.html`` renders for one result."""
    record = item.record
    return {
        "item": item,
        "record": record,
        "badges": badges(item),
        "accelerator": accelerator(record),
        "submitter": scalar_text(record.system_declared.get("submitter")),
        "phases": [_phase_view(p) for p in record.phases],
        "scenarios": [_scenario_view(s) for s in record.scenarios],
        "measured": MEASURED,
        "raw_href": f"{item.slug}.json",
        "needs_script": NEEDS_SCRIPT,
        "result_json": embedded_json(item.raw),
        # Links come from here, never from the result file: the script only shows the
        # file's log paths as text.
        "page_data": {"logs": {path: [link.href, link.problem] for path, link in links.items()},
                      "account_settings": list(ACCOUNT_SETTINGS)},
    }
