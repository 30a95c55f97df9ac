"""Output that fits the terminal, and plain text when it goes anywhere else.

On a terminal, a table keeps its key columns whole: a path column is shortened from the left
(``…/out/day1/a.png``, the end of a path says most), a text column wraps at spaces, and optional
columns are left out, least useful first, until the rest fits the width. Anywhere else (a pipe,
a file, the journal) every row is one line with every column whole, aligned with two spaces: what
grep, cut and a pager want; ``--json`` stays the machine format. Error messages are wrapped at
spaces only (a word or a path is never cut), with continuation lines indented under their own
line, and not at all when they do not go to a terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rich.console import Console
from rich.table import Table
from rich.text import Text

GAP = 2  # spaces between columns
ELLIPSIS = "…"
SMALLEST = 4  # the narrowest a path or text column gets on a very narrow terminal


class Fit(StrEnum):
    KEEP = "keep"  # always whole
    PATH = "path"  # shortened from the left
    WRAP = "wrap"  # wraps at spaces onto more lines of the row


class PathCell(str):
    """A cell that is a path: shortened from the left in any column, never wrapped."""


@dataclass(frozen=True)
class Column:
    header: str
    fit: Fit = Fit.KEEP
    drop: int = 0  # 0: never left out; else left out when too wide, the highest first
    min_width: int = 12  # the least a PATH or WRAP column is given


def shorten_left(text: str, width: int) -> str:
    """``text`` cut from the left to ``width`` characters, at a ``/`` when one is near."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    tail = text[len(text) - (width - 1):]
    cut = tail.find("/")
    if 0 < cut <= len(tail) // 3:
        tail = tail[cut:]
    return ELLIPSIS + tail


def _flat(text: str) -> str:
    flat = " ".join(text.splitlines())
    return PathCell(flat) if isinstance(text, PathCell) else flat


def _pieces(word: str, width: int) -> list[str]:
    """A word too long for the column, split after a ``/`` where it can be, else cut."""
    pieces = []
    while len(word) > width:
        cut = word.rfind("/", 0, width)
        cut = cut + 1 if cut > 0 else width
        pieces.append(word[:cut])
        word = word[cut:]
    return [*pieces, word]


def wrap_text(text: str, width: int) -> str:
    """``text`` wrapped at spaces to ``width``; only a word longer than that is split, after a
    ``/`` where it has one (a path keeps its folders whole)."""
    lines: list[str] = []
    for word in text.split():
        for k, piece in enumerate(_pieces(word, max(1, width))):
            sep = "" if k else " "  # the pieces of one word join without a space
            if lines and len(lines[-1]) + len(sep) + len(piece) <= width:
                lines[-1] += sep + piece
            else:
                lines.append(piece)
    return "\n".join(lines)


def _fitted(cell: str, column: Column, width: int) -> str:
    if column.fit == Fit.PATH or isinstance(cell, PathCell):
        return shorten_left(cell, width)
    if column.fit == Fit.WRAP:
        return wrap_text(cell, width)
    return cell


def _natural(column: Column, cells: Sequence[str]) -> int:
    return max([len(column.header), *(len(c) for c in cells)])


def _least(column: Column, natural: int) -> int:
    return natural if column.fit == Fit.KEEP else min(natural, column.min_width)


def layout(columns: Sequence[Column], rows: Sequence[Sequence[str]],
           width: int) -> tuple[list[int], list[int]]:
    """Which columns to show (indexes) and the width of each, for a terminal ``width`` wide."""
    natural = [_natural(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))

    def needed(indexes: list[int]) -> int:
        return sum(_least(columns[i], natural[i]) for i in indexes) + GAP * (len(indexes) - 1)

    while needed(shown) > width and any(columns[i].drop for i in shown):
        worst = max((i for i in shown if columns[i].drop), key=lambda i: (columns[i].drop, i))
        shown.remove(worst)
    widths = {i: _least(columns[i], natural[i]) for i in shown}
    spare = width - needed(shown)
    for i in shown:  # still too wide: paths and text give up what they must, down to a few
        if spare < 0 and columns[i].fit != Fit.KEEP:
            cut = min(-spare, max(0, widths[i] - SMALLEST))
            widths[i] -= cut
            spare += cut
    flexible = [i for i in shown if widths[i] < natural[i]]
    while spare > 0 and flexible:
        share = max(1, spare // len(flexible))
        for i in list(flexible):
            grow = min(share, natural[i] - widths[i], spare)
            widths[i] += grow
            spare -= grow
            if widths[i] >= natural[i]:
                flexible.remove(i)
    return shown, [widths[i] for i in shown]


def _terminal_table(console: Console, columns: Sequence[Column],
                    rows: Sequence[Sequence[str]]) -> Table:
    shown, widths = layout(columns, rows, console.width)
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, GAP // 2),
                  header_style="bold")
    for i, w in zip(shown, widths, strict=True):
        fit = columns[i].fit
        table.add_column(columns[i].header, width=w, no_wrap=fit != Fit.WRAP,
                         overflow="fold" if fit == Fit.WRAP else "ellipsis")
    for row in rows:
        table.add_row(*(_fitted(row[i], columns[i], w) for i, w in zip(shown, widths,
                                                                        strict=True)))
    return table


def print_table(console: Console, columns: Sequence[Column],
                rows: Sequence[Sequence[str]]) -> None:
    """``rows`` (strings, one per column) under ``columns``' headers, fitted as above."""
    rows = [[_flat(cell) for cell in row] for row in rows]
    if console.is_terminal:
        console.print(_terminal_table(console, columns, rows), markup=False, highlight=False)
        return
    widths = [_natural(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    for row in ([c.header for c in columns], *rows):
        line = (" " * GAP).join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        console.out(line.rstrip(), highlight=False)


def print_labelled(console: Console, rows: Sequence[tuple[str, str]], label_width: int) -> None:
    """``(label, text)`` lines: on a terminal the text wraps at spaces under itself, beside its
    label; elsewhere each is one line, whole."""
    if not console.is_terminal:
        for label, text in rows:
            console.out(f"{label:<{label_width}} {text}".rstrip(), highlight=False)
        return
    width = max(SMALLEST, console.width - label_width - 1)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=label_width, no_wrap=True)
    grid.add_column(width=width, overflow="fold")
    for label, text in rows:
        grid.add_row(label, wrap_text(text, width))
    console.print(grid, markup=False, highlight=False)


def wrap_message(message: str, width: int | None) -> str:
    """``message`` wrapped at spaces to ``width`` (None: not at all); a continuation line is
    indented four more spaces than the line it continues. Words and paths are never cut."""
    if width is None:
        return message
    out = []
    for line in message.splitlines() or [""]:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out.append(textwrap.fill(line, width, subsequent_indent=indent + "    ",
                                 break_long_words=False, break_on_hyphens=False,
                                 drop_whitespace=True) if line.strip() else line)
    return "\n".join(out)


def print_message(console: Console, message: str) -> None:
    """A sentence for a person, wrapped at spaces on a terminal, whole elsewhere."""
    width = console.width if console.is_terminal else None
    console.print(Text(wrap_message(message, width)), soft_wrap=True, highlight=False)


def print_error(console: Console, message: str, prefix: str = "error:") -> None:
    """An error for a person: the prefix in red on a terminal; never read as markup."""
    width = console.width if console.is_terminal else None
    text = wrap_message(f"{prefix} {message}", width)
    styled = Text(text)
    styled.stylize("bold red", 0, len(prefix))
    console.print(styled, soft_wrap=True, highlight=False)
