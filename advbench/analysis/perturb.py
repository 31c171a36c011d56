"""Perturbations the analyses share: adversarial examples from a registered attack, seeded noise."""

from __future__ import annotations

import torch

from advbench.analysis.common import batches
from advbench.attacks import build_attack
from advbench.core.errors import UsageError
from advbench.core.seeding import sample_normal
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel


def adversarial_examples(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str = "pgd",
    norm: str = "linf",
    eps: float = 0.1,
    batch_size: int = 128,
    seed: int = 0,
    indices: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(x_adv, adversarial predictions, attack label) for every sample, in batches.

    The attack adapts to the model as in an evaluation (EOT on random models, BPDA where
    the model has surrogates).
    """
    if norm not in {n.value for n in Norm}:
        raise UsageError(f"unknown norm {norm!r}; use {', '.join(n.value for n in Norm)}")
    label, instance, _ = build_attack(attack)
    threat = ThreatModel(Norm(norm), eps)
    view = instance.view(model)  # EOT on random models, BPDA where there are surrogates
    if indices is None:
        indices = torch.arange(len(x))
    if eps == 0:
        return x.clone(), view.predict(x), label
    parts_x, parts_pred = [], []
    for part in batches(len(x), batch_size):
        result = instance(view, x[part], y[part], threat, indices[part].to(x.device), seed)
        parts_x.append(result.x_adv.detach())
        parts_pred.append(result.adv_pred)
    return torch.cat(parts_x), torch.cat(parts_pred), label


def gaussian_noise(
    x: torch.Tensor, sigma: float, seed: int, indices: torch.Tensor | None = None, stream: int = 0
) -> torch.Tensor:
    """sigma * N(0, 1) noise shaped like x, a function of (seed, sample index, stream) only."""
    if indices is None:
        indices = torch.arange(len(x))
    return sigma * sample_normal(seed, indices.to(x.device), tuple(x.shape[1:]), stream, x.device)
