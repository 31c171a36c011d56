"""Models that mask gradients on purpose, built the way the papers' critics build them: the
default evaluation must see through each (robust accuracy near an honest reference computed
here with BPDA / EOT / the unmasked function), must never call such an evaluation `reliable`,
and must refuse a model whose outputs are NaN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from advbench.attacks import build_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import ModelOutputError
from advbench.core.threat import ThreatModel
from advbench.engine import EvalPlan, Runtime, evaluate_plan
from advbench.models.wrapper import RobustModel

EPS = 0.1
N = 64
TOLERANCE = 0.06  # of robust accuracy (n = 64: about four samples)


class Quantized(nn.Module):
    """Input rounded to 5 levels: zero gradients almost everywhere."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 4) / 4)


class StraightThrough(Quantized):
    """The honest reference: the same function, gradients through the identity (BPDA)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x * 4) / 4
        return self.net(x + (q - x).detach())


class Scaled(nn.Module):
    def __init__(self, net: nn.Module, factor: float = 1e4) -> None:
        super().__init__()
        self.net, self.factor = net, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.factor


class HiddenNoise(nn.Module):
    """Gaussian input noise at inference that the model does not declare."""

    def __init__(self, net: nn.Module, sigma: float = 0.3) -> None:
        super().__init__()
        self.net, self.sigma = net, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + self.sigma * torch.randn_like(x))


class Softmaxed(Scaled):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


class Detached(Scaled):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.detach())


class NaNs(Scaled):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * float("nan")


@pytest.fixture(scope="module")
def digits(digits_model, digits_data):
    net = digits_model.net
    wrap = lambda module, name: RobustModel(module, digits_model.input_shape, 10, digits_model.mean.flatten().tolist(),  # noqa: E731
                                            digits_model.std.flatten().tolist(), name=name)
    return wrap, net, digits_data[0][:N], digits_data[1][:N]


def robust(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *specs: str, eot: int = 1) -> float:
    """Worst case over `specs` (each on the samples the earlier ones left), as a reference."""
    alive = model.predict(x) == y if hasattr(model, "predict") else torch.ones(len(x), dtype=torch.bool)
    for spec in specs:
        attack = build_attack(spec)[1]
        view = AttackedModel(model, eot) if isinstance(model, RobustModel) else model
        rows = alive.nonzero().view(-1)
        if len(rows):
            alive[rows[attack(view, x[rows], y[rows], ThreatModel("linf", EPS), rows).success]] = False
    return float(alive.float().mean())


def evaluate(model: RobustModel, x: torch.Tensor, y: torch.Tensor, tmp_path: Path, name: str):
    plan = EvalPlan.from_objects(model, x, y, attacks=("pgd",), eps=(EPS,), checks=True, check_n=32, device="cpu")
    return evaluate_plan(plan, Runtime(db=tmp_path / f"{name}.sqlite"))


@pytest.mark.parametrize("kind", ["quantized", "scaled", "softmax", "detached"])
def test_masked_models_are_seen_through_and_never_called_reliable(kind: str, digits, tmp_path: Path) -> None:
    wrap, net, x, y = digits
    masked = wrap({"quantized": Quantized, "scaled": Scaled, "softmax": Softmaxed, "detached": Detached}[kind](net), kind)
    if kind == "quantized":  # the same function with gradients through the identity (BPDA)
        reference = robust(wrap(StraightThrough(net), "bpda"), x, y, "pgd", "square:n_queries=2000")
    else:  # the unmasked network
        reference = robust(wrap(net, "honest"), x, y, "pgd", "pgd:loss=cw")
    plain = robust(masked, x, y, "pgd")
    outcome = evaluate(masked, x, y, tmp_path, kind)
    got = outcome.summary.per_eps[0].worst_case
    print(f"{kind}: plain PGD {plain:.3f}, advbench {got:.3f} ({outcome.verdict}), honest reference {reference:.3f}")
    assert outcome.verdict in ("escalated", "unreliable")
    assert outcome.escalation and outcome.escalation["failed"]
    assert got <= reference + TOLERANCE
    if kind != "softmax":  # softmax outputs mask nothing for CE-PGD; the finding is the flag itself
        assert plain > reference + 0.2  # the masking is real: plain PGD overstates robustness


def test_undeclared_randomness_is_treated_as_random(digits, tmp_path: Path) -> None:
    wrap, net, x, y = digits
    torch.manual_seed(0)
    noisy = wrap(HiddenNoise(net), "hidden-noise")
    assert not noisy.stochastic  # it does not say so
    outcome = evaluate(noisy, x, y, tmp_path, "noise")
    assert "deterministic" in outcome.escalation["failed"] and outcome.verdict in ("escalated", "unreliable")
    assert outcome.adaptations["pgd"]["eot_draws"] == 20 and outcome.adaptations["pgd"]["treated_as_random"]
    torch.manual_seed(1)
    reference = robust(noisy, x, y, "pgd", eot=20)
    assert outcome.summary.per_eps[0].worst_case <= reference + TOLERANCE


def test_nan_outputs_are_an_error_not_a_result(digits, tmp_path: Path) -> None:
    wrap, net, x, y = digits
    with pytest.raises(ModelOutputError, match="NaN"):
        evaluate(wrap(NaNs(net), "nans"), x, y, tmp_path, "nan")
    assert not (tmp_path / "nan.sqlite").exists() or not __import__("sqlite3").connect(tmp_path / "nan.sqlite").execute("SELECT count(*) FROM runs").fetchone()[0]


def test_honest_model_is_reliable(digits, tmp_path: Path) -> None:
    wrap, net, x, y = digits
    outcome = evaluate(wrap(net, "honest"), x, y, tmp_path, "honest")
    assert outcome.verdict == "reliable", [(c.name, round(c.value, 3), round(c.limit, 3)) for c in outcome.checks if not c.passed]
