"""A self-contained HTML leaderboard: one file, inline CSS and JS (sortable columns), one section
per board (dataset and budget), the worst-case accuracy-vs-eps plot embedded as PNG data."""

from __future__ import annotations

import html

from advbench.report.figures import line_plot
from advbench.report.leaderboard import Board, board_title, to_table
from advbench.report.merge import VERDICTS

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f0f0f0;cursor:pointer;user-select:none}
td:nth-child(2),td:nth-child(3){text-align:left}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
img{max-width:640px;display:block;margin:1em 0}
.unreliable{color:#b00;font-weight:bold} .escalated{color:#a60}
"""

# Click a header to sort its table by it; numbers sort numerically, "-" last.
SCRIPT = """
document.querySelectorAll('table.leaderboard th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var desc = !th.classList.contains('desc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(desc ? 'desc' : 'asc');
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var key = function (row) { var t = row.cells[index].textContent.trim(); var v = parseFloat(t); return isNaN(v) ? t : v; };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x === typeof y) { return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); }
      return typeof x === 'number' ? -1 : 1;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _accuracy_plot(boards: list[Board]) -> str:
    """Worst-case accuracy vs eps per checkpoint, dataset and norm (two budgets or more), as a data URI."""
    points: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
    for board in boards:
        for r in board.rows:
            points.setdefault((r.model, r.checkpoint[:8], r.dataset, r.norm), []).append(
                (r.eps, r.worst_case)
            )
    series = [
        (f"{m} {c} ({d} {n})", [e for e, _ in sorted(p)], [a for _, a in sorted(p)])
        for (m, c, d, n), p in points.items()
        if len(p) > 1
    ]
    norms = sorted({board.threat.norm for board in boards})
    return line_plot(
        series,
        f"eps ({', '.join(norms)})",
        "worst-case robust accuracy %",
        "worst-case robust accuracy vs eps",
    )


def _section(board: Board) -> str:
    header, body = to_table(board.rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    verdict = header.index("verdict")
    trs = "".join(
        "<tr>"
        + "".join(
            f"<td class='{c}'>{c}</td>"
            if i == verdict and c in VERDICTS
            else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in body
    )
    t = board.threat
    return (
        f"<section data-dataset='{html.escape(t.dataset)}' data-norm='{t.norm}' data-eps='{t.eps:g}'><h2>{html.escape(board_title(t))}</h2>"
        f"<table class='leaderboard'><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table></section>"
    )


def render_html(boards: list[Board]) -> str:
    plot = _accuracy_plot(boards)
    img = f'<img alt="robust accuracy vs eps" src="{plot}">' if plot else ""
    rows = sum(len(b.rows) for b in boards)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>advbench leaderboard</title>"
        f"<style>{STYLE}</style></head><body><h1>advbench leaderboard</h1>"
        f"<p>{len(boards)} leaderboards (one per dataset and budget), {rows} rows: one per model checkpoint, every stored run at that "
        "budget merged, ranked by the worst case over all attacks. Click a column to sort.</p>"
        + "".join(_section(b) for b in boards)
        + f"{img}<script>{SCRIPT}</script></body></html>\n"
    )
