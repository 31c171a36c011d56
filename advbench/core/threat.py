"""Threat models: a norm and a budget, with the projection helpers attacks share.

torch is imported inside the tensor helpers only, so the CLI and the reports can name norms and
parse threats without loading it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from advbench.core.errors import UsageError

if TYPE_CHECKING:
    import torch


class Norm(str, Enum):
    """The distance a threat model bounds: `linf`, `l2`, `l1` or `l0`."""

    LINF = "linf"
    L2 = "l2"
    L1 = "l1"
    L0 = "l0"  # number of changed input elements (pixels x channels)


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
        if self.norm is Norm.L0 and self.eps != int(self.eps):
            raise UsageError(
                f"L0 eps counts changed input elements and must be a whole number, got {self.eps}"
            )

    def diameter(self, dims: int) -> float:
        """The largest distance between two inputs of `dims` values in [0,1] under this norm:
        a budget above it allows every input, so a robust accuracy at it means nothing."""
        if dims < 1:
            raise UsageError(f"inputs have at least one value, got dimension {dims}")
        return {
            Norm.LINF: 1.0,
            Norm.L2: math.sqrt(dims),
            Norm.L1: float(dims),
            Norm.L0: float(dims),
        }[self.norm]

    def check_for(self, dims: int) -> None:
        """A UsageError when eps exceeds the diameter of the [0,1] box of `dims` values
        (Linf 1, L2 sqrt(dims), L1 and L0 dims): such a budget is a typo, not a threat model."""
        limit = self.diameter(dims)
        if self.eps > limit:
            raise UsageError(
                f"{self.norm.value.upper()} eps {self.eps:g} exceeds {limit:g}, the largest {self.norm.value} distance between two"
                f" inputs of {dims} values in [0,1]"
            )

    def distance(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Per-sample perturbation norm."""
        return batch_norm(x_adv - x, self.norm)

    def project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Project x_adv onto the eps-ball around x, then into [0,1]."""
        import torch

        delta = x_adv - x
        if self.norm is Norm.LINF:
            delta = delta.clamp(-self.eps, self.eps)
        elif self.norm is Norm.L2:
            norms = batch_norm(delta, Norm.L2).clamp_min(1e-12)
            factor = (self.eps / norms).clamp(max=1.0)
            delta = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
        elif self.norm is Norm.L1:
            delta = project_l1(delta, self.eps)
        else:
            delta = keep_largest(delta, int(self.eps))
        # Clamping into [0,1] only shrinks |delta| element-wise, so every norm ball stays satisfied.
        projected = (x + delta).clamp(0.0, 1.0)
        # Points already inside the ball and the box are returned bit for bit: x + (x_adv - x)
        # is not always x_adv in floating point, and a no-op should be one.
        inside = (
            (batch_norm(x_adv - x, self.norm) <= self.eps)
            & (x_adv.flatten(1).amin(1) >= 0)
            & (x_adv.flatten(1).amax(1) <= 1)
        )
        return torch.where(inside.view(-1, *([1] * (x.dim() - 1))), x_adv, projected)

    def label(self) -> str:
        return f"{self.norm.value}:{self.eps:g}"


def batch_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    if norm is Norm.LINF:
        return flat.abs().amax(dim=1)
    if norm is Norm.L2:
        return flat.norm(p=2, dim=1)
    if norm is Norm.L1:
        return flat.abs().sum(dim=1)
    return (flat != 0).sum(dim=1).to(delta.dtype)


def project_l1(delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each sample onto the L1 ball of radius eps (Duchi et al. 2008),
    batched; `eps` is one radius or one per sample."""
    import torch

    flat = delta.flatten(1)
    mag = flat.abs()
    radius = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).reshape(-1, 1)
    inside = mag.sum(dim=1, keepdim=True) <= radius
    if bool(inside.all()):
        return delta
    srt = mag.sort(dim=1, descending=True).values
    cums = srt.cumsum(dim=1) - radius
    ks = torch.arange(1, flat.shape[1] + 1, device=delta.device, dtype=delta.dtype)
    rho = ((srt - cums / ks) > 0).sum(dim=1, keepdim=True).clamp_min(1)
    theta = cums.gather(1, rho - 1) / rho.to(delta.dtype)
    projected = flat.sign() * (mag - theta).clamp_min(0)
    return torch.where(inside, flat, projected).view_as(delta)


def keep_largest(delta: torch.Tensor, k: int) -> torch.Tensor:
    """The L0 projection: keep each sample's k largest-magnitude entries, zero the rest."""
    import torch

    flat = delta.flatten(1)
    if k >= flat.shape[1]:
        return delta
    if k <= 0:
        return torch.zeros_like(delta)
    idx = flat.abs().topk(k, dim=1).indices
    return torch.zeros_like(flat).scatter(1, idx, flat.gather(1, idx)).view_as(delta)


def parse_norm(text: str) -> Norm:
    try:
        return Norm(text.lower())
    except ValueError:
        raise UsageError(
            f"unknown norm {text!r}; use one of: {', '.join(n.value for n in Norm)}"
        ) from None


def parse_threat(text: str) -> ThreatModel:
    """'NORM:EPS' (e.g. 'linf:0.1', 'l2:0.5') as an untargeted threat model; a UsageError otherwise."""
    norm_text, sep, eps_text = text.strip().partition(":")
    how = f"threat {text!r}: write NORM:EPS with NORM one of {', '.join(n.value for n in Norm)} and EPS a finite number >= 0, e.g. linf:0.1"
    try:
        norm, eps = Norm(norm_text.strip().lower()), float(eps_text)
    except ValueError:
        raise UsageError(how) from None
    if not sep or not math.isfinite(eps) or eps < 0:
        raise UsageError(how)
    return ThreatModel(norm, eps)
