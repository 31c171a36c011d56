"""Additive Gaussian noise layers: training-time by default, optionally at inference too."""

from __future__ import annotations

import torch
from torch import nn

from advbench.models.randomness import DrawScope


class GaussianNoise(nn.Module):
    """x + N(0, sigma^2) while training; at inference only when `inference_sigma` > 0.

    A model with inference noise is random at inference, so the wrapper reports it as
    `stochastic` and attacks switch to EOT. Under the wrapper its inference noise is drawn per
    input row (`models.randomness`); training noise comes from torch's RNG.
    """

    draws: DrawScope | None = None  # set by the wrapper during a forward pass

    def __init__(self, sigma: float = 0.0, inference_sigma: float = 0.0) -> None:
        super().__init__()
        self.sigma, self.inference_sigma = sigma, inference_sigma

    @property
    def is_stochastic(self) -> bool:
        return self.inference_sigma > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.sigma if self.training else self.inference_sigma
        if sigma <= 0:
            return x
        if self.training or self.draws is None:
            return x + sigma * torch.randn_like(x)
        return x + sigma * self.draws.normal(self, len(x), tuple(x.shape[1:])).to(x.dtype)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, inference_sigma={self.inference_sigma}"
