"""Leaderboards by threat model, read from stored runs, as RobustBench lays them out.

One board per (dataset, norm, eps): rows of different budgets or datasets are never ranked
against each other. One row per model (checkpoint: name + weights sha256) merging every finished
evaluation of it at that budget (`report/merge.py`: per sample where the runs share their
samples, else the lowest of the sets of samples, and the worst verdict), ranked by the worst case
over all attacks that ran, with the attack that broke the most samples, Wilson 95% intervals
(statsmodels), the cost (forward+backward passes and attack seconds per sample), certified
accuracy at chosen radii from the checkpoint's newest certification, and the paper's number only
where the paper's setting is the row's (`report/paper.py`), else a labelled "paper (own setting)".

Formats: md and html (a section per board), csv and json (dataset, norm, eps as key columns),
robustbench (one model-info JSON per row, `report/robustbench.py`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from advbench.core.errors import UsageError
from advbench.report.intervals import mean_interval, wilson
from advbench.report.merge import Threat, ThreatResult, merge_notes, merge_runs
from advbench.report.paper import paper_numbers, paper_value
from advbench.store import Store

__all__ = [
    "Board",
    "LeaderboardRow",
    "build_leaderboard",
    "check_filters",
    "render_csv",
    "render_json",
    "render_markdown",
    "wilson",
]


@dataclass
class LeaderboardRow:
    rank: int
    model: str
    checkpoint: str  # sha256 of the weights
    dataset: str
    norm: str
    eps: float
    n: int
    clean: float
    clean_ci: tuple[float, float]
    worst_case: float  # over every attack of every merged run, the checks' probes included
    worst_case_ci: tuple[float, float]
    attack: str  # the attack credited with the most broken samples ("" when none was broken)
    found_by: dict[str, int]  # attack -> broken samples credited to it
    attacks: list[str]  # every attack that ran in the merged runs (the checks' probes besides)
    autoattack: float | None  # AutoAttack alone, where a run ran it first
    verdict: str  # worst of the merged runs: reliable | escalated | unreliable; "" when none ran the checks
    passes_per_sample: (
        float  # forward+backward passes per sample (steps x EOT draws), all merged runs
    )
    passes_lower_bound: bool  # an attack (AutoAttack) did not report its steps
    seconds_per_sample: float
    paper: str  # the paper's robust accuracy in exactly this setting, else ""
    paper_own_setting: str  # else the paper's headline in its own setting, which it names
    paper_accuracy: float | None  # the number behind `paper`, as a share
    paper_name: str  # the model's name in its paper
    architecture: str
    certified: dict[str, float] = field(default_factory=dict)  # "r=0.5" -> certified accuracy
    runs: list[str] = field(default_factory=list)  # merged run ids, newest first
    sample_sets: int = 1  # more than 1: runs on different samples, the lowest set's numbers
    date: str = ""
    commit: str = ""
    # Random models judged by votes: the mean over samples of P(correct) at each sample's worst
    # point, with its 95 % t-interval (None where one pass judged).
    expected: float | None = None
    expected_ci: tuple[float, float] | None = None
    one_pass_runs: list[str] = field(
        default_factory=list
    )  # a random model's runs judged by one forward pass, left out beside voted ones

    @property
    def threat(self) -> Threat:
        return Threat(self.dataset, self.norm, self.eps)


@dataclass
class Board:
    """One leaderboard: every model at one dataset and budget, ranked."""

    threat: Threat
    rows: list[LeaderboardRow]


def check_filters(eps: float | None = None, radii: tuple[float, ...] = ()) -> None:
    """UsageError unless the budget and the radii are finite numbers >= 0 (NaN would match nothing, silently)."""
    for radius in radii:
        if not (math.isfinite(radius) and radius >= 0):
            raise UsageError(f"--radius must be a finite number >= 0, got {radius:g}")
    if eps is not None and not (math.isfinite(eps) and eps >= 0):
        raise UsageError(f"eps must be a finite number >= 0, got {eps:g}")


def row_from_result(
    result: ThreatResult, rank: int = 0, certified: dict[str, float] | None = None
) -> LeaderboardRow:
    t = result.threat
    paper, own = paper_numbers(result.paper, t.dataset, t.norm, t.eps)
    return LeaderboardRow(
        rank,
        result.model,
        result.checkpoint,
        t.dataset,
        t.norm,
        t.eps,
        result.n,
        result.clean,
        wilson(result.clean, result.n),
        result.worst_case,
        wilson(result.worst_case, result.n),
        result.attack,
        dict(result.found_by),
        [*result.attacks, *result.probes],
        result.autoattack,
        result.verdict,
        result.passes_per_sample,
        result.passes_lower_bound,
        result.seconds_per_sample,
        paper,
        own,
        paper_value(result.paper, t.dataset, t.norm, t.eps),
        str(result.paper.get("paper_name") or ""),
        result.architecture,
        dict(certified or {}),
        list(result.run_ids),
        result.sample_sets,
        result.date,
        result.commit,
        result.expected,
        None
        if result.expected is None or result.expected_sd is None
        else mean_interval(result.expected, result.expected_sd, result.n),
        list(result.one_pass_runs),
    )


def build_leaderboard(
    store: Store,
    dataset: str | None = None,
    norm: str | None = None,
    eps: float | None = None,
    radii: tuple[float, ...] = (),
) -> list[Board]:
    """One board per (dataset, norm, eps) of the finished evaluations that pass the filters, in that order."""
    check_filters(eps, radii)
    runs = [
        r
        for r in store.list_runs(limit=10_000_000)
        if r.status == "finished" and (not dataset or r.dataset == dataset)
    ]
    evals = [r for r in runs if r.kind == "eval" and (not norm or r.config.get("norm") == norm)]
    certified = _certified(runs, radii)
    results = [
        r
        for r in merge_runs(store, evals)
        if eps is None or math.isclose(r.threat.eps, eps, rel_tol=1e-6)
    ]
    boards: dict[Threat, list[ThreatResult]] = {}
    for result in results:
        boards.setdefault(result.threat, []).append(result)
    out = []
    for threat in sorted(boards):
        ranked = sorted(
            boards[threat], key=lambda r: (-r.worst_case, -r.clean, r.model, r.checkpoint)
        )
        out.append(
            Board(
                threat,
                [
                    row_from_result(r, i, certified.get((r.model, r.checkpoint, r.threat.dataset)))
                    for i, r in enumerate(ranked, 1)
                ],
            )
        )
    return out


def _certified(
    runs: list[Any], radii: tuple[float, ...]
) -> dict[tuple[str, str, str], dict[str, float]]:
    """Certified accuracy at each radius, best over sigmas, from each checkpoint's newest certification."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    if not radii:
        return out
    for run in sorted(runs, key=lambda r: r.created):
        if run.kind != "certify" or not run.summary:
            continue
        best = {}
        for radius in radii:
            values = [_at_radius(curve, radius) for curve in run.summary["curves"].values()]
            best[f"r={radius:g}"] = max(values) if values else 0.0
        out[(run.model, run.checkpoint_sha256, run.dataset)] = best
    return out


def _at_radius(curve: dict[str, Any], radius: float) -> float:
    """Certified accuracy at a radius of the stored grid; another radius would be a made-up number."""
    for r, acc in zip(curve["radii"], curve["certified_accuracy"]):
        if math.isclose(r, radius, abs_tol=1e-9):
            return acc
    grid = curve["radii"]
    step = (
        f"{grid[0]:g}, {grid[1]:g}, ..., {grid[-1]:g}"
        if len(grid) > 2
        else ", ".join(f"{r:g}" for r in grid)
    )
    raise UsageError(
        f"--radius {radius:g}: certifications store certified accuracy at radii {step} only"
    )


# rendering -----------------------------------------------------------------------------------
def pct(v: float) -> str:
    return f"{100 * v:.2f}"


def found_by_text(found_by: dict[str, int]) -> str:
    """'pgd 12, fgsm 3': each attack with the broken samples credited to it, most first."""
    return ", ".join(f"{a} {k}" for a, k in found_by.items()) or "-"


def passes_text(row: LeaderboardRow) -> str:
    if row.passes_lower_bound and not row.passes_per_sample:
        return "not reported"
    return (">= " if row.passes_lower_bound else "") + f"{row.passes_per_sample:.1f}"


def expected_text(row: LeaderboardRow) -> str:
    """A random model's expected robust accuracy and its interval ("-" where one pass judged)."""
    if row.expected is None:
        return "-"
    ci = f" ({pct(row.expected_ci[0])}-{pct(row.expected_ci[1])})" if row.expected_ci else ""
    return pct(row.expected) + ci


def short_checkpoint(sha256: str) -> str:
    return sha256[:12]


def board_title(threat: Threat) -> str:
    return f"{threat.dataset}, {threat.norm} eps = {threat.eps:g}"


def to_table(
    rows: list[LeaderboardRow], key_columns: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one board (`key_columns`: dataset, norm and eps first, for a single table of all boards)."""
    radii = sorted({k for r in rows for k in r.certified}, key=lambda k: float(k[2:]))
    with_aa = any(r.autoattack is not None for r in rows)
    with_expected = any(r.expected is not None for r in rows)
    header = [
        *(["dataset", "norm", "eps"] if key_columns else []),
        "rank",
        "model",
        "checkpoint",
        "clean %",
        "worst case %",
        "95% CI",
        "found by",
        *(["expected robust % (95% CI)"] if with_expected else []),
        *(["AutoAttack %"] if with_aa else []),
        "verdict",
        "passes/sample",
        "attack s/sample",
        *[f"certified {r} %" for r in radii],
        "paper %",
        "paper (own setting)",
        "n",
        "runs",
        "date",
        "commit",
        "note",
    ]
    body = []
    for r in rows:
        note = "; ".join(merge_notes(r.sample_sets, r.one_pass_runs))
        body.append(
            [
                *([r.dataset, r.norm, f"{r.eps:g}"] if key_columns else []),
                str(r.rank),
                r.model,
                short_checkpoint(r.checkpoint),
                pct(r.clean),
                pct(r.worst_case),
                f"{pct(r.worst_case_ci[0])}-{pct(r.worst_case_ci[1])}",
                found_by_text(r.found_by),
                *([expected_text(r)] if with_expected else []),
                *([pct(r.autoattack) if r.autoattack is not None else "-"] if with_aa else []),
                r.verdict or "-",
                passes_text(r),
                f"{r.seconds_per_sample:.3g}",
                *[pct(r.certified[k]) if k in r.certified else "-" for k in radii],
                r.paper or "-",
                r.paper_own_setting or "-",
                str(r.n),
                " ".join(r.runs),
                r.date,
                r.commit,
                note,
            ]
        )
    return header, body


def render_markdown(boards: list[Board]) -> str:
    parts = []
    for board in boards:
        header, body = to_table(board.rows)
        lines = [
            f"## {board_title(board.threat)}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) if parts else "no finished evaluations match\n"


def render_csv(boards: list[Board]) -> str:
    header, body = to_table([r for b in boards for r in b.rows], key_columns=True)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def render_json(boards: list[Board]) -> str:
    return json.dumps([asdict(r) for b in boards for r in b.rows], indent=2) + "\n"
