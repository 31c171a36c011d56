"""One batch of an evaluation: the clean judgement, the plan's attacks on what is still robust,
and the store's rows (a clean row per sample, a row per sample, attack and eps).

A model random at inference is judged by votes (`models.vote`): its rows carry each point's
correct draws and draws; a deterministic model's rows leave them empty (one pass judged it)."""

from __future__ import annotations

from typing import Any

import torch

from advbench.attacks.ensemble import ThreatOutcome, robust_ensemble
from advbench.attacks.model_checks import validate_outputs
from advbench.attacks.wrappers import AttackedModel
from advbench.engine.plan import EvalPlan
from advbench.models.vote import Judgement

# sample index, label, clean prediction, and for a vote: correct draws, draws (else None)
CleanRow = tuple[int, int, int, int | None, int | None]
Rows = tuple[list[CleanRow], list[dict[str, Any]]]


def _votes(correct_draws: Any, draws: Any, size: int) -> list[tuple[int | None, int | None]]:
    """Per point, (correct draws, draws) of its vote; (None, None) where none judged it."""
    if correct_draws is None or draws is None:
        return [(None, None)] * size
    return [(c, d) if d else (None, None) for c, d in zip(correct_draws.tolist(), draws.tolist())]


def batch_rows(
    indices: list[int],
    labels: list[int],
    clean: Judgement,
    outcomes: list[ThreatOutcome],
) -> Rows:
    """The store's rows for one batch: a clean row per sample, a row per (sample, attack, eps)."""
    rows: list[dict[str, Any]] = []
    clean_pred = clean.prediction.tolist()
    correct = (~clean.wrong).tolist()
    for outcome in outcomes:
        for attempt in outcome.attempts:
            seen: dict[int, tuple[int, bool, float, int, float | None, int | None, int | None]] = {}
            result = attempt.result
            if result is not None:
                min_dist = (
                    result.min_distance.tolist()
                    if result.min_distance is not None
                    else [None] * len(attempt.target)
                )
                votes = _votes(result.correct_draws, result.draws, len(attempt.target))
                for pos, pred, ok, dist, steps, md, (hits, draws) in zip(
                    attempt.target.tolist(),
                    result.adv_pred.tolist(),
                    result.success.tolist(),
                    result.distance.tolist(),
                    result.steps.tolist(),
                    min_dist,
                    votes,
                ):
                    seen[pos] = (
                        pred,
                        ok,
                        dist,
                        steps,
                        md if md is None or md != float("inf") else None,
                        hits,
                        draws,
                    )
            for pos, sample in enumerate(indices):
                base = {
                    "sample_idx": sample,
                    "attack": attempt.label,
                    "eps": outcome.threat.eps,
                    "label": labels[pos],
                    "clean_pred": clean_pred[pos],
                }
                if pos in seen:
                    pred, ok, dist, steps, md, hits, draws = seen[pos]
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
                            "correct_draws": hits,
                            "draws": draws,
                        }
                    )
                elif not correct[pos]:
                    rows.append(
                        {
                            **base,
                            "status": "misclassified",
                            "adv_pred": clean_pred[pos],
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
    clean_votes = _votes(clean.correct_draws, clean.draws, len(indices))
    return [
        (i, lab, pred, hits, draws)
        for i, lab, pred, (hits, draws) in zip(indices, labels, clean_pred, clean_votes)
    ], rows


def judging_view(plan: EvalPlan) -> AttackedModel:
    """The model as the plan judges points: a vote when it is (or the checks found it) random."""
    return AttackedModel(plan.model, random=plan.escalation.random)


def vote_config(plan: EvalPlan) -> dict[str, Any]:
    """What the run stores of its vote (`{}`: one pass judges)."""
    rule = judging_view(plan).vote_rule
    return {} if rule is None else {"vote": rule.to_config()}


def clean_judgement(plan: EvalPlan, x: torch.Tensor, y: torch.Tensor) -> Judgement:
    """How the model classifies the clean batch: one pass, or a vote for a random model."""
    with (
        torch.no_grad()
    ):  # every batch's outputs are checked: a NaN model is an error, never an accuracy
        logits = validate_outputs(plan.model, plan.model(x), len(x), plan.num_classes)
    judge = judging_view(plan)
    if judge.vote_rule is None:
        prediction = logits.argmax(1)
        return Judgement(prediction, prediction != y)
    return judge.judge(x, y)


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
