"""Live progress of a run on stderr: run k/N, samples, metric vs. target, elapsed time
against the phase's time budget with an estimate of the time left, and a warning when
other processes compete for the CPU."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Budget:
    """A phase's budgets: the run is aborted when either is spent before the target."""

    max_samples: int
    max_seconds: float


def seconds_left(samples: int, elapsed: float, budget: Budget) -> float | None:
    """Upper bound on the run's remaining time: until the sample budget at the rate so far
    (evaluations included), or until the time budget, whichever comes first. The target
    may be reached sooner, so it is a bound, not a forecast. None before any sample."""
    if samples <= 0 or elapsed <= 0:
        return None
    to_samples = max(0, budget.max_samples - samples) * elapsed / samples
    return max(0.0, min(to_samples, budget.max_seconds - elapsed))


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest:02d}s"


def progress_line(label: str, run: int, runs: int, samples: int, metric: float | None,
                  target: float, elapsed: float, budget: Budget | None = None,
                  busy_cores: float | None = None, le: str = "≤") -> str:
    """The status line; ``busy_cores`` is the foreign load when it is over the threshold."""
    shown = "--" if metric is None else f"{metric:.4f}"
    of = f"/{budget.max_samples:,}" if budget else ""
    line = (f"{label} run {run}/{runs}  samples {samples:,}{of}  "
            f"metric {shown} / target {target:g}  {elapsed:6.1f}s")
    if budget is not None:
        line += f" of {budget.max_seconds:g}s budget"
        left = seconds_left(samples, elapsed, budget)
        if left is not None:
            line += f", {le}{_duration(left)} left at {samples / elapsed:,.0f} samples/s"
    if busy_cores is not None:
        line += f"  [BUSY: {busy_cores:.1f} other cores]"
    return line


class Progress:
    """Rewrites one status line on a terminal; prints one line per eval otherwise."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._width = 0
        # "≤" where the stream can encode it (a C/ASCII locale cannot).
        try:
            "≤".encode(getattr(self.stream, "encoding", None) or "ascii")
            self._le = "≤"
        except (LookupError, UnicodeEncodeError):
            self._le = "<="

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        self._clear()
        print(text, file=self.stream, flush=True)

    def update(self, label: str, run: int, runs: int, samples: int, metric: float | None,
               target: float, elapsed: float, budget: Budget | None = None,
               busy_cores: float | None = None, heartbeat: bool = False) -> None:
        """``heartbeat``: a between-evals refresh, shown on a terminal only (a log would
        get a line every few seconds)."""
        if not self.enabled or (heartbeat and not self.live):
            return
        line = progress_line(label, run, runs, samples, metric, target, elapsed, budget,
                             busy_cores, self._le)
        if self.live:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self._width = len(line)
        else:
            print(line, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
