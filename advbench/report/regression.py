"""The CI regression gate: compare stored robust accuracies with a baseline file.

A baseline entry (`report/baseline.py`) is (model, dataset, norm, eps, attack, accuracy, n,
seed); "attack" is an attack label or "worst case". A drop larger than the tolerance (in points)
fails, and with `stat` a drop that a one-sided two-proportion z-test (statsmodels) finds
significant at 5% fails too. A current result whose evaluation is `unreliable` fails the gate
unless the caller allows it. The gate cannot be fooled into passing: a bad tolerance, a bad or
empty baseline, or a stored run measured with another n, seed or dataset than the entry records
is a UsageError, and an entry without a stored result fails.

The gate compares with the newest finished run of each model at each budget (`newest_results`),
not with the leaderboards' merge of every run: a baseline records the n and seed of one run, and
a stronger attack run later beside it must not look like a regression of the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from statsmodels.stats.proportion import proportions_ztest

from advbench.core.errors import UsageError
from advbench.report.baseline import Baseline, BaselineEntry
from advbench.store import Store, summarize

WORST = "worst case"
Entry = BaselineEntry  # the name this module used before the typed schema


@dataclass
class StoredResult:
    """The newest finished evaluation of a model at one budget: what a baseline entry is compared with."""

    model: str
    dataset: str
    norm: str
    eps: float
    n: int
    clean: float
    robust: dict[str, float]  # attack -> robust accuracy after it (and the attacks before it)
    worst_case: float
    run_id: str
    verdict: str  # reliable | escalated | unreliable; "" when the checks were off


def newest_results(store: Store, dataset: str | None = None) -> list[StoredResult]:
    """One result per (model, dataset, norm, eps): the newest finished evaluation's."""
    runs = [
        r
        for r in store.list_runs(limit=10_000_000)
        if r.status == "finished" and r.kind == "eval" and (not dataset or r.dataset == dataset)
    ]
    newest: dict[tuple[str, str, str, float], str] = {}
    for run in sorted(runs, key=lambda r: r.created):
        for e in run.config.get("eps", []):
            newest[(run.model, run.dataset, run.config["norm"], float(e))] = run.run_id
    out = []
    for (model, data, norm, e), run_id in newest.items():
        summary = summarize(store, run_id)
        per = next(p for p in summary.per_eps if math.isclose(p.eps, e))
        out.append(
            StoredResult(
                model,
                data,
                norm,
                e,
                summary.n,
                summary.clean_accuracy,
                dict(per.robust_after),
                per.worst_case,
                run_id,
                summary.verdict or "",
            )
        )
    return sorted(out, key=lambda r: (r.dataset, r.norm, r.eps, -r.worst_case, -r.clean))


@dataclass
class Comparison:
    entry: BaselineEntry
    current: float | None  # None: no stored result for this entry
    current_n: int
    drop_points: float | None
    p_value: float | None
    regressed: bool
    verdict: str = ""  # the current run's reliability verdict

    @property
    def unreliable(self) -> bool:
        return self.verdict == "unreliable"

    @property
    def missing(self) -> bool:
        return self.current is None


def check_tolerance(tolerance: float) -> float:
    """The allowed drop in points: a finite number >= 0 (NaN would let every drop pass)."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise UsageError(f"--tolerance must be a finite number of points >= 0, got {tolerance}")
    return float(tolerance)


def current_entries(store: Store, dataset: str | None = None) -> list[BaselineEntry]:
    """Every stored result as a baseline entry, with the n and seed of the run it comes from."""
    entries = []
    seeds: dict[str, int] = {}
    for row in newest_results(store, dataset):
        if row.run_id not in seeds:
            seeds[row.run_id] = store.get_run(row.run_id).seed
        seed = seeds[row.run_id]
        entries += [
            BaselineEntry(row.model, row.dataset, row.norm, row.eps, attack, acc, row.n, seed)
            for attack, acc in row.robust.items()
        ]
        entries.append(
            BaselineEntry(
                row.model, row.dataset, row.norm, row.eps, WORST, row.worst_case, row.n, seed
            )
        )
    return entries


def update_baseline(store: Store, path: Path, dataset: str | None = None) -> list[BaselineEntry]:
    """Write the baseline from the stored results; nothing is written when there are none."""
    entries = current_entries(store, dataset)
    if not entries:
        which = f" on dataset {dataset!r}" if dataset else ""
        raise UsageError(
            f"no finished evaluations{which} in the result database; {path} was not written"
        )
    write_baseline(path, entries)
    return entries


def write_baseline(path: Path, entries: list[BaselineEntry]) -> None:
    Baseline(tuple(entries)).write(Path(path))


def read_baseline(path: Path) -> list[BaselineEntry]:
    """The baseline's entries, every value checked (`Baseline.from_json`); UsageError otherwise."""
    return list(Baseline.from_json(path).entries)


def _lookup(rows: list[StoredResult], e: BaselineEntry) -> tuple[float, StoredResult] | None:
    for row in rows:
        if (row.model, row.dataset, row.norm) == (e.model, e.dataset, e.norm) and math.isclose(
            row.eps, e.eps, rel_tol=1e-6
        ):
            if e.attack == WORST:
                return row.worst_case, row
            if e.attack in row.robust:
                return row.robust[e.attack], row
    return None


def settings_mismatch(
    store: Store, rows: list[StoredResult], e: BaselineEntry, found: StoredResult | None
) -> str | None:
    """Why the stored result cannot be compared with the entry (another n, seed or dataset), or None."""
    if found is None:
        elsewhere = sorted(
            {
                r.dataset
                for r in rows
                if (r.model, r.norm) == (e.model, e.norm)
                and math.isclose(r.eps, e.eps, rel_tol=1e-6)
            }
        )
        if elsewhere:
            return f"{e.label}: the baseline's dataset is {e.dataset}, the stored runs are on {', '.join(elsewhere)}"
        return None
    differs = []
    if found.n != e.n:
        differs.append(f"n {found.n} (baseline {e.n})")
    if e.seed is not None:
        seed = store.get_run(found.run_id).seed
        if seed != e.seed:
            differs.append(f"seed {seed} (baseline {e.seed})")
    return (
        f"{e.label}: the newest stored run {found.run_id} has {' and '.join(differs)}"
        if differs
        else None
    )


def compare(
    store: Store, baseline: list[BaselineEntry], tolerance: float = 1.0, stat: bool = False
) -> list[Comparison]:
    """One comparison per baseline entry; UsageError when any cannot be compared like with like."""
    tolerance = check_tolerance(tolerance)
    if not baseline:
        raise UsageError("the baseline has no entries: nothing would be checked")
    rows = newest_results(store)
    found_rows = [_lookup(rows, e) for e in baseline]
    reasons = (
        settings_mismatch(store, rows, e, found[1] if found else None)
        for e, found in zip(baseline, found_rows)
    )
    mismatches = [reason for reason in reasons if reason]
    if mismatches:
        more = f" (and {len(mismatches) - 1} more entries)" if len(mismatches) > 1 else ""
        raise UsageError(
            f"not comparable with the baseline: {mismatches[0]}{more}; re-run with the baseline's settings or refresh it with --update"
        )
    out = []
    for e, found in zip(baseline, found_rows):
        if found is None:
            out.append(
                Comparison(e, None, 0, None, None, True)
            )  # a result that vanished is a failure, not a pass
            continue
        acc, row = found
        n, verdict = row.n, row.verdict
        drop = 100 * (e.accuracy - acc)
        p_value = None
        if stat and n and e.n:
            count = [round(e.accuracy * e.n), round(acc * n)]
            if count[0] != count[1] or e.n != n:
                # H1: the baseline accuracy is larger than the current one.
                p_value = float(proportions_ztest(count, [e.n, n], alternative="larger")[1])
        regressed = (
            not math.isfinite(drop)
            or drop > tolerance
            or (p_value is not None and p_value < 0.05 and drop > 0)
        )
        out.append(Comparison(e, acc, n, drop, p_value, regressed, verdict))
    return out
