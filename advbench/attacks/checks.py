"""Gradient-masking checks run beside an evaluation (AutoAttack's flags; Carlini et al. 2019, §5).

On a small subset: white-box accuracy at a very large eps must be ~0; a single-step attack
must not beat the iterative one; a black-box attack (Square) must not beat the white-box one
by a clear margin; doubling the steps must not drop accuracy much further; a deterministic
model must predict the same twice. Each check is a `CheckResult` (name, passed, value, limit,
why) that the engine can act on; every measured number is kept so the run can store it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from advbench.attacks.base import Attack
from advbench.attacks.gradient import FGSM, PGD, FGSMConfig, PGDConfig
from advbench.attacks.registry import ATTACKS
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    n: int
    numbers: dict[str, Any] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def warnings(self) -> list[str]:
        return [r.why for r in self.failed]


def large_eps(norm: Norm, dims: int) -> float:
    """A budget that lets any image become any other: half the pixel range per coordinate."""
    return {Norm.LINF: 0.5, Norm.L2: 0.5 * dims**0.5, Norm.L1: 0.5 * dims, Norm.L0: float(dims)}[norm]


def _accuracy(model: RobustModel, attack: Attack, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, seed: int, eot: int | None, bpda: bool) -> float:
    idx = torch.arange(len(x), device=x.device)
    return 1.0 - attack(attack.view(model, eot, bpda), x, y, threat, idx, seed).success.float().mean().item()


def gradient_masking_checks(
    model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, eot_draws: int | None = None, bpda: bool | None = None, seed: int = 0
) -> CheckReport:
    """Run the checks on the correctly classified samples among (x, y) at the run's largest eps."""
    use_bpda = True if bpda is None else bpda
    report = CheckReport(0)
    with torch.no_grad():
        first = model.predict(x)
        second = torch.cat([model.predict(x[i : i + 7]) for i in range(0, len(x), 7)])  # other batch sizes
    if not model.stochastic:
        changed = int((first != second).sum())
        report.results.append(CheckResult(
            "deterministic", changed == 0, changed / max(1, len(x)), 0.0,
            f"model {model.name} claims to be deterministic but {changed}/{len(x)} predictions changed between calls",
        ))
    keep = first == y
    x, y = x[keep], y[keep]
    report.n = len(x)
    if len(x) == 0 or threat.eps == 0 or threat.norm is Norm.L0:
        return report

    def acc(attack: Attack, at: ThreatModel = threat) -> float:
        return _accuracy(model, attack, x, y, at, seed, eot_draws, use_bpda)

    numbers, results = report.numbers, report.results
    numbers["pgd"] = pgd = acc(PGD(PGDConfig(early_stop=True)))
    numbers["pgd_double_steps"] = pgd2 = acc(PGD(PGDConfig(steps=40, rel_stepsize=0.0625)))
    if threat.norm is not Norm.L1:
        numbers["fgsm"] = fgsm = acc(FGSM(FGSMConfig()))
        results.append(CheckResult(
            "single-step-vs-iterative", not fgsm < pgd - MARGIN, fgsm, pgd - MARGIN,
            f"gradient masking? FGSM leaves {100 * fgsm:.1f}% < PGD-20 {100 * pgd:.1f}% at {threat.label()} (n={len(x)})",
        ))
    results.append(CheckResult(
        "more-steps", not pgd2 < pgd - MARGIN, pgd2, pgd - MARGIN,
        f"PGD has not converged: 40 steps leave {100 * pgd2:.1f}% vs {100 * pgd:.1f}% with 20 at {threat.label()}; use more steps or restarts",
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
        numbers["square_500"] = sq = acc(spec.cls(spec.config(**{**spec.defaults, "n_queries": 500})))
        white = min(pgd, pgd2)
        results.append(CheckResult(
            "black-box-vs-white-box", not sq < white - BLACK_BOX_MARGIN, sq, white - BLACK_BOX_MARGIN,
            f"gradient masking? black-box Square (500 queries) leaves {100 * sq:.1f}% < white-box PGD {100 * white:.1f}% at {threat.label()}",
        ))
    numbers["eps"] = threat.eps
    return report
