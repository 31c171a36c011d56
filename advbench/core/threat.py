"""Threat models: a norm and a budget, with the projection helpers attacks share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch

from advbench.core.errors import UsageError


class Norm(str, Enum):
    LINF = "linf"
    L2 = "l2"


@dataclass(frozen=True)
class ThreatModel:
    """An eps-ball around the clean input, intersected with the [0,1] box."""

    norm: Norm
    eps: float
    targeted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", Norm(self.norm))
        if not math.isfinite(self.eps) or self.eps < 0:
            raise UsageError(f"eps must be a finite number >= 0, got {self.eps}")
        if self.norm is Norm.LINF and self.eps > 1:
            raise UsageError(f"Linf eps {self.eps} exceeds 1, the whole [0,1] pixel range")

    def distance(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Per-sample perturbation norm."""
        return batch_norm(x_adv - x, self.norm)

    def project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Project x_adv onto the eps-ball around x, then into [0,1]."""
        delta = x_adv - x
        if self.norm is Norm.LINF:
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = batch_norm(delta, Norm.L2).clamp_min(1e-12)
            factor = (self.eps / norms).clamp(max=1.0)
            delta = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
        return (x + delta).clamp(0.0, 1.0)

    def label(self) -> str:
        return f"{self.norm.value}:{self.eps:g}"


def batch_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    if norm is Norm.LINF:
        return flat.abs().amax(dim=1)
    return flat.norm(p=2, dim=1)


def parse_norm(text: str) -> Norm:
    try:
        return Norm(text.lower())
    except ValueError:
        raise UsageError(f"unknown norm {text!r}; use one of: {', '.join(n.value for n in Norm)}") from None
