"""The only place that creates rich Consoles: all CLI output goes through here.

Width: on a terminal, rich follows the terminal's width; when the output is not a terminal (a
pipe, a file), lines are never wrapped or folded at 80 columns (``ita-vc runs list | grep bt_``
gives whole rows with whole ids). Tables go through :func:`print_table`: on a narrow terminal
it drops the lower-priority columns (and says which) and never breaks an id.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PIPE_WIDTH", "Col", "err", "out", "print_table"]

PIPE_WIDTH = 100_000
"""The width of a console whose output is not a terminal: wide enough that nothing wraps."""


@functools.cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    # markup off: notes, reasons, names and paths are user text; "[/]" or "[bold]" in them
    # must print as typed (and never raise rich's MarkupError), in tables too
    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False)


def _fitted(console: Console) -> Console:
    """``console``, made full width when its file is not a terminal (checked at each use, as
    tests and callers may redirect stdout)."""
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def out() -> Console:
    """Console for results (stdout)."""
    return _fitted(_console(False))


def err() -> Console:
    """Console for errors and warnings (stderr)."""
    return _fitted(_console(True))


@dataclass(frozen=True, slots=True)
class Col:
    """A table column: ``priority`` 0 is always shown, higher numbers are dropped first when
    the terminal is too narrow; ``no_wrap`` keeps the cells whole (ids, hashes, dates)."""

    header: str
    priority: int = 0
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False


_FOLDED_MIN = 8  # a wrapping column folds down to this many cells at the least


def _natural_widths(columns: Sequence[Col], rows: Sequence[Sequence[str]]) -> list[int]:
    from rich.cells import cell_len

    widths = [cell_len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], max((cell_len(x) for x in cell.splitlines()), default=0))
    return widths


def _table_width(widths: Sequence[int]) -> int:
    """A rich table's width with these column widths (padding 1 each side, borders)."""
    return sum(widths) + 3 * len(widths) + 1


def _shown(
    columns: Sequence[Col], widths: Sequence[int], limit: int
) -> tuple[list[int], list[str]]:
    """The indexes of the columns that fit ``limit`` and the headers of the others: the lowest
    priorities (highest numbers) go first, then any that fits again comes back."""

    def fits(indexes: Sequence[int]) -> bool:
        return _table_width([widths[i] for i in indexes]) <= limit

    kept = list(range(len(columns)))
    dropped: list[int] = []
    while not fits(kept):
        droppable = [i for i in kept if columns[i].priority > 0]
        if not droppable:
            break
        victim = max(droppable, key=lambda i: (columns[i].priority, i))
        kept.remove(victim)
        dropped.append(victim)
    for i in reversed(dropped):  # the most important first
        if fits(sorted([*kept, i])):
            kept = sorted([*kept, i])
    return kept, [columns[i].header for i in range(len(columns)) if i not in kept]


def print_table(
    console: Console,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print a table that fits ``console``: all columns when they fit (always when the output
    is not a terminal), else without the lower-priority columns (named in the caption); cells of
    ``no_wrap`` columns are never broken, even when the terminal is narrower than they are."""
    from rich.table import Table

    widths = _natural_widths(columns, rows)
    kept, dropped = _shown(columns, widths, console.width)
    if dropped:
        note = f"not shown (narrow terminal): {', '.join(dropped)}"
        caption = f"{caption}; {note}" if caption else note
    table = Table(title=title, caption=caption)
    for i in kept:
        col = columns[i]
        table.add_column(
            col.header,
            justify=col.justify,
            no_wrap=col.no_wrap,
            overflow="ellipsis" if col.no_wrap else "fold",
            min_width=widths[i] if col.no_wrap else None,
        )
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    least = _table_width(
        [widths[i] if columns[i].no_wrap else min(widths[i], _FOLDED_MIN) for i in kept]
    )
    if least > console.width:  # even folded it does not fit: keep ids whole, let lines run on
        console.print(table, width=least, crop=False)
    else:
        console.print(table)
