"""The still-robust ensemble (AutoAttack's `robust_flags`): attacks in turn, each on the samples
no earlier attack broke, per threat model.

Minimum-norm attacks run once per batch on every correctly classified sample and are read at
each budget (`MinimumNormAttack.sweep`); fixed-budget attacks run per budget on what is still
robust. The outcome keeps, per threat and attack, which samples the attack saw and its result
on them, so callers can store per-sample rows or stop early.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from advbench.attacks.base import Attack, AttackResult, MinimumNormAttack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.device import synchronize
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel


@dataclass
class Attempt:
    """One attack at one budget: the batch positions it attacked and its result on them."""

    label: str
    target: torch.Tensor  # positions in the batch (long)
    result: AttackResult | None  # None when nothing was left to attack
    seconds_per_sample: float = 0.0


@dataclass
class ThreatOutcome:
    threat: ThreatModel
    attempts: list[Attempt] = field(default_factory=list)
    robust: torch.Tensor | None = (
        None  # bool per batch sample: correct and unbroken by every attack
    )


def robust_ensemble(
    attacks: list[tuple[str, Attack, AttackedModel]],
    x: torch.Tensor,
    y: torch.Tensor,
    threats: list[ThreatModel],
    indices: torch.Tensor,
    seed: int,
    correct: torch.Tensor | None = None,
    after: list[ThreatOutcome] | None = None,
) -> list[ThreatOutcome]:
    """Run `attacks` (label, attack, the model as that attack sees it) on the still-robust samples.

    `correct`: the samples the model classifies correctly (computed when None); `indices` are the
    samples' dataset indices (random draws depend on them, never on the batch); every attack's
    seed is derived from `seed` and its label (and the budget, for fixed-budget attacks).
    `after`: outcomes of attacks that ran before on this batch (one per threat), continued with
    `attacks` on what they left robust, as if all had run in one ensemble.
    """
    if correct is None:
        correct = ~attacks[0][2].judge(x, y).wrong
    swept: dict[str, tuple[list[AttackResult], torch.Tensor, float]] = {}
    start_correct = correct.nonzero().view(-1)
    for label, attack, view in attacks:
        if isinstance(attack, MinimumNormAttack) and len(start_correct):
            t0 = time.perf_counter()
            results = attack.sweep(
                view,
                x[start_correct],
                y[start_correct],
                threats,
                indices[start_correct],
                derive_seed(seed, label),
            )
            synchronize(x.device)  # CUDA runs asynchronously: the clock must wait for the work
            swept[label] = (results, start_correct, (time.perf_counter() - t0) / len(start_correct))
    outcomes = []
    for t, threat in enumerate(threats):
        earlier = after[t] if after is not None else None
        still = (
            correct.clone() if earlier is None or earlier.robust is None else earlier.robust.clone()
        )
        outcome = ThreatOutcome(threat, list(earlier.attempts) if earlier is not None else [])
        for label, attack, view in attacks:
            target = still.nonzero().view(-1)
            if len(target) == 0:
                outcome.attempts.append(Attempt(label, target, None))
                continue
            if label in swept:
                results, rows, seconds = swept[label]
                # Positions of `target` within the swept rows (every still-robust sample was swept).
                where = torch.searchsorted(rows, target)
                result = results[t].take(where)
            else:
                t0 = time.perf_counter()
                result = attack(
                    view,
                    x[target],
                    y[target],
                    threat,
                    indices[target],
                    derive_seed(seed, label, threat.eps),
                )
                synchronize(x.device)
                seconds = (time.perf_counter() - t0) / len(target)
            if not result.stages:
                result.stages = attack.record(view, result)
            still[target[result.success]] = False
            outcome.attempts.append(Attempt(label, target, result, seconds))
        outcome.robust = still
        outcomes.append(outcome)
    return outcomes
