"""A random model with a known P(correct) at every input, for testing votes.

A fixed linear classifier on 1x8x8 inputs, whose prediction a noise layer replaces by a uniformly
drawn wrong class with probability q(x) = x[0, 0, 0] (the first pixel). So at any input
P(correct) = 1 - q(x) where the linear classifier is right, and q(x) / 9 where it is wrong.
"""

from __future__ import annotations

import torch
from torch import nn

from advbench.models.wrapper import RobustModel

CLASSES = 10
SHAPE = (1, 8, 8)


class Flip(nn.Module):
    """With probability q (per row), move the winning logit's lead to a uniformly drawn other class."""

    is_stochastic = True
    draws = None  # set by the wrapper during a forward pass (models.randomness)

    def forward(self, logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        assert self.draws is not None, "the flip model is only used through RobustModel"
        u = self.draws.uniform(self, len(logits), (2,))
        base = logits.argmax(1)
        other = (base + 1 + (u[:, 1] * (CLASSES - 1)).long().clamp_max(CLASSES - 2)) % CLASSES
        flip = (u[:, 0] < q).float().view(-1, 1)
        bump = torch.nn.functional.one_hot(other, CLASSES) - torch.nn.functional.one_hot(
            base, CLASSES
        )
        return logits + 100.0 * flip * bump


class FlipNet(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(64, CLASSES)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(CLASSES, 64, generator=g))
            self.linear.bias.zero_()
        self.flip = Flip()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        return self.flip(self.linear(z), z[:, 0])


def flip_model(seed: int = 0) -> RobustModel:
    return RobustModel(FlipNet(seed), SHAPE, CLASSES, name="flip")


@torch.no_grad()
def base_prediction(model: RobustModel, x: torch.Tensor) -> torch.Tensor:
    return model.net.linear(x.flatten(1)).argmax(1)


def true_p_correct(model: RobustModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The exact P(correct) of one forward pass at each input."""
    q = x.flatten(1)[:, 0]
    right = base_prediction(model, x) == y
    return torch.where(right, 1 - q, q / (CLASSES - 1))


def inputs_with_p(
    model: RobustModel, p: torch.Tensor, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs whose P(correct) is `p` (labels: the linear classifier's prediction)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(len(p), *SHAPE, generator=g)
    x.view(len(p), -1)[:, 0] = 1 - p
    return x, base_prediction(model, x)
