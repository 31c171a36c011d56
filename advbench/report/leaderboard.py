"""Leaderboards: models ranked by worst-case robust accuracy, read from stored runs.

One row per model and budget, from the newest finished evaluation of that model at that
budget: clean accuracy, robust accuracy after each attack, the worst case, Wilson 95%
confidence intervals (statsmodels), certified accuracy at chosen radii from the newest
certification run, the paper's own number beside ours, and the run's date, commit and size.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from statsmodels.stats.proportion import proportion_confint

from advbench.core.errors import UsageError
from advbench.store import Store, summarize


@dataclass
class LeaderboardRow:
    model: str
    dataset: str
    norm: str
    eps: float
    n: int
    clean: float
    clean_ci: tuple[float, float]
    robust: dict[str, float]  # attack -> robust accuracy after it (and the attacks before it)
    worst_case: float
    worst_case_ci: tuple[float, float]
    certified: dict[str, float] = field(default_factory=dict)  # "r=0.5" -> certified accuracy
    paper: str = ""
    run_id: str = ""
    date: str = ""
    commit: str = ""
    warnings: int = 0
    verdict: str = ""  # reliable | escalated | unreliable (adaptive evaluation); "" when the checks were off


def wilson(share: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    low, high = proportion_confint(round(share * n), n, alpha=1 - confidence, method="wilson")
    return (float(low), float(high))


def paper_number(paper: dict[str, Any], dataset: str, norm: str, eps: float) -> str:
    """The paper's number for this exact setting if it reports one, else its headline in its own setting."""
    reported = paper.get("reported") or []

    def same(r: dict[str, Any]) -> bool:
        return r.get("metric") == "robust_accuracy" and r.get("dataset") == dataset and r.get("norm") == norm and math.isclose(float(r.get("eps") or -1), eps, rel_tol=1e-3)

    exact = [r for r in reported if same(r)]
    if exact:
        r = exact[0]
        return f"{100 * r['value']:.2f} ({r.get('attack', '')}, {r.get('where', '')})"
    own = paper.get("threat_model") or {}
    headline = [
        r for r in reported
        if r.get("metric") == "robust_accuracy" and r.get("dataset") == paper.get("dataset") and r.get("norm") == own.get("norm") and r.get("eps") == own.get("eps")
    ]
    if headline:
        r = headline[0]
        return f"{paper.get('dataset')} {r['norm']} {r['eps']:g}: {100 * r['value']:.2f} ({r.get('attack', '')}, {r.get('where', '')})"
    return "not reported"


def check_filters(eps: float | None = None, radii: tuple[float, ...] = ()) -> None:
    """UsageError unless the budget and the radii are finite numbers >= 0 (NaN would match nothing, silently)."""
    for radius in radii:
        if not (math.isfinite(radius) and radius >= 0):
            raise UsageError(f"--radius must be a finite number >= 0, got {radius:g}")
    if eps is not None and not (math.isfinite(eps) and eps >= 0):
        raise UsageError(f"eps must be a finite number >= 0, got {eps:g}")


def build_leaderboard(store: Store, dataset: str | None = None, norm: str | None = None, eps: float | None = None, radii: tuple[float, ...] = ()) -> list[LeaderboardRow]:
    check_filters(eps, radii)
    runs = [r for r in store.list_runs(limit=100_000) if r.status == "finished"]
    newest: dict[tuple[str, str, str, float], Any] = {}
    for run in sorted(runs, key=lambda r: r.created):
        if run.kind != "eval" or (dataset and run.dataset != dataset) or (norm and run.config.get("norm") != norm):
            continue
        for e in run.config.get("eps", []):
            if eps is None or math.isclose(float(e), eps, rel_tol=1e-6):
                newest[(run.model, run.dataset, run.config["norm"], float(e))] = run
    certified = _certified(runs, dataset, radii)
    rows = []
    for (model, data, nrm, e), run in newest.items():
        summary = summarize(store, run.run_id)
        per = next(p for p in summary.per_eps if math.isclose(p.eps, e))
        rows.append(LeaderboardRow(
            model, data, nrm, e, summary.n, summary.clean_accuracy, wilson(summary.clean_accuracy, summary.n), dict(per.robust_after),
            per.worst_case, wilson(per.worst_case, summary.n), certified.get((model, data), {}),
            paper_number(run.config.get("paper") or {}, data, nrm, e), run.run_id, run.created[:10], (run.git_commit or "")[:10], len(run.warnings),
            summary.verdict or "",
        ))
    return sorted(rows, key=lambda r: (r.dataset, r.norm, r.eps, -r.worst_case, -r.clean))


def _certified(runs: list[Any], dataset: str | None, radii: tuple[float, ...]) -> dict[tuple[str, str], dict[str, float]]:
    """Certified accuracy at each radius, best over sigmas, from each model's newest certification."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for run in sorted(runs, key=lambda r: r.created):
        if run.kind != "certify" or (dataset and run.dataset != dataset) or not run.summary:
            continue
        best = {}
        for radius in radii:
            values = [_at_radius(curve, radius) for curve in run.summary["curves"].values()]
            best[f"r={radius:g}"] = max(values) if values else 0.0
        out[(run.model, run.dataset)] = best
    return out


def _at_radius(curve: dict[str, Any], radius: float) -> float:
    """Certified accuracy at a radius of the stored grid; another radius would be a made-up number."""
    for r, acc in zip(curve["radii"], curve["certified_accuracy"]):
        if math.isclose(r, radius, abs_tol=1e-9):
            return acc
    grid = curve["radii"]
    step = f"{grid[0]:g}, {grid[1]:g}, ..., {grid[-1]:g}" if len(grid) > 2 else ", ".join(f"{r:g}" for r in grid)
    raise UsageError(f"--radius {radius:g}: certifications store certified accuracy at radii {step} only")


def _columns(rows: list[LeaderboardRow]) -> tuple[list[str], list[str]]:
    attacks = sorted({a for r in rows for a in r.robust})
    radii = sorted({k for r in rows for k in r.certified}, key=lambda k: float(k[2:]))
    return attacks, radii


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def to_table(rows: list[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    attacks, radii = _columns(rows)
    header = ["rank", "model", "dataset", "threat", "clean %", *[f"{a} %" for a in attacks], "worst case %", "95% CI", "verdict",
              *[f"certified {r} %" for r in radii], "paper", "n", "date", "commit", "run"]
    body = []
    for rank, r in enumerate(rows, 1):
        body.append([
            str(rank), r.model, r.dataset, f"{r.norm} {r.eps:g}", _pct(r.clean), *[_pct(r.robust[a]) if a in r.robust else "-" for a in attacks],
            _pct(r.worst_case), f"{_pct(r.worst_case_ci[0])}-{_pct(r.worst_case_ci[1])}", r.verdict or "-", *[_pct(r.certified[k]) if k in r.certified else "-" for k in radii],
            r.paper, str(r.n), r.date, r.commit, r.run_id,
        ])
    return header, body


def render_markdown(rows: list[LeaderboardRow]) -> str:
    header, body = to_table(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[LeaderboardRow]) -> str:
    header, body = to_table(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def render_json(rows: list[LeaderboardRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)
