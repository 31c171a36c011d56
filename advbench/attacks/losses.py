"""Losses and margins the attacks maximize, in one place (adv-lib's losses module).

Every function returns one value per sample. `margin` is positive while a sample is still
classified correctly; `attack_loss` is what an untargeted or targeted gradient attack ascends.
Scale-sensitive losses (CE) underflow on models that multiply their logits by a huge factor;
DLR is invariant to that scale (Croce & Hein 2020) and the CW margin to a shift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advbench.core.threat import Norm, batch_norm

LOSSES = ("ce", "cw", "dlr")


def margin_terms(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(true-class logit, largest other logit)."""
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return true, other


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True-class logit minus the best other logit: negative exactly where the sample is misclassified."""
    true, other = margin_terms(logits, y)
    return true - other


def targeted_margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """z_target - z_y: positive once the target class beats the label."""
    return logits.gather(1, target.view(-1, 1)).squeeze(1) - logits.gather(1, y.view(-1, 1)).squeeze(1)


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio (to maximize): the CW margin over the spread of the top three logits."""
    true, other = margin_terms(logits, y)
    top = logits.sort(1, descending=True).values
    return (other - true) / (top[:, 0] - top[:, 2] + 1e-12)


def attack_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss to maximize: `ce`, `cw` (margin) or `dlr`; with `target`, the targeted margin."""
    if target is not None:
        return targeted_margin(logits, y, target)
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "cw":
        return -margin(logits, y)
    return dlr(logits, y)


def loss_and_grad(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "ce",
    target: torch.Tensor | None = None, normalize_each: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the input gradient of the summed loss.

    The model decides how many forward passes one gradient costs: an EOT view
    (`advbench.attacks.wrappers`) averages over its `eot_draws` passes of a random model.
    `normalize_each` L2-normalizes each draw's gradient before averaging (the dissertation's EPGD).
    """
    draws = int(getattr(model, "eot_draws", 1))
    x = x.detach().requires_grad_(True)
    total, logits_sum = torch.zeros_like(x), None
    for _ in range(draws):
        logits = model(x)
        if logits.requires_grad:
            (grad,) = torch.autograd.grad(attack_loss(logits, y, loss, target).sum(), x, allow_unused=True)
            grad = torch.zeros_like(x) if grad is None else grad
        else:  # a non-differentiable model without surrogates (e.g. --no-bpda): no gradient signal
            grad = torch.zeros_like(x)
        if normalize_each:
            grad = grad / batch_norm(grad, Norm.L2).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))
        total += grad
        logits_sum = logits.detach() if logits_sum is None else logits_sum + logits.detach()
    assert logits_sum is not None
    return logits_sum / draws, total / draws
