"""The `STAGES` checks: findings read from the evaluation's own stage results on the checked samples.

AutoAttack flags gradient masking when Square breaks what APGD left; here every comparison
check reads the run the same way. From the stage records of one threat's outcome:

- black-box-vs-white-box: what gradient-free stages broke after gradient stages left it;
- scale-invariant-loss: what margin-loss stages (DLR, CW, targeted DLR) broke after
  cross-entropy left it, against what cross-entropy broke itself;
- more-steps: what the iterative gradient stages broke only in the last quarter of their steps
  (they were still breaking when they stopped);
- single-step-vs-iterative: what one FGSM step breaks after every stage (one step: cheap).

Each counts the checked samples broken and fails when their share is above its limit and at
least `MIN_BREAKS` samples make it (`Check.tested`): a single image never escalates a run. On a
model random at inference every break is a vote's decision, and a check fires only when an exact
one-sided binomial test says the share is above the limit (`VOTED_TEST_LEVEL`).

Where the evaluation has no stage of a compared kind (say `--attack pgd`: no black-box stage),
that stage runs as a probe on the samples the evaluation left robust; what it breaks counts in
the worst case (`probes`).

The black-box probe is Square with `SQUARE_PROBE_QUERIES` queries, and
`RANDOM_SQUARE_PROBE_QUERIES` on a model declared random at inference (the run's key says
which: `EvalRunKey.random_square_probe`). There one query is one noisy pass: a row stops at its
first misclassifying pass, and a proposal is kept on one noisy margin, so the search stalls.
Measured (`benchmarks/random_square_probe.py`, docs/notes/performance.md): the zoo's random
models' probes broke 3 of 492 checked survivors, all on sc-frontend, and on those survivors
every break, at 500 queries or at 100, came within the first 5 queries. The other 400 queries
cost 80 % of the probe and found nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from advbench.attacks.base import BLACK_BOX, CE, MARGIN_LOSS, SINGLE_STEP, Attack, StageRecord
from advbench.attacks.blackbox import Square, SquareConfig
from advbench.attacks.checks import (
    BLACK_BOX_VS_WHITE_BOX,
    CHECKS,
    MARGIN,
    MORE_STEPS,
    SCALE_INVARIANT_LOSS,
    SINGLE_STEP_VS_ITERATIVE,
    CheckResult,
)
from advbench.attacks.ensemble import ThreatOutcome
from advbench.attacks.gradient import FGSM, PGD, FGSMConfig, PGDConfig
from advbench.attacks.wrappers import AttackedModel
from advbench.core.seeding import derive_seed
from advbench.core.threat import Norm

GRADIENT_KINDS = (CE, MARGIN_LOSS, SINGLE_STEP)
SQUARE_PROBE_QUERIES = 500
RANDOM_SQUARE_PROBE_QUERIES = 100
PROBES: dict[
    str, tuple[str, Attack]
] = {  # check -> (probe label, the probe attack) where the run lacks the stage
    SCALE_INVARIANT_LOSS: ("check:pgd-dlr", PGD(PGDConfig(loss="dlr"))),
    SINGLE_STEP_VS_ITERATIVE: ("check:fgsm", FGSM(FGSMConfig())),
}


def probe_for(check: str, square_queries: int = SQUARE_PROBE_QUERIES) -> tuple[str, Attack]:
    """(probe label, probe attack) for a check, the black-box probe with `square_queries` queries."""
    if check == BLACK_BOX_VS_WHITE_BOX:
        return f"check:square-{square_queries}", Square(SquareConfig(n_queries=square_queries))
    return PROBES[check]


@dataclass
class StageFindings:
    results: list[CheckResult] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    probes: dict[str, torch.Tensor] = field(
        default_factory=dict
    )  # probe label -> broken (bool over the batch)
    probed: dict[str, torch.Tensor] = field(
        default_factory=dict
    )  # probe label -> attacked (bool over the batch)


def stage_records(outcome: ThreatOutcome, size: int) -> list[StageRecord]:
    """Every stage of every attack in the order they ran, over the batch's positions."""
    return [
        record.at(attempt.target, size)
        for attempt in outcome.attempts
        if attempt.result is not None
        for record in attempt.result.stages
    ]


def stage_findings(
    outcome: ThreatOutcome,
    view: AttackedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    indices: torch.Tensor,
    seed: int,
    square_queries: int = SQUARE_PROBE_QUERIES,
) -> StageFindings:
    """The `STAGES` checks on one threat's outcome over the checked samples (`correct`: the ones
    classified correctly). `view`: the model as probes see it; `square_queries`: the black-box
    probe's budget (module docstring)."""
    found = StageFindings()
    n = max(1, int(correct.sum()))
    voted = view.vote_rule is not None
    records = stage_records(outcome, len(x))
    assert outcome.robust is not None
    survivors = outcome.robust.clone()

    def none() -> torch.Tensor:
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)

    def union(masks: list[torch.Tensor]) -> torch.Tensor:
        out = none()
        for mask in masks:
            out |= mask
        return out

    def probe(check: str) -> torch.Tensor:
        label, attack = probe_for(check, square_queries)
        broken = none()
        target = survivors.nonzero().view(-1)
        if len(target) and outcome.threat.norm.value in attack.norms:
            result = attack(
                attack.view(view),
                x[target],
                y[target],
                outcome.threat,
                indices[target],
                derive_seed(seed, label),
            )
            broken[target[result.success]] = True
            found.probes[label], found.probed[label] = broken, survivors.clone()
        return broken

    def count(mask: torch.Tensor) -> int:
        return int((mask & correct).sum())

    threat = outcome.threat.label()
    first_gradient = next((i for i, r in enumerate(records) if r.kind in GRADIENT_KINDS), None)
    if first_gradient is not None:
        black = [r.broken for r in records[first_gradient + 1 :] if r.kind == BLACK_BOX]
        k = count(union(black) if black else probe(BLACK_BOX_VS_WHITE_BOX))
        found.results.append(
            CHECKS.get(BLACK_BOX_VS_WHITE_BOX).tested(
                k,
                n,
                f"gradient masking? a black-box search broke {100 * k / n:.1f}% of the checked samples after the gradient stages left them at {threat}",
                voted=voted,
            )
        )
    first_ce = next((i for i, r in enumerate(records) if r.kind == CE), None)
    if first_ce is not None:
        by_ce = count(union([r.broken for r in records if r.kind == CE])) / n
        margins = [r.broken for r in records[first_ce + 1 :] if r.kind == MARGIN_LOSS]
        k = count(union(margins) if margins else probe(SCALE_INVARIANT_LOSS))
        found.numbers["broken_by_cross_entropy"] = by_ce
        found.results.append(
            CHECKS.get(SCALE_INVARIANT_LOSS).tested(
                k,
                n,
                f"a scale-invariant margin loss broke {100 * k / n:.1f}% of the checked samples cross-entropy left, more than the "
                f"{100 * by_ce:.1f}% cross-entropy broke itself at {threat}: cross-entropy is saturated or mis-scaled here",
                limit=max(MARGIN, by_ce),
                voted=voted,
            )
        )
    late = [
        r.late for r in records if r.late is not None and r.kind in (CE, MARGIN_LOSS)
    ]  # single runs only (`Attack.iterations`)
    if late:
        k = count(union(late))
        found.results.append(
            CHECKS.get(MORE_STEPS).tested(
                k,
                n,
                f"the gradient stages broke {100 * k / n:.1f}% of the checked samples only in the last quarter of their steps at {threat}: "
                "they had not converged",
                voted=voted,
            )
        )
    if first_gradient is not None and outcome.threat.norm is not Norm.L1:
        k = count(probe(SINGLE_STEP_VS_ITERATIVE))
        found.results.append(
            CHECKS.get(SINGLE_STEP_VS_ITERATIVE).tested(
                k,
                n,
                f"gradient masking? one FGSM step broke {100 * k / n:.1f}% of the checked samples the iterative stages left at {threat}",
                voted=voted,
            )
        )
    found.numbers.update({r.name: r.value for r in found.results})
    return found
