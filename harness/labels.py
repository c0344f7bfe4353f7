"""How a figure was obtained, and the one rule that labels a figure made of several.

Every joule, gram, price and hour greenperf reports says where it came from:

- ``measured``: read from a sensor or a clock during the run (NVML, RAPL, the timer);
- ``declared``: someone's word (a price or the engineer-hours a user supplies);
- ``estimated``: computed by greenperf from a model or an average (TDP x CPU time, an annual
  grid intensity, a shipped price list).

From strongest to weakest claim: measured, declared, estimated. A declared figure ranks above
an estimate because its author stands behind it for this very system; an estimate is an
average over systems. A figure derived from several inputs can claim no more than its weakest
input (``combine``).

Energy windows and the leaderboard keep one more, display-only label: ``partly estimated``,
for a sum of which some part was measured and some was not. The sustainability account's
schema knows only the three labels, so there a mix is ``estimated`` (``combine`` without
``keep_partly``) and the account says "partly estimated" in the figure's ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

MEASURED = "measured"
DECLARED = "declared"
ESTIMATED = "estimated"
PARTLY_ESTIMATED = "partly estimated"

# The labels a sustainability-account figure may carry (the schema's enum, in its order).
LABELS: tuple[str, ...] = (MEASURED, ESTIMATED, DECLARED)

Label = Literal["measured", "declared", "estimated", "partly estimated"]

# Rank of each label's claim, strongest first. ``partly estimated`` stands between measured and
# declared: part of it was measured. Anything unknown (a missing or foreign label) ranks with the
# estimates, because an unreadable label backs no stronger claim.
_STRENGTH = {MEASURED: 0, PARTLY_ESTIMATED: 1, DECLARED: 2, ESTIMATED: 3}


def strength(label: str | None) -> int:
    """Rank of ``label``'s claim: 0 is the strongest (measured), higher is weaker."""
    return _STRENGTH.get(label or "", _STRENGTH[ESTIMATED])


def combine(labels: Iterable[str | None], *, keep_partly: bool = False) -> str:
    """The label of a figure derived from inputs labelled ``labels``: the weakest of them.

    With no inputs nothing weakens the figure, so it is ``measured`` (callers that mean
    otherwise, e.g. a window that no meter read, say so themselves).

    ``keep_partly`` is for energy windows and leaderboard cells: inputs that differ while some
    of them were (partly) measured combine to ``partly estimated`` instead of the weakest
    label, so a reader sees that a measurement is in there. Without it, ``partly estimated``
    counts as ``estimated``: the result is always one of ``LABELS``.
    """
    found = {label if label in _STRENGTH else ESTIMATED for label in labels}
    if not found:
        return MEASURED
    if keep_partly:
        if len(found) > 1 and found & {MEASURED, PARTLY_ESTIMATED}:
            return PARTLY_ESTIMATED
    elif PARTLY_ESTIMATED in found:
        found = (found - {PARTLY_ESTIMATED}) | {ESTIMATED}
    return max(found, key=strength)
