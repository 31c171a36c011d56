"""Gradient-masking checks run beside every evaluation (AutoAttack's flags; Carlini et al. 2019, §5).

On a small subset: white-box accuracy at a very large eps must be ~0; a single-step attack
must not beat the iterative one; a black-box attack (Square) must not beat the white-box one
by a clear margin; doubling the steps must not drop accuracy much further; a deterministic
model must predict the same twice. Each breach becomes a one-line warning; every measured
number is returned so the run can store it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from advbench.attacks.gradient import FGSM, PGD, FGSMConfig, PGDConfig
from advbench.attacks.registry import ATTACKS
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel

# A margin of 3 samples in 100: smaller gaps are within the run-to-run noise of random starts.
MARGIN = 0.03
BLACK_BOX_MARGIN = 0.05
LARGE_EPS_CEILING = 0.05


@dataclass
class CheckReport:
    n: int
    numbers: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def large_eps(norm: Norm, dims: int) -> float:
    """A budget that lets any image become any other: half the pixel range per coordinate."""
    return {Norm.LINF: 0.5, Norm.L2: 0.5 * dims**0.5, Norm.L1: 0.5 * dims, Norm.L0: float(dims)}[norm]


def _accuracy(model: RobustModel, attack: Any, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, seed: int) -> float:
    idx = torch.arange(len(x), device=x.device)
    return 1.0 - attack(model, x, y, threat, idx, seed).success.float().mean().item()


def gradient_masking_checks(
    model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, eot_draws: int | None = None, bpda: bool | None = None, seed: int = 0
) -> CheckReport:
    """Run the checks on the correctly classified samples among (x, y) at the run's largest eps."""
    report = CheckReport(0)
    with torch.no_grad():
        first = model.predict(x)
        second = torch.cat([model.predict(x[i : i + 7]) for i in range(0, len(x), 7)])  # other batch sizes
    if not model.stochastic and not torch.equal(first, second):
        report.warnings.append(
            f"model {model.name} claims to be deterministic but {int((first != second).sum())}/{len(x)} predictions changed between calls"
        )
    keep = first == y
    x, y = x[keep], y[keep]
    report.n = len(x)
    if len(x) == 0 or threat.eps == 0 or threat.norm is Norm.L0:
        return report

    def attack(cls: type, config: Any) -> Any:
        a = cls(config)
        a.adapt(model, eot_draws, bpda)
        return a

    numbers = report.numbers
    numbers["pgd"] = pgd = _accuracy(model, attack(PGD, PGDConfig(early_stop=True)), x, y, threat, seed)
    numbers["pgd_double_steps"] = pgd2 = _accuracy(model, attack(PGD, PGDConfig(steps=40, rel_stepsize=0.0625)), x, y, threat, seed)
    eps = threat.eps
    if threat.norm is not Norm.L1:
        numbers["fgsm"] = fgsm = _accuracy(model, attack(FGSM, FGSMConfig()), x, y, threat, seed)
        if fgsm < pgd - MARGIN:
            report.warnings.append(f"gradient masking? FGSM leaves {100 * fgsm:.1f}% < PGD-20 {100 * pgd:.1f}% at {threat.label()} (n={len(x)})")
    if pgd2 < pgd - MARGIN:
        report.warnings.append(f"PGD has not converged: 40 steps leave {100 * pgd2:.1f}% vs {100 * pgd:.1f}% with 20 at {threat.label()}; use more steps or restarts")
    big = ThreatModel(threat.norm, large_eps(threat.norm, x[0].numel()))
    numbers["large_eps"] = {"eps": big.eps, "accuracy": _accuracy(model, attack(PGD, PGDConfig(steps=50, rel_stepsize=0.1)), x, y, big, seed)}
    if numbers["large_eps"]["accuracy"] > LARGE_EPS_CEILING:
        report.warnings.append(
            f"gradient masking? PGD-50 at the huge budget {big.label()} still leaves {100 * numbers['large_eps']['accuracy']:.1f}% (should be ~0)"
        )
    if "square" in ATTACKS.names() and threat.norm.value in ATTACKS.get("square").norms:
        spec = ATTACKS.get("square")
        square = spec.cls(spec.config(**{**spec.defaults, "n_queries": 500}))
        numbers["square_500"] = sq = _accuracy(model, square, x, y, threat, seed)
        if sq < min(pgd, pgd2) - BLACK_BOX_MARGIN:
            report.warnings.append(
                f"gradient masking? black-box Square (500 queries) leaves {100 * sq:.1f}% < white-box PGD {100 * min(pgd, pgd2):.1f}% at {threat.label()}"
            )
    numbers["eps"] = eps
    return report
