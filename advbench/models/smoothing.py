"""Randomized-smoothing inference (smoothed-inference paper §3): M noisy copies, then a vote.

Modes: `prediction` (hard vote, eq. 8), `soft` (mean softmax, eq. 9), `weighted` (top-k
weights V(k) = 2^(1-k), eq. 11, or V_c: 1 for the top class, c for the second, eq. 12).
The output is log(scores), so argmax gives g(x). The hard and weighted votes have no useful
gradient; in attack mode the soft vote is their differentiable surrogate (BPDA).
A smoothed model is random at inference, so the wrapper reports it as `stochastic`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from advbench.models.bpda import BPDALayer
from advbench.models.randomness import DrawScope

MODES = ("prediction", "soft", "weighted")


def vote_scores(logits: torch.Tensor, mode: str, weight_c: float | None = None) -> torch.Tensor:
    """Aggregate (M, N, C) logits of M noisy copies into (N, C) scores that sum to 1 per sample."""
    m, _, c = logits.shape
    if mode == "soft":
        return logits.softmax(-1).mean(0)
    ranks = logits.argsort(-1, descending=True).argsort(-1)  # rank 0 = top class
    if mode == "prediction":
        votes = (ranks == 0).float()
    elif weight_c is None:
        votes = torch.pow(2.0, -ranks.float())  # V(k) = 2^(1-k) with k = rank + 1
    else:
        votes = (ranks == 0).float() + weight_c * (ranks == 1).float()
    scores = votes.sum(0)
    return scores / scores.sum(-1, keepdim=True)


class Smoothing(BPDALayer):
    """g(x) from M draws of base(x + N(0, sigma^2)); sigma in pixel units of [0,1] images.

    Under the wrapper the M noisy copies of each input row come from that row's key
    (`models.randomness`), so the vote is reproducible per sample. The bare layer, and any layer
    in training mode, draws from its own generator, seeded with `seed`.
    """

    draws: DrawScope | None = None  # set by the wrapper during a forward pass
    noise_scale: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        base: nn.Module,
        sigma: float = 0.25,
        samples: int = 8,
        mode: str = "prediction",
        weight_c: float | None = None,
        input_std: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"smoothing mode is one of {', '.join(MODES)}")
        if samples < 1 or sigma < 0:
            raise ValueError("smoothing needs samples >= 1 and sigma >= 0")
        self.base, self.sigma, self.samples, self.mode, self.weight_c = (
            base,
            sigma,
            samples,
            mode,
            weight_c,
        )
        # The wrapper normalizes before the net; noise of sigma in pixels is sigma/std after it.
        std = torch.tensor(list(input_std) if input_std is not None else [1.0], dtype=torch.float32)
        self.register_buffer("noise_scale", (sigma / std).view(1, 1, -1, 1, 1), persistent=False)
        self.generator: torch.Generator | None = (
            None  # the bare layer's; under the wrapper, `draws`
        )
        self.seed = seed

    @property
    def is_stochastic(self) -> bool:
        return self.sigma > 0

    @property
    def averaged_copies(self) -> int:
        """Noisy copies one forward pass averages: an EOT gradient of d draws averages d x M."""
        return self.samples if self.is_stochastic else 1

    def _noisy_logits(self, x: torch.Tensor) -> torch.Tensor:
        draws = None if self.training else self.draws
        if draws is None:  # the bare layer (or training): its own generator, seeded once
            if self.generator is None or self.generator.device != x.device:
                self.generator = torch.Generator(device=x.device).manual_seed(self.seed)
            noise = torch.randn(
                (self.samples, *x.shape), generator=self.generator, device=x.device, dtype=x.dtype
            )
        else:  # under the wrapper: each input row's M copies from its key, so batching changes nothing
            rows = draws.normal(self, len(x), (self.samples, *x.shape[1:])).to(x.dtype)
            noise = rows.transpose(0, 1)
        copies = x.unsqueeze(0) + noise * self.noise_scale.to(x.dtype)
        if draws is None:
            logits = self.base(copies.flatten(0, 1))
        else:  # noise layers inside the base see M x N rows, each copy keyed apart
            with draws.copies(self, self.samples):
                logits = self.base(copies.flatten(0, 1))
        return logits.view(self.samples, x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One set of noisy logits serves the exact vote and, in attack mode, its soft surrogate.
        logits = self._noisy_logits(x)
        exact = vote_scores(logits, self.mode, self.weight_c).clamp_min(1e-12).log()
        if not self.use_surrogate or self.mode == "soft":
            return exact
        smooth = vote_scores(logits, "soft").clamp_min(1e-12).log()
        return smooth + (exact - smooth).detach()

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, samples={self.samples}, mode={self.mode}, weight_c={self.weight_c}"
