"""What the listing commands (`models`, `attacks`, `recipes`, `runs`) print: a table, JSON or
one name per line (`--format table|json|names`), the same on a terminal and in a pipe.

A table fits the console's width (the terminal's; `COLUMNS`, else 80, when piped) without ever
cutting or wrapping a name or a number. Each column has a kind: `id` columns (names, numbers)
always get their full width; `list` columns (items joined by ", ") wrap only between items;
`text` columns (prose) wrap and shrink to `TEXT_MIN`. When even that is too wide, whole columns
are dropped, the least useful first, never the one naming the row. When the names alone are
wider than the console, the table is printed wider than it rather than cutting them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Literal, Sequence, cast

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from advbench.cli.fit import grow_widths

TEXT_MIN = 16  # prose narrower than this reads as a column of single words


class ListFormat(str, Enum):
    TABLE = "table"
    JSON = "json"
    NAMES = "names"


def plain(value: Any) -> str:
    """A record's value as a table cell: lists joined by ', ', mappings as k=v, None and empty as
    '-', numbers in full (the shortest text that reads back as the same float)."""
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Column:
    header: str
    field: str  # the record's key (the JSON key)
    kind: str = "id"  # id: never wrapped or cut | list: wraps between items only | text: prose, wraps anywhere
    keep: bool = False  # never dropped
    show: Callable[[Any], str] = plain  # the cell's text


@dataclass
class Listing:
    """Records (JSON-ready values) and how to show them. `drop` names the fields dropped first
    when the table is too wide; the other droppable columns follow, prose first, right to left."""

    title: str
    columns: Sequence[Column]
    records: list[dict[str, Any]]
    name_field: str
    drop: tuple[str, ...] = ()
    caption: str | None = None

    def drop_order(self) -> list[int]:
        explicit = [
            i for f in self.drop for i, c in enumerate(self.columns) if c.field == f and not c.keep
        ]
        rest = sorted(
            (i for i, c in enumerate(self.columns) if not c.keep and i not in explicit),
            key=lambda i: ({"text": 0, "list": 1, "id": 2}[self.columns[i].kind], -i),
        )
        return explicit + rest


def table_overhead(columns: int) -> int:
    """Rich's default box: one rule between and around columns, one space of padding each side."""
    return 3 * columns + 1


def _words(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def fit_widths(listing: Listing, cells: list[list[str]], width: int) -> tuple[list[int], list[int]]:
    """(shown column indices, their widths) for a table at most `width` wide when possible."""
    full, least = [], []
    for i, column in enumerate(listing.columns):
        longest = max((cell_len(line) for row in cells for line in row[i].splitlines()), default=0)
        if column.kind == "id":
            full.append(max(longest, cell_len(column.header)))
            least.append(full[-1])
        else:
            full.append(max(longest, _words(column.header)))
            floor = (
                max((_words(row[i]) for row in cells), default=0)
                if column.kind == "list"
                else TEXT_MIN
            )
            least.append(min(full[-1], max(floor, _words(column.header))))
    shown = list(range(len(listing.columns)))
    for i in listing.drop_order():
        if table_overhead(len(shown)) + sum(least[j] for j in shown) <= width:
            break
        shown.remove(i)
    widths = {i: least[i] for i in shown}
    spare = width - table_overhead(len(shown)) - sum(widths.values())
    # share what is left among the wrapping columns, none beyond its content
    grow_widths(widths, {i: full[i] for i in shown}, spare)
    return shown, [widths[i] for i in shown]


def fitted_table(listing: Listing, width: int) -> tuple[Table, int]:
    """The rich table and the width it needs (at most `width` unless its names alone are wider)."""
    cells = [
        [column.show(record.get(column.field)) for column in listing.columns]
        for record in listing.records
    ]
    shown, widths = fit_widths(listing, cells, width)
    table = Table(title=listing.title, caption=listing.caption, header_style="bold")
    for i, w in zip(shown, widths):
        column = listing.columns[i]
        table.add_column(column.header, width=w, no_wrap=column.kind == "id", overflow="fold")
    for row in cells:
        table.add_row(*(Text(row[i]) for i in shown))  # Text: a '[' in a description is not markup
    return table, table_overhead(len(shown)) + sum(widths)


def print_listing(listing: Listing, fmt: ListFormat, console: Console) -> None:
    """The listing on stdout in `fmt`; JSON and names are plain text, never wrapped."""
    if fmt is ListFormat.JSON:
        print(json.dumps(listing.records, indent=2, default=str))
    elif fmt is ListFormat.NAMES:
        for record in listing.records:
            print(record[listing.name_field])
    else:
        print_table(listing, console)


def print_table(listing: Listing, console: Console) -> None:
    table, needed = fitted_table(listing, console.width)
    if (
        needed > console.width
    ):  # the names alone do not fit: print wider than the console, cut nothing
        # rich reads back the color system it was given as a plain str; it is one of the names it takes.
        system = cast(
            Literal["standard", "256", "truecolor", "windows"] | None, console.color_system
        )
        console = Console(width=needed, color_system=system, force_terminal=console.is_terminal)
    console.print(table)
