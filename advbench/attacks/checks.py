"""Gradient-masking checks run beside an evaluation (AutoAttack's flags; Carlini et al. 2019, §5).

On a small subset: white-box accuracy at a very large eps must be ~0; a single-step attack
must not beat the iterative one; a black-box attack (Square) must not beat the white-box one
by a clear margin; doubling the steps must not drop accuracy much further; the scale-invariant
DLR loss must not beat cross-entropy. (Checks on the model itself: `model_checks`.) Each check is a `CheckResult` (name, passed, value, limit,
why) that the engine can act on; every measured number is kept so the run can store it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from advbench.attacks.base import Attack
from advbench.attacks.gradient import FGSM, PGD, FGSMConfig, PGDConfig
from advbench.attacks.registry import ATTACKS
from advbench.attacks.wrappers import AttackedModel
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel

# A margin of 3 samples in 100: smaller gaps are within the run-to-run noise of random starts.
MARGIN = 0.03
BLACK_BOX_MARGIN = 0.05
LARGE_EPS_CEILING = 0.05


@dataclass(frozen=True)
class CheckResult:
    """One check: `value` compared with `limit`; `why` says what a failure means."""

    name: str
    passed: bool
    value: float
    limit: float
    why: str
    at_least: bool = False  # passes when value >= limit (a probe must not beat the evaluation); else value <= limit
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    n: int
    numbers: dict[str, Any] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)
    # Per probe attack at the run's threat: which checked samples it broke. Worst case means worst
    # case, so the evaluation counts these too. `indices` are the checked samples' dataset indices.
    probes: dict[str, torch.Tensor] = field(default_factory=dict)
    indices: torch.Tensor | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def warnings(self) -> list[str]:
        return [r.why for r in self.failed]


def large_eps(norm: Norm, dims: int) -> float:
    """A budget that lets any image become any other: half the pixel range per coordinate."""
    return {Norm.LINF: 0.5, Norm.L2: 0.5 * dims**0.5, Norm.L1: 0.5 * dims, Norm.L0: float(dims)}[norm]


def gradient_masking_checks(
    model: RobustModel | AttackedModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, eot_draws: int | None = None,
    bpda: bool | None = None, seed: int = 0, indices: torch.Tensor | None = None,
) -> CheckReport:
    """Run the probe attacks on the correctly classified samples among (x, y) at the run's largest eps.

    `model` may be a view (`AttackedModel`) fixing how the probes see it; else each probe gets the
    adaptive default with `eot_draws` and `bpda`. `indices` name the samples (default 0..N-1).
    """
    use_bpda = True if bpda is None else bpda
    report = CheckReport(0)
    idx = torch.arange(len(x), device=x.device) if indices is None else indices.to(x.device)
    judge = model.verdict if isinstance(model, AttackedModel) else model.predict
    keep = judge(x) == y
    x, y, idx = x[keep], y[keep], idx[keep]
    report.n, report.indices = len(x), idx.cpu()
    if len(x) == 0 or threat.eps == 0 or threat.norm is Norm.L0:
        return report

    def acc(attack: Attack, at: ThreatModel = threat, label: str | None = None) -> float:
        success = attack(attack.view(model, eot_draws, use_bpda), x, y, at, idx, seed).success
        if label is not None:
            report.probes[label] = success.cpu()
        return 1.0 - success.float().mean().item()

    numbers, results = report.numbers, report.results
    numbers["pgd"] = pgd = acc(PGD(PGDConfig(early_stop=True)), label="check:pgd")
    numbers["pgd_double_steps"] = pgd2 = acc(PGD(PGDConfig(steps=40, rel_stepsize=0.0625)), label="check:pgd-40")
    numbers["pgd_dlr"] = dlr = acc(PGD(PGDConfig(loss="dlr")), label="check:pgd-dlr")
    results.append(CheckResult(
        "scale-invariant-loss", not dlr < pgd - MARGIN, dlr, pgd - MARGIN,
        f"the scale-invariant DLR loss leaves {100 * dlr:.1f}% < cross-entropy's {100 * pgd:.1f}% at {threat.label()}: "
        "cross-entropy is saturated or mis-scaled here; margin and DLR losses are added",
        at_least=True,
    ))
    if threat.norm is not Norm.L1:
        numbers["fgsm"] = fgsm = acc(FGSM(FGSMConfig()), label="check:fgsm")
        results.append(CheckResult(
            "single-step-vs-iterative", not fgsm < pgd - MARGIN, fgsm, pgd - MARGIN,
            f"gradient masking? FGSM leaves {100 * fgsm:.1f}% < PGD-20 {100 * pgd:.1f}% at {threat.label()} (n={len(x)})",
            at_least=True,
        ))
    results.append(CheckResult(
        "more-steps", not pgd2 < pgd - MARGIN, pgd2, pgd - MARGIN,
        f"PGD has not converged: 40 steps leave {100 * pgd2:.1f}% vs {100 * pgd:.1f}% with 20 at {threat.label()}; use more steps or restarts",
        at_least=True,
    ))
    big = ThreatModel(threat.norm, large_eps(threat.norm, x[0].numel()))
    large = acc(PGD(PGDConfig(steps=50, rel_stepsize=0.1)), big)
    numbers["large_eps"] = {"eps": big.eps, "accuracy": large}
    results.append(CheckResult(
        "large-eps", large <= LARGE_EPS_CEILING, large, LARGE_EPS_CEILING,
        f"gradient masking? PGD-50 at the huge budget {big.label()} still leaves {100 * large:.1f}% (should be ~0)",
    ))
    if "square" in ATTACKS.names() and threat.norm.value in ATTACKS.get("square").norms:
        spec = ATTACKS.get("square")
        numbers["square_500"] = sq = acc(spec.cls(spec.config(**{**spec.defaults, "n_queries": 500})), label="check:square-500")
        white = min(pgd, pgd2)
        results.append(CheckResult(
            "black-box-vs-white-box", not sq < white - BLACK_BOX_MARGIN, sq, white - BLACK_BOX_MARGIN,
            f"gradient masking? black-box Square (500 queries) leaves {100 * sq:.1f}% < white-box PGD {100 * white:.1f}% at {threat.label()}",
            at_least=True,
        ))
    numbers["eps"] = threat.eps
    return report
