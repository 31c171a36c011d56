"""Accuracy-vs-epsilon curves from stored runs (no re-attacking), as CSV and PNG.

A fixed-budget run gives one point per eps it evaluated. A minimum-norm attack gives the whole
curve from one run: a sample counts as robust at eps when it was classified correctly and the
smallest adversarial found is larger than eps.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from advbench.core.errors import UsageError
from advbench.store import Store, summarize


@dataclass
class Curve:
    label: str  # "model / attack"
    norm: str
    eps: list[float]
    accuracy: list[float]


def curves_from_run(store: Store, run_id: str, grid: list[float] | None = None) -> list[Curve]:
    """One curve per attack of the run (the worst case over all as well when there are several)."""
    run = store.get_run(run_id)
    summary = summarize(store, run.run_id)
    norm = run.config["norm"]
    curves = []
    for attack in summary.attacks:
        points = [(p.eps, p.robust_after[attack]) for p in summary.per_eps]
        if grid and len(summary.per_eps) == 1:
            derived = minimum_norm_curve(store, run.run_id, attack, grid)
            if derived is not None:
                points = derived
        curves.append(
            Curve(f"{run.model} / {attack}", norm, [e for e, _ in points], [a for _, a in points])
        )
    if len(summary.attacks) > 1:
        curves.append(
            Curve(
                f"{run.model} / worst case",
                norm,
                [p.eps for p in summary.per_eps],
                [p.worst_case for p in summary.per_eps],
            )
        )
    return curves


def minimum_norm_curve(
    store: Store, run_id: str, attack: str, grid: list[float]
) -> list[tuple[float, float]] | None:
    """Robust accuracy at every eps of `grid` from the stored minimum norms (None if the attack stored none)."""
    smallest = smallest_distances(store, run_id, attack)
    if smallest is None:
        return None
    return _accuracy_over(store.clean_rows(run_id), smallest, grid)


def smallest_distances(store: Store, run_id: str, attack: str) -> dict[int, float] | None:
    """sample index -> the smallest adversarial norm the attack found (inf: none), over the attacked
    samples; None when the attack stored no norms (a fixed-budget attack)."""
    rows = [r for r in store.sample_rows(run_id) if r["attack"] == attack]
    if not rows or not any(r["min_distance"] is not None for r in rows):
        return None
    first_eps = rows[0]["eps"]
    return {
        r["sample_idx"]: (r["min_distance"] if r["min_distance"] is not None else math.inf)
        for r in rows
        if r["eps"] == first_eps and r["status"] == "attacked"
    }


def worst_minimum_norm_curve(
    store: Store, run_ids: Sequence[str], grid: list[float]
) -> list[tuple[float, float]]:
    """Robust accuracy at every eps of `grid` under the best of several minimum-norm runs, one attack
    each (e.g. one suite cell per attack): a sample is broken at eps when any run found an
    adversarial within eps. The runs must share a norm, a checkpoint and their samples, else the
    per-sample minimum would mix different questions."""
    if not run_ids:
        raise UsageError("a worst-case curve needs at least one run")
    runs = [store.get_run(r) for r in run_ids]
    first = runs[0]
    for run in runs[1:]:
        if (run.config["norm"], run.checkpoint_sha256, run.indices_hash, run.n_samples) != (
            first.config["norm"],
            first.checkpoint_sha256,
            first.indices_hash,
            first.n_samples,
        ):
            raise UsageError(
                f"runs {first.run_id} and {run.run_id} differ in norm, checkpoint or samples; their minimum norms cannot be combined"
            )
    worst: dict[int, float] = {}
    for run in runs:
        if len(run.config["attack_names"]) != 1:
            raise UsageError(
                f"run {run.run_id} ran {len(run.config['attack_names'])} attacks; give one run per minimum-norm attack"
            )
        smallest = smallest_distances(store, run.run_id, run.config["attack_names"][0])
        if smallest is None:
            raise UsageError(
                f"run {run.run_id} ({run.config['attack_names'][0]}) stored no minimum norms"
            )
        for idx, dist in smallest.items():
            worst[idx] = min(dist, worst.get(idx, math.inf))
    return _accuracy_over(store.clean_rows(first.run_id), worst, grid)


def _accuracy_over(
    clean: Sequence, smallest: dict[int, float], grid: list[float]
) -> list[tuple[float, float]]:
    correct = {idx for idx, label, pred in clean if label == pred}
    return [
        (e, sum(1 for i in correct if smallest.get(i, math.inf) > e) / len(clean)) for e in grid
    ]


def minimum_norm_stats(store: Store, run_id: str, attack: str) -> dict[str, float | None]:
    """Median and mean smallest perturbation and success rate over the correctly classified samples."""
    rows = [
        r for r in store.sample_rows(run_id) if r["attack"] == attack and r["status"] == "attacked"
    ]
    first = rows[0]["eps"] if rows else None
    found = sorted(
        r["min_distance"] for r in rows if r["eps"] == first and r["min_distance"] is not None
    )
    attacked = [r for r in rows if r["eps"] == first]
    return {
        "success_rate": len(found) / len(attacked) if attacked else None,
        "median_norm": found[len(found) // 2] if found else None,
        "mean_norm": sum(found) / len(found) if found else None,
    }


def curves_csv(curves: list[Curve]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["curve", "norm", "eps", "robust_accuracy"])
    for c in curves:
        writer.writerows([c.label, c.norm, f"{e:g}", f"{a:.6f}"] for e, a in zip(c.eps, c.accuracy))
    return buf.getvalue()


def plot_curves(curves: list[Curve], path: Path, title: str = "") -> Path:
    """Accuracy vs eps, all curves on one axes, as a PNG (Agg backend: no display needed)."""
    from advbench.report.figures import line_figure, save_figure

    norms = sorted({c.norm for c in curves})
    fig = line_figure(
        [(c.label, c.eps, c.accuracy) for c in curves],
        f"eps ({', '.join(norms)})",
        "robust accuracy %",
        title,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path


def write_curves(
    db: str | Path, run_ids: Sequence[str], grid: list[float] | None, out: Path, title: str = ""
) -> tuple[list[Curve], Path, Path]:
    """The curves of stored runs written as OUT.csv and OUT.png; returns the curves and both paths."""
    from advbench.core.errors import UsageError

    if not Path(db).is_file():
        raise UsageError(f"no result database at {db}")
    with Store(db) as store:
        curves = [c for rid in run_ids for c in curves_from_run(store, rid, grid)]
    if not curves:
        raise UsageError("no curves to draw: give --model or --run")
    csv_path, png_path = out.with_suffix(".csv"), out.with_suffix(".png")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(curves_csv(curves))
    plot_curves(curves, png_path, title=title)
    return curves, csv_path, png_path


MAX_GRID = 1000  # budgets in one curve: each is a point of every attack's run


def parse_eps_range(text: str, max_points: int = MAX_GRID) -> list[float]:
    """'0:0.3:0.02' (start:stop:step, stop included) or '0.01,0.03,0.1'; finite budgets >= 0, at most `max_points`.

    The grid's size is checked before it is built, so '0:1:1e-7' is an error, not ten million budgets.
    """
    from advbench.core.errors import UsageError

    shown = text if len(text) <= 60 else text[:57] + "..."
    how = f"--eps {shown!r}: write start:stop:step (e.g. 0:0.3:0.02) or a list (0.01,0.03), finite numbers >= 0"
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
        else:
            # an empty element ('0.1,,0.2') is a typo, not a budget to drop silently
            values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(how) from None
    if ":" in text:
        if (
            not all(math.isfinite(v) for v in (start, stop, step))
            or start < 0
            or step <= 0
            or stop < start
        ):
            raise UsageError(f"{how}; step > 0 and stop >= start")
        steps = (stop - start) / step
        count = (
            math.floor(steps + 1e-9) + 1 if steps <= max_points else max_points + 1
        )  # (inf steps floor to nothing)
        if count > max_points:
            raise UsageError(
                f"--eps {shown!r} is {steps + 1:.4g} budgets; at most {max_points} (use a larger step)"
            )
        return [round(start + i * step, 10) for i in range(count)]
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise UsageError(how)
    if len(values) > max_points:
        raise UsageError(f"--eps {shown!r} is {len(values)} budgets; at most {max_points}")
    return values
