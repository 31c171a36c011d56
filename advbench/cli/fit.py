"""Rich tables sized to the console that never cut a name or a number.

Each column is sized from its cells: a `wrap` column breaks between words only (never inside one),
so it is never narrower than its longest word; any other column shows each line of a cell whole.
The widths chosen are those of the fewest lines per row that fit the console (every cell on one
line if it can, else on two, ...); what is left goes where it saves the most lines per character,
then to the columns that still wrap (evenly, none beyond its longest line), then to headers that
would wrap. When even the narrowest table is wider
than the console, the columns that may go (`keep=False`) are dropped, the rightmost first; when it
still does not fit, the table is printed wider than the console rather than cut (`show`). Cells
are rich markup strings or `Text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence, cast

from rich import box
from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

Cell = str | Text


@dataclass(frozen=True)
class Col:
    header: str
    wrap: bool = True  # breaks between words; False: every line of a cell on one line, whole
    keep: bool = True  # False: dropped (rightmost first) when even the narrowest table is too wide
    justify: JustifyMethod = "left"


def words_width(text: str) -> int:
    """The widest word: a wrapping column is never narrower."""
    return max((cell_len(w) for w in text.split()), default=0)


def lines_width(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def overhead(columns: int, boxed: bool = True) -> int:
    """Boxed (rich's default): a rule between and around columns, one space of padding each side.
    Compact (`box.SIMPLE_HEAD` without edges, padding on the right): two spaces between columns."""
    return 3 * columns + 1 if boxed else max(0, 2 * (columns - 1))


def lines_at(text: str, width: int) -> int:
    """How many lines `text` takes wrapped between words at `width` (rich wraps greedily too)."""
    total = 0
    for line in text.splitlines() or [""]:
        count, used = 1, 0
        for word in line.split():
            w = cell_len(word)
            if used and used + 1 + w > width:
                count, used = count + 1, w
            else:
                used += (1 if used else 0) + w
        total += count
    return total


def width_for(texts: Sequence[str], lines: int, least: int, most: int) -> int:
    """The narrowest width in [least, most] at which every text takes at most `lines` lines (or
    as few as it can: its explicit line breaks). Lines only fall as the width grows: bisect."""
    floor = [max(lines, lines_at(t, most)) for t in texts]
    low, high = least, most
    while low < high:
        mid = (low + high) // 2
        if all(lines_at(t, mid) <= f for t, f in zip(texts, floor)):
            high = mid
        else:
            low = mid + 1
    return low


def _refine(
    widths: dict[int, int], cells: Sequence[Sequence[str]], caps: dict[int, int], spare: int
) -> int:
    """Spend `spare` on the moves that save the most lines per character, a move being to widen
    a row's tallest cells until that row is a line shorter; what is left."""
    memo: dict[tuple[int, int, int], int] = {}

    def lines(i: int, r: int, w: int) -> int:
        if (i, r, w) not in memo:
            memo[i, r, w] = lines_at(cells[r][i], w)
        return memo[i, r, w]

    def total(ws: dict[int, int]) -> int:
        return sum(max((lines(i, r, ws[i]) for i in ws), default=1) for r in range(len(cells)))

    def narrowest(i: int, r: int, most_lines: int) -> int | None:
        low, high = widths[i], caps[i]
        if lines(i, r, high) > most_lines:
            return None
        while low < high:  # lines only fall as the width grows
            mid = (low + high) // 2
            low, high = (low, mid) if lines(i, r, mid) <= most_lines else (mid + 1, high)
        return low

    while spare > 0:
        now, best = total(widths), None
        for r in range(len(cells)):
            height = max((lines(i, r, widths[i]) for i in widths), default=1)
            moved = dict(widths)
            for i in widths:
                if lines(i, r, widths[i]) == height:
                    w = narrowest(i, r, height - 1)
                    if w is None:
                        break
                    moved[i] = w
            else:
                cost = sum(moved.values()) - sum(widths.values())
                saved = now - total(moved) if 0 < cost <= spare else 0
                if saved > 0 and (best is None or saved / cost > best[0]):
                    best = (saved / cost, moved, cost)
        if best is None:
            return spare
        widths.update(best[1])
        spare -= best[2]
    return spare


def grow_widths(widths: dict[int, int], target: dict[int, int], spare: int) -> int:
    """Share `spare` among the columns narrower than their target, evenly; what is left."""
    growing = [i for i in widths if widths[i] < target[i]]
    while spare > 0 and growing:
        share = max(1, spare // len(growing))
        for i in list(growing):
            add = min(share, target[i] - widths[i], spare)
            widths[i] += add
            spare -= add
            if widths[i] == target[i]:
                growing.remove(i)
            if not spare:
                break
    return spare


def fit_widths(
    columns: Sequence[Col], cells: Sequence[Sequence[str]], width: int, boxed: bool = True
) -> tuple[list[int], list[int]]:
    """(shown column indices, their widths) of a table at most `width` wide when possible; `cells`
    are the plain texts."""
    least, body, full = [], [], []
    for i, column in enumerate(columns):
        texts = [row[i] for row in cells]
        longest = max((lines_width(t) for t in texts), default=0)
        head = words_width(column.header)
        if column.wrap:
            least.append(max(max((words_width(t) for t in texts), default=0), head, 1))
        else:
            least.append(max(longest, head, 1))
        body.append(max(longest, least[-1]))
        full.append(max(body[-1], lines_width(column.header)))
    shown = list(range(len(columns)))
    for i in reversed(range(len(columns))):
        if overhead(len(shown), boxed) + sum(least[j] for j in shown) <= width:
            break
        if not columns[i].keep:
            shown.remove(i)
    widths = {i: least[i] for i in shown}
    room = width - overhead(len(shown), boxed)
    tallest = max((lines_at(row[i], least[i]) for row in cells for i in shown), default=1)
    for lines in range(1, tallest):  # the fewest lines per row that fit
        target = {
            i: width_for([row[i] for row in cells], lines, least[i], body[i])
            if columns[i].wrap
            else least[i]
            for i in shown
        }
        if sum(target.values()) <= room:
            widths = target
            break
    spare = room - sum(widths.values())
    spare = _refine(widths, cells, {i: body[i] for i in shown}, spare)
    spare = grow_widths(widths, {i: body[i] for i in shown}, spare)
    grow_widths(widths, {i: full[i] for i in shown}, spare)
    return shown, [widths[i] for i in shown]


def as_text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(cell)


def fit_table(
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    width: int,
    caption: str | None = None,
    boxed: bool = True,
) -> Table:
    """A table of `rows` (markup or Text) at most `width` wide, unless its words alone are wider."""
    texts = [[as_text(c) for c in row] for row in rows]
    shown, widths = fit_widths(columns, [[t.plain for t in row] for row in texts], width, boxed)
    table = Table(title=title, caption=caption, header_style="bold")
    if not boxed:  # a rule under the header, two spaces between columns
        table.box, table.show_edge, table.pad_edge = box.SIMPLE_HEAD, False, False
        table.padding = (0, 1, 0, 0)
    for i, w in zip(shown, widths):
        table.add_column(columns[i].header, width=w, overflow="fold", justify=columns[i].justify)
    for row in texts:
        table.add_row(*(row[i] for i in shown))
    needed = table_width(table)
    notes = " ".join(Text.from_markup(t).plain for t in (title, caption) if t)
    if words_width(notes) > needed:  # a title's word (a path) is never folded either
        table.min_width = words_width(notes)
    return table


def table_width(table: Table) -> int:
    """The width a fitted table needs (its columns' widths and rules)."""
    inner = sum(c.width or 0 for c in table.columns)
    return max(
        inner + overhead(len(table.columns), table.show_edge or table.pad_edge),
        table.min_width or 0,
    )


def show(table: Table, console: Console) -> None:
    """Print a fitted table; wider than the console (the terminal wraps it) rather than cut."""
    needed = table_width(table)
    if needed > console.width:
        # rich reads back the color system it was given as a plain str; it is one of the names it takes.
        system = cast(
            Literal["standard", "256", "truecolor", "windows"] | None, console.color_system
        )
        console = Console(
            width=needed,
            color_system=system,
            force_terminal=console.is_terminal,
            file=console.file,
        )
    console.print(table)
