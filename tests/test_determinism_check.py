"""The determinism probe (attacks/model_checks.py) tells float rounding from randomness (issue 39):
logits drifting by 1e-6, or by TF32's ~1e-3, between two batchings are a deterministic model's;
a model drawing noise at inference is caught, whatever the scale of its logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advbench.attacks.model_checks import ROUNDING_TOLERANCE, determinism_check
from advbench.models.wrapper import RobustModel


class Jitter(nn.Module):
    """Logits of a fixed linear map, times `scale`, each call perturbed by `jitter` times the row's
    largest logit (from the global RNG), as rounding that depends on the batching perturbs them."""

    def __init__(self, jitter: float, scale: float = 1.0, input_noise: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.jitter, self.scale, self.input_noise = nn.Linear(12, 4), jitter, scale, input_noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.input_noise:
            x = x + self.input_noise * torch.randn_like(x)  # a model that draws noise at inference
        out = self.scale * self.linear(x)
        return out + self.jitter * out.abs().amax(1, keepdim=True) * torch.randn_like(out)


def model(net: nn.Module) -> RobustModel:
    return RobustModel(net, (1, 3, 4), 4, name="m")


def images() -> torch.Tensor:
    return torch.rand(40, 1, 3, 4, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("jitter", [0.0, 1e-6, 1e-3])
@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_float_rounding_is_not_randomness(jitter: float, scale: float) -> None:
    result = determinism_check(model(Jitter(jitter, scale)), images())
    assert result.passed and result.value == 0.0


@pytest.mark.parametrize("scale", [0.1, 1.0, 100.0])
def test_a_model_drawing_noise_is_caught(scale: float) -> None:
    result = determinism_check(model(Jitter(0.0, scale, input_noise=0.1)), images())
    assert not result.passed and result.value > 0.5
    assert "beyond float rounding" in result.why


def test_a_tie_flipped_by_rounding_is_not_randomness() -> None:
    """Two classes tied to 1e-7: rounding flips the prediction, not the verdict."""

    class Tied(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            base = torch.tensor([1.0, 1.0 + 1e-7, -3.0, -3.0]).expand(len(x), 4)
            return base + 1e-6 * torch.randn(len(x), 4)

    result = determinism_check(model(Tied()), images())
    assert result.passed


def test_drift_just_beyond_the_tolerance_counts() -> None:
    """The limit sits between TF32's drift and noise layers': a logit moving by twice the
    tolerance in every call is flagged."""

    class Shaky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((len(x), 4), 2.0) + 4 * ROUNDING_TOLERANCE * torch.rand(len(x), 4)

    assert not determinism_check(model(Shaky()), images()).passed
