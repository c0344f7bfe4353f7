"""Live progress of a run on stderr: run k/N, samples, metric vs. target, elapsed."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """Rewrites one status line on a terminal; prints one line per eval otherwise."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._width = 0

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        self._clear()
        print(text, file=self.stream, flush=True)

    def update(self, label: str, run: int, runs: int, samples: int, metric: float | None,
               target: float, elapsed: float) -> None:
        if not self.enabled:
            return
        shown = "--" if metric is None else f"{metric:.4f}"
        line = (f"{label} run {run}/{runs}  samples {samples:,}  "
                f"metric {shown} / target {target:g}  {elapsed:6.1f}s")
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
