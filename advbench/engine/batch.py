"""One batch of an evaluation: the clean judgement, the plan's attacks on what is still robust,
and the store's rows (a clean row per sample, a row per sample, attack and eps)."""

from __future__ import annotations

from typing import Any

import torch

from advbench.attacks.ensemble import ThreatOutcome, robust_ensemble
from advbench.attacks.model_checks import validate_outputs
from advbench.engine.plan import EvalPlan

CleanRow = tuple[int, int, int]  # sample index, label, clean prediction
Rows = tuple[list[CleanRow], list[dict[str, Any]]]


def batch_rows(
    indices: list[int],
    labels: list[int],
    clean: list[int],
    correct: list[bool],
    outcomes: list[ThreatOutcome],
) -> Rows:
    """The store's rows for one batch: a clean row per sample, a row per (sample, attack, eps)."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        for attempt in outcome.attempts:
            seen: dict[int, tuple[int, bool, float, int, float | None]] = {}
            result = attempt.result
            if result is not None:
                min_dist = (
                    result.min_distance.tolist()
                    if result.min_distance is not None
                    else [None] * len(attempt.target)
                )
                for pos, pred, ok, dist, steps, md in zip(
                    attempt.target.tolist(),
                    result.adv_pred.tolist(),
                    result.success.tolist(),
                    result.distance.tolist(),
                    result.steps.tolist(),
                    min_dist,
                ):
                    seen[pos] = (
                        pred,
                        ok,
                        dist,
                        steps,
                        md if md is None or md != float("inf") else None,
                    )
            for pos, sample in enumerate(indices):
                base = {
                    "sample_idx": sample,
                    "attack": attempt.label,
                    "eps": outcome.threat.eps,
                    "label": labels[pos],
                    "clean_pred": clean[pos],
                }
                if pos in seen:
                    pred, ok, dist, steps, md = seen[pos]
                    rows.append(
                        {
                            **base,
                            "status": "attacked",
                            "adv_pred": pred,
                            "success": int(ok),
                            "distance": dist,
                            "steps": steps,
                            "seconds": attempt.seconds_per_sample,
                            "min_distance": md,
                        }
                    )
                elif not correct[pos]:
                    rows.append(
                        {
                            **base,
                            "status": "misclassified",
                            "adv_pred": clean[pos],
                            "success": 1,
                            "distance": 0.0,
                            "steps": 0,
                            "seconds": 0.0,
                        }
                    )
                else:
                    rows.append(
                        {
                            **base,
                            "status": "skipped",
                            "adv_pred": None,
                            "success": None,
                            "distance": None,
                            "steps": None,
                            "seconds": None,
                        }
                    )
    return list(zip(indices, labels, clean)), rows


def clean_judgement(plan: EvalPlan, x: torch.Tensor) -> torch.Tensor:
    with (
        torch.no_grad()
    ):  # every batch's outputs are checked: a NaN model is an error, never an accuracy
        return validate_outputs(plan.model, plan.model(x), len(x), plan.num_classes).argmax(1)


def run_stages(
    plan: EvalPlan,
    x: torch.Tensor,
    y: torch.Tensor,
    idx: torch.Tensor,
    correct: torch.Tensor,
    after: list[ThreatOutcome] | None = None,
    skip: int = 0,
) -> list[ThreatOutcome]:
    """The plan's attacks from the `skip`-th on, on what is still robust (continuing `after`)."""
    attacks = [(a.label, a.attack, a.view) for a in plan.attacks[skip:]]
    return robust_ensemble(
        attacks, x, y, list(plan.threats), idx.to(x.device), plan.seed, correct, after
    )
