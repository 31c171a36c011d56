"""Adaptive evaluation on the checked samples: probes, stages, findings, remedies, verdict.

The first `check_n` samples of a run are its checked shard, evaluated top to bottom:

1. cheap probes on the model (`attacks.model_checks`: outputs, determinism, input gradients,
   PGD at a huge budget on a few samples); their remedies give the plan the stages start with;
2. the plan's stages (clean judgement, then the still-robust ensemble);
3. findings read from the stages' own results (`attacks.stage_checks`: a gradient-free stage
   breaking what the gradient stages left, a margin loss breaking what cross-entropy left,
   breaks only late in the steps, one FGSM step breaking what is left);
4. their remedies run on the samples still robust, and the plan the rest of the run uses is
   the escalated one (`EvalPlan.escalated`);
5. re-checks of the escalated evaluation and the verdict: `reliable` (nothing failed),
   `escalated` (the evaluation adapted and the re-checks pass) or `unreliable`.

What the remedies and the probes break counts in the worst case. The checks' own cost (probes,
re-checks) is timed apart from the stages, which are the evaluation's work anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from advbench.attacks.checks import (
    INPUT_GRADIENTS,
    LARGE_EPS_CEILING,
    CheckResult,
    Escalation,
    choose,
)
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.model_checks import (
    LARGE_EPS_SAMPLES,
    determinism_check,
    gradient_check,
    large_eps,
    large_eps_check,
    output_checks,
)
from advbench.attacks.stage_checks import stage_findings
from advbench.attacks.wrappers import EOT_DRAWS_RANDOM_MODEL, AttackedModel, TransferModel, view_for
from advbench.core.device import synchronize
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel
from advbench.engine.batch import Rows, batch_rows, clean_judgement, run_stages
from advbench.engine.plan import EvalPlan

RELIABLE, ESCALATED, UNRELIABLE = "reliable", "escalated", "unreliable"
# A zoo model per dataset that transfer attacks can craft on when the target's gradients are useless.
TRANSFER_SURROGATES = {"fashion-mnist": "rn18-nt"}


@dataclass
class CheckedShard:
    """The checked samples' rows, and what the checks found and changed (stored with the run)."""

    rows: Rows
    results: list[CheckResult]
    escalation: Escalation
    rechecks: list[CheckResult]
    verdict: str
    numbers: dict[str, Any] = field(default_factory=dict)
    probe_names: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the checks' own time: probes, probe attacks, re-checks


def verdict(results: list[CheckResult], rechecks: list[CheckResult]) -> str:
    if all(r.passed for r in results):
        return RELIABLE
    return ESCALATED if rechecks and all(r.passed for r in rechecks) else UNRELIABLE


def transfer_surrogate(plan: EvalPlan) -> str | None:
    """The model transfer attacks craft on, for a named model whose dataset has one."""
    surrogate = TRANSFER_SURROGATES.get(plan.dataset)
    return surrogate if surrogate and surrogate != plan.name and plan.spec is not None else None


def probe_view(plan: EvalPlan, random: bool, log_outputs: bool) -> AttackedModel:
    """The model as probes see it: as the evaluation would (log of probabilities, EOT for random models)."""
    base = view_for(plan.model, True, plan.eot, plan.bpda)
    draws = (
        max(base.eot_draws, EOT_DRAWS_RANDOM_MODEL)
        if random and plan.eot is None
        else base.eot_draws
    )
    return AttackedModel(plan.model, draws, plan.bpda, random=random, log_outputs=log_outputs)


def model_probes(
    plan: EvalPlan, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor
) -> list[CheckResult]:
    """The `PROBE` checks: cheap, before any stage. Raises `ModelOutputError` on unusable outputs."""
    probabilities = output_checks(plan.model, x, plan.num_classes)
    determinism = determinism_check(plan.model, x)
    view = probe_view(plan, not determinism.passed, not probabilities.passed)
    correct = ~view.judge(x, y).wrong
    threat = max(plan.threats, key=lambda t: t.eps)
    return [
        probabilities,
        determinism,
        gradient_check(view, x[correct], y[correct]),
        large_eps_check(
            view,
            x[correct],
            y[correct],
            threat.norm,
            idx.to(x.device)[correct],
            derive_seed(plan.seed, "checks"),
        ),
    ]


def recheck(
    plan: EvalPlan, x: torch.Tensor, y: torch.Tensor, correct: torch.Tensor, idx: torch.Tensor
) -> list[CheckResult]:
    """The escalated evaluation against the failures that called for it: at a huge budget it must
    break (nearly) every checked sample, and dead gradients need a gradient-free attack."""
    threat = max(plan.threats, key=lambda t: t.eps)
    huge = ThreatModel(threat.norm, large_eps(threat.norm, x[0].numel()))
    keep = correct.nonzero().view(-1)[:LARGE_EPS_SAMPLES]
    results = []
    if len(keep):
        attacks = [(a.label, a.attack, a.view) for a in plan.attacks]
        ones = torch.ones(len(keep), dtype=torch.bool, device=x.device)
        (at_huge,) = robust_ensemble(
            attacks, x[keep], y[keep], [huge], idx[keep], derive_seed(plan.seed, "recheck"), ones
        )
        assert at_huge.robust is not None
        acc = float(at_huge.robust.float().mean())
        results.append(
            CheckResult(
                "recheck:large-eps",
                acc <= LARGE_EPS_CEILING,
                acc,
                LARGE_EPS_CEILING,
                f"after adapting, the evaluation at the huge budget {huge.label()} still leaves {100 * acc:.1f}% (should be ~0)",
            )
        )
    if INPUT_GRADIENTS in plan.escalation.failed:
        has_gradient_free = any(
            not a.attack.uses_gradients or isinstance(a.view, TransferModel) for a in plan.attacks
        )
        results.append(
            CheckResult(
                "recheck:gradient-free-attacks",
                has_gradient_free,
                float(has_gradient_free),
                1.0,
                "gradients are dead and no gradient-free or transfer attack runs",
            )
        )
    return results


def check_shard(plan: EvalPlan, indices: list[int]) -> tuple[CheckedShard, EvalPlan]:
    """The checked samples evaluated top to bottom (module docstring); returns their rows and
    findings, and the plan the rest of the run uses."""
    idx = torch.tensor(indices, dtype=torch.int64)
    x, y = plan.batch(idx)
    didx = idx.to(x.device)
    spent = 0.0
    t0 = time.perf_counter()
    plan.reseed("checks")
    results = model_probes(plan, x, y, idx)
    plan = plan.escalated(choose(results, transfer_surrogate(plan), tuple(plan.labels)))
    synchronize(x.device)
    spent += time.perf_counter() - t0
    plan.reseed("batch")
    clean = clean_judgement(plan, x, y)
    correct = ~clean.wrong
    outcomes = run_stages(plan, x, y, idx, correct)
    t0 = time.perf_counter()
    worst = max(range(len(plan.threats)), key=lambda t: plan.threats[t].eps)
    view = probe_view(plan, plan.escalation.random, plan.escalation.log_outputs)
    found = stage_findings(
        outcomes[worst],
        view,
        x,
        y,
        correct,
        didx,
        derive_seed(plan.seed, "checks"),
        plan.square_probe_queries,
    )
    results += found.results
    synchronize(x.device)
    spent += time.perf_counter() - t0
    done = len(plan.attacks)
    plan = plan.escalated(choose(results, transfer_surrogate(plan), tuple(plan.labels)))
    if len(plan.attacks) > done:  # the remedies, on what the evaluation left robust
        outcomes = run_stages(plan, x, y, idx, correct, outcomes, skip=done)
    t0 = time.perf_counter()
    rechecks = recheck(plan, x, y, correct, didx) if plan.escalation.failed else []
    synchronize(x.device)
    spent += time.perf_counter() - t0
    clean_rows, rows = batch_rows(indices, y.tolist(), clean, outcomes)
    eps = plan.threats[worst].eps
    for label, broken in found.probes.items():
        attacked = found.probed[label]
        rows += [
            {
                "sample_idx": s,
                "attack": label,
                "eps": eps,
                "status": "attacked",
                "label": lab,
                "clean_pred": lab,
                "adv_pred": None,
                "success": int(ok),
                "distance": None,
                "steps": None,
                "seconds": None,
            }
            for s, lab, ok, on in zip(indices, y.tolist(), broken.tolist(), attacked.tolist())
            if on
        ]
    numbers = {
        "eps": eps,
        "n": int(correct.sum()),
        **found.numbers,
        **{r.name: r.value for r in results},
    }
    shard = CheckedShard(
        (clean_rows, rows),
        results,
        plan.escalation,
        rechecks,
        verdict(results, rechecks),
        numbers,
        list(found.probes),
        spent,
    )
    return shard, plan
