"""The index's table cells as HTML, built in Python.

Every result gives a row in two tables of fifteen-odd cells; at ten thousand results, building
them here costs a fraction of a template macro. The rule is the template's: every string that
comes from a result file passes through ``escape``; only our own fixed markup goes in verbatim.
"""

from __future__ import annotations

from greenperf.leaderboard.rows import Cell, Column, Row
from markupsafe import Markup, escape

_LABEL_CLASSES = {"measured": "measured", "estimated": "estimated", "declared": "declared",
                  "partly estimated": "partly", "imported": "imported", "reference": "reference",
                  "incomplete": "incomplete", "contended": "contended"}


def label_class(label: str) -> str:
    """A fixed CSS class for a label; anything unknown (labels come from files) is 'other'."""
    return _LABEL_CLASSES.get(str(label), "other")


def tag(label: str | None) -> Markup:
    """The coloured label after a figure ("" for none); also a template global."""
    if not label:
        return Markup("")
    return Markup(f'<span class="tag tag-{label_class(label)}">{escape(label)}</span>')


def badge_list(names: list[str]) -> Markup:
    """Badges after a system's name (reference, imported, ...); also a template global."""
    return Markup("".join(f'<span class="badge badge-{label_class(n)}">{escape(n)}</span>'
                          for n in names))


def cell_td(cell: Cell, column: Column, note_below: bool = False) -> Markup:
    """One index table cell: text, label tag, and the note as a tooltip or a line below."""
    attrs = ' class="num"' if column.numeric else ""
    if cell.sort is not None:
        attrs += f' data-sort="{escape(cell.sort)}"'
    if cell.note and not note_below:
        attrs += f' title="{escape(cell.note)}"'
    below = f'<div class="sub">{escape(cell.note)}</div>' if note_below and cell.note else ""
    return Markup(f"<td{attrs}>{escape(cell.text)}{tag(cell.label)}{below}</td>")


def row_cells(row: Row, columns: list[Column], note_below: str = "") -> Markup:
    """A row's cells for ``columns``; the system cell links to the result's page."""
    parts = []
    for column in columns:
        if column.key == "system":
            parts.append(f'<td class="system"><a href="{escape(row.href)}">{escape(row.system)}'
                         f"</a>{badge_list(row.badges)}</td>")
        else:
            parts.append(cell_td(row.cells[column.key], column, column.key == note_below))
    return Markup("".join(parts))
