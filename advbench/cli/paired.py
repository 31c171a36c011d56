"""The table of `advbench compare`: two evaluations on their common images, the paired tests in
its caption."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from advbench.cli.render import pct, table

if TYPE_CHECKING:  # report.compare loads scipy; the table only reads its fields
    from advbench.report.compare import PairedComparison


def paired_table(c: PairedComparison, width: int | None = None) -> Table:
    """Two evaluations on their common images: a column per side, the paired tests in the caption."""
    a, b = c.a, c.b
    rows = [
        [
            "robust % [95 % CI]",
            *(f"{pct(s.robust)} [{pct(s.robust_ci[0])}, {pct(s.robust_ci[1])}]" for s in (a, b)),
        ],
        ["images held by this side only", str(c.only_a), str(c.only_b)],
    ]
    if c.expected_difference is not None:
        rows.append(["expected robust %", pct(a.expected), pct(b.expected)])
    rows.append(["points judged by", a.judged_by, b.judged_by])
    rows.append(["runs", *(", ".join(s.run_ids) for s in (a, b))])
    caption = (
        f"robust: exact McNemar test on the {c.only_a + c.only_b} images one side holds, "
        f"p = {c.mcnemar_p:.3g}: {c.robust_finding}"
    )
    if c.expected_difference is not None and c.expected_ci is not None and c.expected_p is not None:
        caption += (
            f"; expected: paired t-test on per-image P(correct), {escape(a.label)} - {escape(b.label)} = "
            f"{100 * c.expected_difference:+.2f} points [{100 * c.expected_ci[0]:+.2f}, {100 * c.expected_ci[1]:+.2f}], "
            f"p = {c.expected_p:.3g}: {c.expected_finding}"
        )
    title = f"{escape(a.label)} vs {escape(b.label)} on the {c.n} images both measured, {c.threat.label}"
    return table(title, ["", escape(a.label), escape(b.label)], rows, caption=caption, width=width)
