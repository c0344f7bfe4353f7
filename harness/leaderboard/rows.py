"""Loaded results as leaderboard rows, grouped into one table per workload, phase and scenario.

A row is what the index shows for one result in one table: formatted cells with a numeric sort
key and a label (measured / estimated / declared / partly estimated), plus the raw figures the
plots need. Each function here is linear in the number of rows (plus one sort per table).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from greenperf.labels import DECLARED, ESTIMATED, combine
from greenperf.leaderboard import fmt
from greenperf.leaderboard.load import Loaded
from greenperf.leaderboard.records import Phase, Record, Run, Scenario
from greenperf.leaderboard.tree import Figure, dig, read_figure


@dataclass
class Cell:
    text: str
    sort: float | None = None
    label: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = True
    help: str = ""


@dataclass
class Row:
    """One result in one table; plain data, so worker processes can hand it back."""

    href: str
    reference: bool
    system: str
    badges: list[str]
    primary: float | None
    higher_is_better: bool
    cells: dict[str, Cell]
    energy_j: float | None = None
    co2_g: float | None = None
    speedup: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    # The row's cells as HTML (Markup), keyed "head", "tail" (around the speed-up cell) and
    # "sustainability"; filled in by the worker that renders the result's page.
    html: dict[str, str] = field(default_factory=dict)

    def rank_key(self) -> tuple[int, float]:
        if self.primary is None:
            return (1, 0.0)
        return (0, -self.primary if self.higher_is_better else self.primary)

    def sustain_key(self) -> tuple[int, float, int, float, tuple[int, float]]:
        return (self.energy_j is None, self.energy_j or 0.0, self.co2_g is None,
                self.co2_g or 0.0, self.rank_key())


@dataclass
class Group:
    kind: str
    workload: str
    scale: str
    part: str
    anchor: str = ""
    metric: str = ""
    target: float | None = None
    rows: list[Row] = field(default_factory=list)
    reference_value: float | None = None
    reference_systems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.workload} · {self.part} · {self.scale} scale ({self.kind})"

    @property
    def columns(self) -> list[Column]:
        columns = TRAINING_COLUMNS if self.kind == "training" else INFERENCE_COLUMNS
        return columns if self.reference_systems else [c for c in columns if c.key != SPEEDUP]

    @property
    def sustainability_columns(self) -> list[Column]:
        return sustainability_columns(self.kind)

    @property
    def sustainability_rows(self) -> list[Row]:
        return sorted(self.rows, key=Row.sustain_key)


_COMMON_HEAD = [Column("system", "System", False), Column("accelerator", "Accelerator", False),
                Column("division", "Division", False), Column("submitter", "Submitter", False)]
_COMMON_TAIL = [
    Column("energy", "Energy to target", help="median over successful runs"),
    Column("co2", "gCO2e to target", help="from the sustainability account"),
    Column("cost", "Cost to target", help="from the sustainability account"),
]
TRAINING_COLUMNS = _COMMON_HEAD + [
    Column("tta", "Time to accuracy", help="score (olympic mean) with its 95% CI"),
    Column("speedup", "Speed-up vs reference"),
    Column("throughput", "Throughput", help="median train samples/s"),
] + _COMMON_TAIL + [
    Column("samples", "Samples seen", help="median over successful runs"),
    Column("epochs", "Epochs", help="median over successful runs"),
    Column("dataset", "Dataset bytes"),
    Column("effort", "Human effort", help="declared engineer-hours"),
    Column("runs", "Runs"),
]
INFERENCE_COLUMNS = _COMMON_HEAD + [
    Column("metric", "Score", help="samples/s (Offline, Server) or latency (Single/MultiStream)"),
    Column("verdict", "Verdict", False),
    Column("speedup", "Speed-up vs reference"),
    Column("throughput", "Throughput", help="samples/s"),
    Column("latency", "Latency", help="p90 (p99 for MultiStream and Server)"),
    Column("energy", "Energy", help="of the measurement"),
    Column("co2", "gCO2e", help="from the sustainability account"),
    Column("cost", "Cost", help="from the sustainability account"),
    Column("effort", "Human effort", help="declared engineer-hours"),
]
SUSTAINABILITY_COLUMNS = [
    Column("system", "System", False), Column("accelerator", "Accelerator", False),
    Column("energy", "Energy to target"), Column("co2", "gCO2e to target"),
    Column("cost", "Cost to target"), Column("tta", "Time to accuracy"),
    Column("samples", "Samples seen"),
]


SPEEDUP = "speedup"


def sustainability_columns(kind: str) -> list[Column]:
    return (SUSTAINABILITY_COLUMNS if kind == "training"
            else SUSTAINABILITY_COLUMNS[:5] + [Column("metric", "Score")])


def ranking_columns_around_speedup(kind: str) -> tuple[list[Column], Column, list[Column]]:
    """The ranking table's columns before and after the speed-up column, and that column.

    Everything but the rank and the speed-up is known before the tables are put together, so
    those cells are rendered by the worker that read the result (see ``site``)."""
    columns = TRAINING_COLUMNS if kind == "training" else INFERENCE_COLUMNS
    at = next(i for i, c in enumerate(columns) if c.key == SPEEDUP)
    return columns[:at], columns[at], columns[at + 1:]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and value == value and abs(value) != float("inf") else None


def accelerator(record: Record) -> str:
    declared, auto = record.system_declared, record.system_auto
    name = _text(declared.get("accelerator_model_name"))
    if name and name.lower() not in ("none", "n/a", "-"):
        per_node = _number(declared.get("accelerators_per_node"))
        return f"{per_node:g}× {name}" if per_node else name
    devices = dig(auto, "gpus", "devices")
    names = Counter(_text(d.get("name")) for d in devices if isinstance(d, dict)) if isinstance(
        devices, list) else Counter()
    names.pop(None, None)
    if names:
        return ", ".join(f"{n}× {gpu}" for gpu, n in names.items())
    cpu = _text(declared.get("host_processor_model_name")) or _text(auto.get("cpu_model"))
    return f"CPU: {cpu}" if cpu else "CPU"


def figure_cell(fig: Figure | None) -> Cell:
    if fig is None or fig.value is None:
        return Cell(fmt.DASH, None, None, fig.note if fig else None)
    unit = fig.unit
    text = (fmt.scaled(fig.value, "J") if unit == "J" else
            f"{fmt.sig(fig.value)} {unit}" if unit not in ("gCO2e",) else
            f"{fmt.sig(fig.value)} g")
    return Cell(text, fig.value, fig.label, fig.note)


def effort_cell(declared: dict[str, Any]) -> Cell:
    effort = declared.get("human_effort")
    if not isinstance(effort, dict):
        return Cell(fmt.DASH)
    hours = [h for h in (_number(effort.get("porting_hours")), _number(effort.get("tuning_hours")))
             if h is not None]
    if not hours:
        return Cell(fmt.DASH)
    total = sum(hours)
    rate, currency = _number(effort.get("hourly_rate")), _text(effort.get("currency"))
    cost = f" · {fmt.sig(total * rate)} {currency}" if rate is not None and currency else ""
    return Cell(f"{fmt.sig(total)} h{cost}", total, DECLARED)


def _phase_account(record: Record, phase: Phase, position: int) -> dict[str, Any] | None:
    phases = dig(record.sustainability, "phases")
    if not isinstance(phases, list):
        return None
    named = [p for p in phases if isinstance(p, dict) and p.get("name") == phase.name]
    if named:
        return named[0]
    candidate = phases[position] if position < len(phases) else None
    return candidate if isinstance(candidate, dict) else None


def _scenario_account(record: Record, scenario: Scenario, position: int) -> dict[str, Any] | None:
    entries = dig(record.sustainability, "inference")
    if not isinstance(entries, list):
        return None
    wanted = f"{scenario.name}/{scenario.mode}"
    named = [e for e in entries if isinstance(e, dict) and e.get("name") in (wanted, scenario.name)]
    if named:
        return named[0]
    candidate = entries[position] if position < len(entries) else None
    return candidate if isinstance(candidate, dict) else None


def energy_figure(runs: list[Run]) -> tuple[float | None, str | None]:
    """Median energy to target over successful runs, and the label that covers them."""
    measured = [r.energy for r in runs if r.succeeded and r.energy is not None
                and r.energy.total_joules is not None]
    joules = _median([e.total_joules for e in measured])  # type: ignore[misc]
    label = combine((e.label for e in measured), keep_partly=True) if measured else None
    return joules, label


def median_run(runs: list[Run]) -> Run | None:
    """The successful run with the (lower) median TTA: a representative curve."""
    ok = sorted((r for r in runs if r.succeeded), key=lambda r: r.tta_seconds)
    return ok[(len(ok) - 1) // 2] if ok else (runs[0] if runs else None)


def _common_cells(item: Loaded) -> dict[str, Cell]:
    record = item.record
    submitter = _text(record.system_declared.get("submitter"))
    return {
        "accelerator": Cell(accelerator(record)),
        "division": Cell(record.division),
        "submitter": Cell(submitter or fmt.DASH, None, DECLARED if submitter else None),
        "effort": effort_cell(record.system_declared),
    }


def badges(item: Loaded) -> list[str]:
    record = item.record
    out = []
    if record.imported:
        out.append("imported")
    if item.reference:
        out.append("reference")
    if record.status != "complete":
        out.append("incomplete")
    return out


def training_row(item: Loaded, phase: Phase, position: int, href: str) -> Row:
    """The row of one training phase of a result."""
    record = item.record
    runs = phase.runs
    ok = [r for r in runs if r.succeeded]
    score = phase.score
    cells = _common_cells(item)
    if score.value is not None:
        ci = (f"95% CI {fmt.sig(score.ci95[0])}–{fmt.sig(score.ci95[1])} s"
              if score.ci95 else "no CI (too few runs)")
        cells["tta"] = Cell(fmt.seconds(score.value), score.value, None, ci)
    else:
        cells["tta"] = Cell("no score", None, None, score.reason or "no score")
    throughput = _median([r.train_throughput for r in ok])
    cells["throughput"] = Cell(fmt.DASH if throughput is None else
                               f"{fmt.sig(throughput)} samples/s", throughput)
    joules, label = energy_figure(runs)
    cells["energy"] = Cell(fmt.DASH if joules is None else fmt.scaled(joules, "J"), joules,
                           label)
    account = _phase_account(record, phase, position)
    co2 = read_figure(dig(account, "carbon", "to_target"))
    cells["co2"] = figure_cell(co2)
    cells["cost"] = figure_cell(read_figure(dig(account, "money", "to_target")))
    samples = _median([float(r.samples_seen) for r in ok])
    epochs = _median([r.epochs for r in ok])
    cells["samples"] = Cell(fmt.count(samples), samples)
    cells["epochs"] = Cell(fmt.DASH if epochs is None else fmt.sig(epochs), epochs)
    cells["dataset"] = Cell(fmt.nbytes(phase.dataset_bytes), phase.dataset_bytes)
    contended = sum(r.contended for r in runs)
    cells["runs"] = Cell(f"{len(runs)}" + (f" ({contended} CONTENDED)" if contended else ""),
                         len(runs), None, f"{len(ok)} successful")
    rep = median_run(runs)
    return Row(href, item.reference, record.system_name,
               badges(item) + (["contended"] if contended else []),
               score.value, False, cells, joules,
               co2.value if co2 is not None else None,
               curve=[(float(s), m) for s, _, m in rep.curve] if rep else [])


def _latency(scenario: Scenario) -> tuple[str, float] | None:
    wanted = ("p90",) if scenario.key == "singlestream" else ("p99", "p90")
    for label in wanted:
        if label in scenario.latency_ms:
            return label, scenario.latency_ms[label]
    return None


def inference_row(item: Loaded, scenario: Scenario, position: int, href: str) -> Row:
    cells = _common_cells(item)
    latency = _latency(scenario)
    if scenario.latency_bound:
        primary = latency[1] if latency else None
        cells["metric"] = Cell(f"{latency[0]} {fmt.sig(latency[1])} ms" if latency else fmt.DASH,
                               primary)
    else:
        primary = scenario.samples_per_second
        if primary is None and scenario.metric_value is not None:
            primary = scenario.metric_value
        cells["metric"] = Cell(fmt.DASH if primary is None else
                               f"{fmt.sig(primary)} {scenario.metric_unit or 'samples/s'}",
                               primary)
    cells["verdict"] = Cell(scenario.verdict or fmt.DASH)
    sps = scenario.samples_per_second
    cells["throughput"] = Cell(fmt.DASH if sps is None else f"{fmt.sig(sps)} samples/s", sps)
    cells["latency"] = Cell(f"{latency[0]} {fmt.sig(latency[1])} ms" if latency else fmt.DASH,
                            latency[1] if latency else None)
    energy = scenario.energy
    joules = energy.total_joules if energy else None
    cells["energy"] = Cell(fmt.DASH if joules is None else fmt.scaled(joules, "J"), joules,
                           (energy.label or ESTIMATED) if joules is not None else None)
    account = _scenario_account(item.record, scenario, position)
    co2 = read_figure(dig(account, "carbon", "total"))
    cells["co2"] = figure_cell(co2)
    cells["cost"] = figure_cell(read_figure(dig(account, "money", "total")))
    return Row(href, item.reference, item.record.system_name, badges(item), primary,
               not scenario.latency_bound, cells, joules, co2.value if co2 else None)


def _anchor(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "table"
    anchor, n = base, 2
    while anchor in used:
        anchor, n = f"{base}-{n}", n + 1
    used.add(anchor)
    return anchor


GroupKey = tuple[str, str, str, str]  # kind, workload, scale, phase or scenario


@dataclass
class Entry:
    """A row and the table it belongs in."""

    key: GroupKey
    metric: str
    target: float | None
    row: Row


def entries_for(item: Loaded, href: str) -> list[Entry]:
    """Every table row of one result: one per training phase and per inference scenario."""
    record = item.record
    out = []
    if record.kind == "training":
        for position, phase in enumerate(record.phases):
            out.append(Entry(("training", record.workload, record.scale, phase.name),
                             phase.metric, phase.target,
                             training_row(item, phase, position, href)))
    for position, scenario in enumerate(record.scenarios):
        part = scenario.name + ("" if scenario.mode == "performance" else f" ({scenario.mode})")
        out.append(Entry(("inference", record.workload, record.scale, part), "", None,
                         inference_row(item, scenario, position, href)))
    return out


def build_groups(entries: list[Entry]) -> list[Group]:
    """One group per (kind, workload, scale, phase or scenario), rows ranked by the score."""
    groups: dict[GroupKey, Group] = {}
    for entry in entries:
        group = groups.get(entry.key)
        if group is None:
            group = groups[entry.key] = Group(*entry.key, metric=entry.metric,
                                              target=entry.target)
        group.rows.append(entry.row)
    used: set[str] = set()
    ordered = [groups[k] for k in sorted(groups)]
    for group in ordered:
        group.anchor = _anchor(f"{group.kind}-{group.workload}-{group.part}-{group.scale}", used)
        group.rows.sort(key=Row.rank_key)
        _speedups(group)
    return ordered


def _speedups(group: Group) -> None:
    refs = [r for r in group.rows if r.reference and r.primary]
    group.reference_systems = sorted({r.system for r in refs})
    if not refs:
        for row in group.rows:
            row.cells[SPEEDUP] = Cell(fmt.DASH, None, None, "no reference result in this table")
        return
    reference = statistics.median(r.primary for r in refs)  # type: ignore[misc]
    group.reference_value = reference
    for row in group.rows:
        if row.primary:
            row.speedup = row.primary / reference if row.higher_is_better else (
                reference / row.primary)
            row.cells[SPEEDUP] = Cell(f"{fmt.sig(row.speedup)}×", row.speedup)
        else:
            row.cells[SPEEDUP] = Cell(fmt.DASH)
