"""Non-differentiable layers with a differentiable surrogate (BPDA, Athalye et al. 2018).

Outside attack mode the layer computes its exact function. In attack mode the forward value
is still exact but gradients flow through the surrogate: g(x) + (f(x) - g(x)).detach().
"""

from __future__ import annotations

import torch
from torch import nn


class BPDALayer(nn.Module):
    """Base for layers whose exact function has no useful gradient."""

    has_surrogate = True

    def __init__(self) -> None:
        super().__init__()
        self.use_surrogate = False

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable approximation; identity by default (the straight-through estimator)."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exact = self.exact(x)
        if (
            not self.use_surrogate or not torch.is_grad_enabled()
        ):  # no gradient asked: the surrogate would only cost time
            return exact
        smooth = self.surrogate(x)
        return smooth + (exact - smooth).detach()


class Quantize(BPDALayer):
    """Rounds to `levels` evenly spaced values in [0,1] (bit-depth reduction); identity surrogate."""

    def __init__(self, levels: int = 2) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError("Quantize needs at least 2 levels")
        self.levels = levels

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.levels - 1
        return torch.round(x.clamp(0, 1) * steps) / steps

    def extra_repr(self) -> str:
        return f"levels={self.levels}"
