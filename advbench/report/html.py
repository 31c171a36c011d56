"""A self-contained HTML leaderboard: one file, inline CSS and JS (sortable columns), plots embedded as PNG data."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from advbench.report.curves import Curve, plot_curves
from advbench.report.leaderboard import LeaderboardRow, to_table
from advbench.store import Store

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f0f0f0;cursor:pointer;user-select:none}
td:nth-child(2),td:nth-child(3){text-align:left}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
img{max-width:640px;display:block;margin:1em 0}
"""

# Click a header to sort by it; numbers sort numerically, "-" last.
SCRIPT = """
document.querySelectorAll('table.leaderboard th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var desc = !th.classList.contains('desc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(desc ? 'desc' : 'asc');
    var key = function (row) { var t = row.cells[col].textContent.trim(); var v = parseFloat(t); return isNaN(v) ? t : v; };
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


def _accuracy_plot(rows: list[LeaderboardRow]) -> str:
    """Worst-case accuracy vs eps per model (from the leaderboard rows), as a data URI."""
    by_model: dict[tuple[str, str], list[LeaderboardRow]] = {}
    for r in rows:
        by_model.setdefault((r.model, r.norm), []).append(r)
    curves = [
        Curve(f"{model} ({norm})", norm, [r.eps for r in sorted(rs, key=lambda r: r.eps)], [r.worst_case for r in sorted(rs, key=lambda r: r.eps)])
        for (model, norm), rs in by_model.items()
    ]
    if not curves:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_curves(curves, Path(tmp) / "plot.png", "worst-case robust accuracy vs eps")
        return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def render_html(rows: list[LeaderboardRow], store: Store | None = None) -> str:
    header, body = to_table(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    plot = _accuracy_plot(rows)
    img = f'<img alt="robust accuracy vs eps" src="{plot}">' if plot else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>advbench leaderboard</title>"
        f"<style>{STYLE}</style></head><body><h1>advbench leaderboard</h1>"
        f"<p>{len(rows)} rows, ranked by worst-case robust accuracy. Click a column to sort.</p>"
        f"<table class='leaderboard'><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>{img}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
