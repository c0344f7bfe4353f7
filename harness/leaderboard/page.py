"""What one result page shows, prepared as plain values for the template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from harness.leaderboard import fmt, plots
from harness.leaderboard.load import Loaded
from harness.leaderboard.records import Phase, Run, Scenario
from harness.leaderboard.rows import ESTIMATED, MEASURED, accelerator, badges, energy_figure
from harness.leaderboard.tree import TreeRow, flatten, scalar_text

# Parts of the account that say how it was computed (region, prices, devices), shown apart
# from its figures.
ACCOUNT_SETTINGS = ("settings", "devices", "version", "kind")


@dataclass
class LogLink:
    """A log the page links to: ``href`` when it was copied into the site, else why not."""

    path: str
    href: str | None
    problem: str | None = None


@dataclass
class RunView:
    run: Run
    tta: str
    samples_to_target: str
    epochs: str
    throughput: str
    peak_memory: str
    energy: str
    energy_label: str | None
    foreign_cores: str
    log: LogLink


@dataclass
class PhaseView:
    phase: Phase
    score: str
    ci: str
    energy: str
    energy_label: str | None
    runs: list[RunView]
    readings: list[dict[str, Any]]
    recipe: list[TreeRow]
    by_time: Markup | None
    by_samples: Markup | None
    power: Markup | None
    energy_bars: Markup | None


@dataclass
class ScenarioView:
    scenario: Scenario
    throughput: str
    latency: str
    metric: str
    energy: str
    energy_label: str | None


def _run_view(run: Run, link: LogLink) -> RunView:
    memory = fmt.nbytes(run.peak_rss_bytes) + " RSS"
    if run.cuda_max_allocated_bytes is not None:
        memory += f", {fmt.nbytes(run.cuda_max_allocated_bytes)} CUDA"
    energy = run.energy
    joules = energy.total_joules if energy else None
    return RunView(
        run=run,
        tta=fmt.seconds(run.tta_seconds),
        samples_to_target=fmt.count(run.samples_to_target),
        epochs=fmt.sig(run.epochs),
        throughput=f"{fmt.sig(run.train_throughput)} samples/s",
        peak_memory=memory,
        energy=fmt.DASH if joules is None else fmt.scaled(joules, "J"),
        energy_label=(energy.label or ESTIMATED) if joules is not None else None,
        foreign_cores=fmt.DASH if run.foreign_cores is None else f"{run.foreign_cores:.2f}",
        log=link,
    )


def _phase_view(phase: Phase, links: dict[str, LogLink]) -> PhaseView:
    score = phase.score
    joules, label = energy_figure(phase.runs)
    by_time, by_samples = plots.eval_curves(phase)
    readings = [dict(reading, run=run.index, joules_text=fmt.DASH if reading["joules"] is None
                     else fmt.scaled(reading["joules"], "J"))
                for run in phase.runs if run.energy for reading in run.energy.readings]
    return PhaseView(
        phase=phase,
        score=fmt.seconds(score.value) if score.value is not None else "no score",
        ci=(f"{fmt.sig(score.ci95[0])}–{fmt.sig(score.ci95[1])} s" if score.ci95 else fmt.DASH),
        energy=fmt.DASH if joules is None else fmt.scaled(joules, "J"),
        energy_label=label,
        runs=[_run_view(r, links.get(r.log_path) or LogLink(r.log_path, None, "not copied"))
              for r in phase.runs],
        readings=readings,
        recipe=flatten(phase.recipe),
        by_time=by_time,
        by_samples=by_samples,
        power=plots.power_traces(phase.runs, f"Power over time ({phase.name})"),
        energy_bars=plots.energy_per_run(phase.runs, f"Energy per run ({phase.name})"),
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


def _account_settings(account: dict[str, Any] | None) -> list[TreeRow]:
    """Region, devices and where the prices came from; the full price book (every price with
    its source and date) stays in the raw result JSON, as it is the same for most results."""
    if account is None:
        return []
    shown: dict[str, Any] = {"devices": account.get("devices")}
    settings = account.get("settings")
    if isinstance(settings, dict):
        shown.update((k, v) for k, v in settings.items() if k != "prices")
        prices = settings.get("prices")
        if isinstance(prices, dict):
            shown["prices"] = {"origins": prices.get("origins"),
                               "entries": "every price with its source and date is in the raw "
                                          "result JSON (sustainability.settings.prices)"}
    return flatten(shown)


def result_context(item: Loaded, links: dict[str, LogLink]) -> dict[str, Any]:
    """Everything ``result.html`` renders for one result."""
    record = item.record
    account = record.sustainability
    findings = [{"finding": f, "log": links.get(f.log) or LogLink(f.log, None, "not copied")}
                for f in record.findings]
    return {
        "item": item,
        "record": record,
        "badges": badges(item),
        "accelerator": accelerator(record),
        "submitter": scalar_text(record.system_declared.get("submitter")),
        "system_auto": flatten(record.system_auto),
        "system_declared": flatten(record.system_declared),
        "software": flatten(record.software),
        "phases": [_phase_view(p, links) for p in record.phases],
        "scenarios": [_scenario_view(s) for s in record.scenarios],
        "sustainability": (None if account is None else flatten(
            {k: v for k, v in account.items() if k not in ACCOUNT_SETTINGS})),
        "account_settings": _account_settings(account),
        "findings": findings,
        "findings_failed": sum(not f.passed for f in record.findings),
        "measured": MEASURED,
        "raw_href": f"{item.slug}.json",
    }
