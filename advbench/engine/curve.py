"""Accuracy-vs-eps curves as evaluations: one resumable run per model over the whole eps grid.

Drawing and writing the curves is `advbench.report.curves.write_curves`, which reads the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from advbench.engine.evaluate import run_eval
from advbench.engine.runs import ProgressFn
from advbench.engine.spec import EvalSpec, Runtime


def evaluate_curves(
    models: Sequence[str],
    attacks: Sequence[str],
    norm: str,
    grid: Sequence[float],
    dataset: str,
    n: int | None,
    seed: int,
    runtime: Runtime,
    progress_for: Callable[[str], ProgressFn | None] | None = None,
) -> list[str]:
    """Evaluate every model under `attacks` at every eps of `grid`; the run ids, in model order.

    Gradient-masking checks are skipped (a curve is a sweep, not a verdict); `progress_for(model)`
    gives each model's progress callback.
    """
    run_ids = []
    for model in models:
        spec = EvalSpec(
            model=model,
            attacks=tuple(attacks),
            eps=tuple(grid),
            norm=norm,
            dataset=dataset,
            n=n,
            seed=seed,
            checks=False,
        )
        outcome = run_eval(spec, runtime, progress=progress_for(model) if progress_for else None)
        run_ids.append(outcome.summary.run_id)
    return run_ids
