import pytest
import torch
from torch import nn

from advbench.core.errors import UsageError
from advbench.models.bpda import Quantize
from advbench.models.noise import GaussianNoise
from advbench.models.polarize import TernaryQuantizer
from advbench.models.sparse_coding import DeadZoneQuantizer, TopT
from advbench.models.wrapper import RobustModel


def make(net: nn.Module, **kw) -> RobustModel:
    return RobustModel(net, (1, 4, 4), 2, **kw)


class Flat(nn.Module):
    def __init__(self, *pre: nn.Module) -> None:
        super().__init__()
        self.pre = nn.Sequential(*pre)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pre(x).flatten(1))


def test_normalization_lives_in_the_wrapper() -> None:
    net = Flat()
    model = make(net, mean=[0.5], std=[0.25])
    x = torch.rand(3, 1, 4, 4)
    torch.testing.assert_close(model(x), net((x - 0.5) / 0.25))


def test_always_eval_and_frozen() -> None:
    model = make(Flat(nn.BatchNorm2d(1), nn.Dropout(0.5)))
    model.train()
    assert not model.training and not model.net.training
    assert all(not p.requires_grad for p in model.parameters())
    x = torch.rand(4, 1, 4, 4)
    torch.testing.assert_close(model(x), model(x))


def test_stochastic_trait() -> None:
    assert not make(Flat(GaussianNoise(sigma=0.1))).stochastic  # training-time noise only
    noisy = make(Flat(GaussianNoise(sigma=0.1, inference_sigma=0.1)))
    assert noisy.stochastic
    x = torch.rand(4, 1, 4, 4)
    assert not torch.equal(noisy(x), noisy(x))


def test_attack_mode_switches_bpda_surrogates() -> None:
    model = make(Flat(Quantize(levels=2)))
    assert model.has_bpda
    x = torch.rand(5, 1, 4, 4, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) == 0.0  # rounding has no gradient
    x.grad = None
    with model.attack_mode():
        out_attack = model(x)
        out_attack.sum().backward()
    assert float(x.grad.abs().sum()) > 0.0  # identity surrogate passes gradients
    torch.testing.assert_close(out_attack.detach(), model(x).detach())  # forward values stay exact
    assert not model.bpda_layers[0].use_surrogate  # restored on exit


def test_attack_mode_restores_after_error() -> None:
    model = make(Flat(Quantize()))
    with pytest.raises(RuntimeError):
        with model.attack_mode():
            raise RuntimeError("boom")
    assert not model.bpda_layers[0].use_surrogate


def test_wrong_shape_is_a_usage_error() -> None:
    model = make(Flat())
    with pytest.raises(UsageError, match="1x4x4"):
        model.check_inputs(torch.rand(2, 3, 4, 4))


def test_bad_normalization_rejected() -> None:
    with pytest.raises(UsageError):
        make(Flat(), mean=[0.1, 0.2], std=[1.0, 1.0])


@pytest.mark.parametrize("layer", [
    TernaryQuantizer(threshold=0.3, steepness=10.0),
    DeadZoneQuantizer(torch.full((16,), 0.2), beta=3.0, eps=0.03, steepness=4.0),
    TopT(top_t=2, top_u=4),
], ids=["ternary-tanh", "dead-zone-sigmoid", "top-t-routing"])
def test_attack_mode_changes_gradients_never_outputs(layer: nn.Module) -> None:
    """BPDA replaces the backward pass only: a black-box attack (Square) querying a model in attack
    mode sees the exact model's outputs even where the surrogate is a smooth curve."""
    z = torch.randn(3, 16, 2, 2, requires_grad=True)
    exact = layer(z)
    layer.use_surrogate = True
    through_surrogate = layer(z)
    (grad,) = torch.autograd.grad(through_surrogate.sum(), z)
    assert torch.equal(through_surrogate, exact)
    assert float(grad.abs().sum()) > 0.0  # gradients do flow through the surrogate
