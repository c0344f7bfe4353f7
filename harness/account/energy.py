"""Energy windows of runs, summed: joules, seconds, per-component totals and labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from greenperf.labels import combine


@dataclass
class EnergyTotals:
    """Energy windows of a set of runs, summed, with their combined label and sources."""

    joules: float = 0.0
    seconds: float = 0.0
    labels: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    components: dict[str, float] = field(default_factory=dict)
    component_labels: dict[str, set[str]] = field(default_factory=dict)
    lower_bound: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, window: Mapping[str, Any]) -> None:
        self.joules += float(window["total_joules"])
        self.seconds += float(window.get("seconds") or 0.0)
        self.lower_bound = self.lower_bound or bool(window.get("lower_bound"))
        readings = window.get("readings") or []
        for reading in readings:
            component = str(reading.get("component", "?"))
            self.components[component] = (self.components.get(component, 0.0)
                                          + float(reading.get("joules") or 0.0))
            # Meters say "partly estimated" for mixed windows; the account's labels do not.
            label = combine([reading.get("label")])
            self.component_labels.setdefault(component, set()).add(label)
            self.labels.add(label)
            if reading.get("source"):
                self.sources.add(str(reading["source"]))
        if not readings:
            self.labels.add(combine([window.get("label")]))
        for note in window.get("notes") or []:
            if note not in self.notes:
                self.notes.append(note)

    @property
    def label(self) -> str:
        return combine(self.labels)

    @property
    def detail(self) -> str | None:
        parts = []
        if len(self.labels) > 1:
            parts.append("partly estimated")
        if self.lower_bound:
            parts.append("lower bound: part of a window could not be measured")
        return "; ".join(parts) or None

    @property
    def source(self) -> str:
        return " + ".join(sorted(self.sources)) or "energy windows"


def did_run(run: Mapping[str, Any]) -> bool:
    """False for a run record of a phase that was skipped (nothing ran, nothing to measure)."""
    return run.get("energy") is not None or float(run.get("tta_seconds") or 0.0) > 0.0


def run_joules(run: Mapping[str, Any]) -> float | None:
    window = run.get("energy")
    if not isinstance(window, Mapping) or window.get("total_joules") is None:
        return None
    return float(window["total_joules"])
