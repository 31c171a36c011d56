"""The leaderboards on a terminal: one compact rich table per board, sized to the console.

Per checkpoint, in rank order: the model, clean accuracy, the worst case with its Wilson 95 %
interval (and, for a random model, its expected robust accuracy with the t-interval on a second
line), the verdict, which attacks broke the images (in words), the cost per image and n; the
certified accuracy at `--radius` where asked. A checkpoint's sha256 shows under its name only
where a name has several checkpoints on one board. Every other column (checkpoint, AutoAttack
alone, paper numbers, runs, date, commit) is in `--format md|csv|json|html`, which this module
leaves alone. Cells wrap between words only (`cli/fit.py`), so no name or number is ever cut;
the cost column goes first when a console is too narrow for all of them.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from advbench.cli.fit import Col, fit_table, show
from advbench.cli.render import attack_words
from advbench.report.leaderboard import Board, LeaderboardRow, board_title, pct, short_checkpoint
from advbench.report.merge import merge_notes

COST = "cost per image"
MODEL = Col("model", wrap=False)
CLEAN = Col("clean %", wrap=False, justify="right")
WORST = Col("worst case %")
VERDICT = Col("verdict", wrap=False)
FOUND = Col("found by")
N = Col("n", wrap=False, justify="right")
CERTIFIED = Col("certified %")

LEGEND = (
    "worst case: every attack that ran counts (the checks' probes too), with its Wilson 95 % "
    "interval in parentheses. "
    "found by: the attack credited with each image it broke, out of those classified correctly. "
    "cost: forward+backward passes and attack seconds per image."
)
EXPECTED = "expected: a random model's mean P(correct) over the images, 95 % t-interval."
EVERY_COLUMN = (
    "Every column (checkpoint, AutoAttack alone, paper, runs, date, commit): "
    "--format md, csv, json or html."
)
VERDICT_STYLE = {"reliable": "green", "escalated": "yellow", "unreliable": "bold red"}


def found_words(row: LeaderboardRow) -> str:
    """'auto broke 25 of 87': each attack credited with broken images, most first, out of the
    images classified correctly."""
    correct = round(row.clean * row.n)
    if not row.found_by:
        return f"no attack broke any of {correct}" if correct else "no image classified correctly"
    parts = [
        f"{escape(attack_words(attack))} broke {k} " + (f"of {correct}" if i == 0 else "more")
        for i, (attack, k) in enumerate(row.found_by.items())
    ]
    return "; ".join(parts)


def seconds_text(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds >= 100 else f"{seconds:.2g} s"


def cost_words(row: LeaderboardRow) -> str:
    """'540 passes, 0.97 s' per image ('>= ' where AutoAttack did not report its steps)."""
    if row.passes_lower_bound and not row.passes_per_sample:
        passes = "passes not reported"
    else:
        count = f"{row.passes_per_sample:,.0f}"
        passes = (
            (">= " if row.passes_lower_bound else "")
            + count
            + (" pass" if count == "1" else " passes")
        )
    return f"{passes}, {seconds_text(row.seconds_per_sample)}"


def worst_words(row: LeaderboardRow) -> str:
    """The worst case with its interval; a random model's expected accuracy on a second line."""
    low, high = row.worst_case_ci
    text = f"[bold]{pct(row.worst_case)}[/bold] ({pct(low)}-{pct(high)})"
    if row.expected is not None:
        ci = f" ({pct(row.expected_ci[0])}-{pct(row.expected_ci[1])})" if row.expected_ci else ""
        text += f"\nexpected {pct(row.expected)}{ci}"
    return text


def verdict_words(verdict: str) -> str:
    style = VERDICT_STYLE.get(verdict)
    return f"[{style}]{verdict}[/{style}]" if style else escape(verdict or "-")


def board_cells(board: Board) -> tuple[list[Col], list[list[str]]]:
    """The columns and the rich-markup cells of one board (no verdict column where no run ran
    the checks: the legend says so)."""
    names = Counter(r.model for r in board.rows)
    radii = sorted({k for r in board.rows for k in r.certified}, key=lambda k: float(k[2:]))
    verdicts = any(r.verdict for r in board.rows)
    rows = []
    for r in board.rows:
        model = escape(r.model) + (
            f"\n[dim]{short_checkpoint(r.checkpoint)}[/dim]" if names[r.model] > 1 else ""
        )
        certified = "\n".join(f"{k}: {pct(r.certified[k])}" for k in radii if k in r.certified)
        rows.append(
            [
                model,
                pct(r.clean),
                worst_words(r),
                *([verdict_words(r.verdict)] if verdicts else []),
                found_words(r),
                str(r.n),
                cost_words(r),
                *([certified or "-"] if radii else []),
            ]
        )
    columns = [
        MODEL,
        CLEAN,
        WORST,
        *([VERDICT] if verdicts else []),
        FOUND,
        N,
        Col(COST, keep=False),
    ]
    return [*columns, *([CERTIFIED] if radii else [])], rows


def board_notes(board: Board) -> str:
    """Under a board: rows merged from different samples, and the paper's number in this setting."""
    notes = [
        f"{escape(r.model)}: {escape(note)}"
        for r in board.rows
        for note in merge_notes(r.sample_sets, r.one_pass_runs)
    ]
    notes += [
        f"{escape(r.model)}: the paper reports {escape(r.paper)}" for r in board.rows if r.paper
    ]
    return "; ".join(notes)


def board_table(board: Board, width: int) -> Table:
    columns, rows = board_cells(board)
    table = fit_table(
        f"{board_title(board.threat)}, ranked by worst case",
        columns,
        rows,
        width,
        caption=board_notes(board) or None,
        boxed=False,
    )
    table.title_justify = table.caption_justify = "left"
    table.title_style = "bold"
    return table


def print_boards(boards: list[Board], console: Console) -> None:
    """Every board, then one legend of what the columns mean."""
    if not boards:
        console.print("no finished evaluations match")
        return
    cut = False
    for i, board in enumerate(boards):
        if i:
            console.print()
        table = board_table(board, console.width)
        cut |= all(c.header != COST for c in table.columns)
        show(table, console)
    legend = [LEGEND]
    if any(r.expected is not None for b in boards for r in b.rows):
        legend.append(EXPECTED)
    if any(not any(r.verdict for r in b.rows) for b in boards):
        legend.append("No verdict column: those runs ran without the checks.")
    if cut:
        legend.append(f"{COST}: left out, the console is too narrow.")
    legend.append(EVERY_COLUMN)
    console.print()
    console.print(" ".join(legend), style="dim", highlight=False)
