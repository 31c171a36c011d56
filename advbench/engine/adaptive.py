"""Adaptive evaluation: checks before the run, and an evaluation that acts on what they find.

On the first `check_n` samples the model is checked (outputs, determinism, input gradients)
and probed (FGSM, PGD, PGD-40, PGD-DLR, Square, PGD at a huge budget). Each failed check
changes the evaluation, and the change is stored with the run:

| failed check | change |
|---|---|
| logits-not-probabilities | attack the log of the outputs |
| deterministic (undeclared randomness) | treat the model as random: EOT gradients, no early stopping, AutoAttack `rand` |
| input-gradients, large-eps, black-box-vs-white-box | Square with a 10x larger budget, and transfer from a smooth surrogate, on every still-robust sample |
| scale-invariant-loss, single-step-vs-iterative | scale-invariant losses (DLR, CW margin) |
| more-steps | PGD with 5x the steps and restarts |

Then the checks are run again against the adapted evaluation on the same samples, and the run
gets a verdict: `reliable` (nothing failed), `escalated` (something failed, the evaluation
adapted, and the re-checks pass) or `unreliable` (a re-check still fails).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from advbench.attacks.checks import (
    LARGE_EPS_CEILING,
    MARGIN,
    CheckReport,
    CheckResult,
    gradient_masking_checks,
    large_eps,
)
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.model_checks import (
    determinism_check,
    gradient_check,
    output_checks,
)
from advbench.attacks.transfer import Transfer
from advbench.attacks.wrappers import AttackedModel, TransferModel, view_for
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel
from advbench.engine.plan import EvalPlan, PlannedAttack, validate_attacks

RELIABLE, ESCALATED, UNRELIABLE = "reliable", "escalated", "unreliable"
BLACK_BOX = "square:n_queries=5000"
SCALE_FREE = ("pgd:loss=dlr", "pgd:loss=cw")
LONGER = "pgd:steps=100,restarts=3,rel_stepsize=0.05"
# A zoo model per dataset that transfer attacks can craft on when the target's gradients are useless.
TRANSFER_SURROGATES = {"fashion-mnist": "rn18-nt"}
GRADIENT_FAILURES = {"input-gradients", "large-eps", "black-box-vs-white-box"}


@dataclass
class Escalation:
    """What adaptive evaluation changed, and why (stored with the run; re-applied on resume)."""

    failed: list[str] = field(default_factory=list)
    random: bool = False
    log_outputs: bool = False
    attacks: list[str] = field(default_factory=list)
    surrogate: str | None = None
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Escalation":
        return cls(**data) if data else cls()


@dataclass
class CheckOutcome:
    report: CheckReport
    escalation: Escalation
    rechecks: list[CheckResult]
    verdict: str
    labels: list[int] = field(default_factory=list)  # the labels of report.indices

    def probe_rows(self, eps: float) -> list[dict[str, Any]]:
        """The probes' per-sample outcomes as store rows: worst case counts every attack that ran."""
        if self.report.indices is None:
            return []
        samples = self.report.indices.tolist()
        return [
            {"sample_idx": s, "attack": name, "eps": eps, "status": "attacked", "label": lab, "clean_pred": lab, "adv_pred": None,
             "success": int(ok), "distance": None, "steps": None, "seconds": None}
            for name, success in self.report.probes.items() for s, lab, ok in zip(samples, self.labels, success.tolist())
        ]

    @property
    def results(self) -> list[CheckResult]:
        return self.report.results


def choose(plan: EvalPlan, results: list[CheckResult]) -> Escalation:
    """The changes the failed checks call for."""
    failed = [r.name for r in results if not r.passed]
    esc = Escalation(failed=failed)
    labels = {a.label for a in plan.attacks}
    if "logits-not-probabilities" in failed:
        esc.log_outputs = True
        esc.changes.append("outputs are probabilities: their logarithm is attacked")
    if "deterministic" in failed:
        esc.random = True
        esc.changes.append("undeclared randomness: evaluated as a random model (EOT gradients, no early stopping)")
    wanted: list[str] = []
    if GRADIENT_FAILURES & set(failed):
        wanted.append(BLACK_BOX)
        surrogate = TRANSFER_SURROGATES.get(plan.dataset)
        if surrogate and surrogate != plan.name and plan.spec is not None:
            esc.surrogate = surrogate
            wanted.append("transfer:pgd:steps=50")
        esc.changes.append("gradients do not reach every sample: Square with 5000 queries" + (f" and transfer from {surrogate}" if esc.surrogate else "") + " on every still-robust sample")
    if {"scale-invariant-loss", "single-step-vs-iterative"} & set(failed):
        wanted += list(SCALE_FREE)
        esc.changes.append("cross-entropy is unreliable here: scale-invariant DLR and CW-margin losses added")
    if "more-steps" in failed:
        wanted.append(LONGER)
        esc.changes.append("PGD had not converged: 100 steps x 3 restarts added")
    esc.attacks = [a for a in wanted if a not in labels]
    return esc


def apply(plan: EvalPlan, esc: Escalation) -> None:
    """Change `plan` in place: views for random / log-probability models, escalation attacks appended."""
    if not (esc.random or esc.log_outputs or esc.attacks):
        return
    eot = plan.eot  # a user-forced --eot wins; otherwise `adapted` raises the draws for a random model

    def adapted(view: AttackedModel, uses_gradients: bool) -> AttackedModel:
        draws = view.eot_draws
        if esc.random and plan.eot is None and uses_gradients:
            draws = max(draws, 20)
        return AttackedModel(view.model, draws, view.bpda, random=view.random or esc.random, log_outputs=view.log_outputs or esc.log_outputs)

    for planned in plan.attacks:
        if isinstance(planned.view, TransferModel):
            continue  # gradients come from the surrogate, which the checks did not examine
        planned.view = adapted(planned.view, planned.attack.uses_gradients)
    surrogate = None
    for label, attack, config in validate_attacks(tuple(esc.attacks), plan.threats, esc.surrogate):
        if isinstance(attack, Transfer):
            if plan.load_surrogate is None:
                continue
            surrogate = surrogate or plan.load_surrogate(attack.config.surrogate)
            view: AttackedModel = TransferModel(plan.model, view_for(surrogate, True, None, plan.bpda), attack.config.surrogate)
        else:
            view = adapted(attack.view(plan.model, eot, plan.bpda), attack.uses_gradients)
        plan.attacks.append(PlannedAttack(label, attack, config, view))


def recheck(plan: EvalPlan, esc: Escalation, report: CheckReport, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel) -> list[CheckResult]:
    """The failed checks again, against the adapted evaluation on the checked samples."""
    if report.indices is None or not len(report.indices) or not esc.failed:
        return []
    idx = report.indices.to(x.device)
    huge = ThreatModel(threat.norm, large_eps(threat.norm, x[0].numel()))
    attacks = [(a.label, a.attack, a.view) for a in plan.attacks]
    correct = torch.ones(len(idx), dtype=torch.bool, device=x.device)
    at_eps, at_huge = robust_ensemble(attacks, x, y, [threat, huge], idx, derive_seed(plan.seed, "recheck"), correct)
    acc = float(at_eps.robust.float().mean())
    acc_huge = float(at_huge.robust.float().mean())
    probes = [v for k, v in report.numbers.items() if k in ("pgd", "pgd_double_steps", "pgd_dlr", "fgsm", "square_500")]
    best_probe = min(probes) if probes else 1.0
    results = [CheckResult(
        "recheck:large-eps", acc_huge <= LARGE_EPS_CEILING, acc_huge, LARGE_EPS_CEILING,
        f"after adapting, the evaluation at the huge budget {huge.label()} still leaves {100 * acc_huge:.1f}% (should be ~0)",
    ), CheckResult(
        "recheck:strongest-probe", acc <= best_probe + MARGIN, acc, best_probe + MARGIN,
        f"after adapting, the evaluation leaves {100 * acc:.1f}% at {threat.label()}, above a probe attack's {100 * best_probe:.1f}%",
    )]
    if "input-gradients" in esc.failed:
        has_gradient_free = any(not a.attack.uses_gradients or isinstance(a.view, TransferModel) for a in plan.attacks)
        results.append(CheckResult(
            "recheck:gradient-free-attacks", has_gradient_free, float(has_gradient_free), 1.0,
            "gradients are dead and no gradient-free or transfer attack runs",
        ))
    return results


def verdict(results: list[CheckResult], rechecks: list[CheckResult]) -> str:
    if all(r.passed for r in results):
        return RELIABLE
    return ESCALATED if rechecks and all(r.passed for r in rechecks) else UNRELIABLE


def run_checks(plan: EvalPlan, indices: list[int]) -> CheckOutcome:
    """Check, choose the escalation, apply it to `plan`, re-check. Raises `ModelOutputError` for a
    model whose outputs cannot be evaluated."""
    x, y = plan.batch(torch.tensor(indices, dtype=torch.int64))
    idx = torch.tensor(indices, dtype=torch.int64)
    plan.reseed("checks")
    num_classes = plan.model.num_classes
    probabilities = output_checks(plan.model, x, num_classes)
    model_results = [probabilities, determinism_check(plan.model, x)]
    # Probes see the model as the evaluation would (log of probabilities, EOT for random models).
    base = view_for(plan.model, True, plan.eot, plan.bpda)
    probe_view = AttackedModel(plan.model, base.eot_draws, plan.bpda, random=not model_results[1].passed, log_outputs=not probabilities.passed)
    if probe_view.random and plan.eot is None:
        probe_view.eot_draws = max(probe_view.eot_draws, 20)
    correct = probe_view.verdict(x) == y
    model_results.append(gradient_check(probe_view, x[correct], y[correct]))
    threat = max(plan.threats, key=lambda t: t.eps)
    report = gradient_masking_checks(probe_view, x, y, threat, plan.eot, plan.bpda, derive_seed(plan.seed, "checks"), idx)
    report.results[:0] = model_results
    esc = choose(plan, report.results)
    apply(plan, esc)
    keep = torch.isin(idx, report.indices).to(x.device) if report.indices is not None else torch.zeros(len(idx), dtype=torch.bool, device=x.device)
    rechecks = recheck(plan, esc, report, x[keep], y[keep], threat)
    return CheckOutcome(report, esc, rechecks, verdict(report.results, rechecks), y[keep].tolist())
