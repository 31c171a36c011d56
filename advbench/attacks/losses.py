"""Losses and margins the attacks maximize, in one place (adv-lib's losses module).

Every function returns one value per sample. `margin` is positive while a sample is still
classified correctly; `attack_loss` is what an untargeted or targeted gradient attack ascends.
Scale-sensitive losses (CE) underflow on models that multiply their logits by a huge factor;
DLR is invariant to that scale (Croce & Hein 2020) and the CW margin to a shift.
"""

from __future__ import annotations

from typing import Callable

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
    return logits.gather(1, target.view(-1, 1)).squeeze(1) - logits.gather(
        1, y.view(-1, 1)
    ).squeeze(1)


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio (to maximize): the CW margin over the spread of the top three logits."""
    true, other = margin_terms(logits, y)
    top = logits.sort(1, descending=True).values
    return (other - true) / (top[:, 0] - top[:, 2] + 1e-12)


def attack_loss(
    logits: torch.Tensor, y: torch.Tensor, loss: str, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample loss to maximize: `ce`, `cw` (margin) or `dlr`; with `target`, the targeted margin."""
    if target is not None:
        return targeted_margin(logits, y, target)
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "cw":
        return -margin(logits, y)
    return dlr(logits, y)


def targeted_dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR (to maximize): (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2), scale-invariant like DLR."""
    top = logits.sort(1, descending=True).values
    return targeted_margin(logits, y, target) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def value_and_grad(
    model: torch.nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    normalize_each: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, per-sample objective, its input gradient), each averaged over the forward passes
    one gradient costs on `model`: an EOT view (`advbench.attacks.wrappers`) takes `eot_draws`
    passes of a random model. `normalize_each` L2-normalizes each draw's gradient before
    averaging (the dissertation's EPGD). A model without gradient signal (no surrogate, e.g.
    --no-bpda) gives zero gradients."""
    draws = int(getattr(model, "eot_draws", 1))
    x = x.detach().requires_grad_(True)
    grad_sum, value_sum, logits_sum = torch.zeros_like(x), x.new_zeros(len(x)), None
    for _ in range(draws):
        with torch.enable_grad():
            logits = model(x)
            values = objective(logits)
            grad = None
            if values.requires_grad:
                (grad,) = torch.autograd.grad(values.sum(), x, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        if normalize_each:
            grad = grad / batch_norm(grad, Norm.L2).clamp_min(1e-12).view(
                -1, *([1] * (grad.dim() - 1))
            )
        grad_sum += grad
        value_sum += values.detach()
        logits_sum = logits.detach() if logits_sum is None else logits_sum + logits.detach()
    assert logits_sum is not None
    return logits_sum / draws, value_sum / draws, grad_sum / draws


def loss_and_grad(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "ce",
    target: torch.Tensor | None = None,
    normalize_each: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the input gradient of the summed `attack_loss` (see `value_and_grad`)."""
    logits, _, grad = value_and_grad(
        model, x, lambda z: attack_loss(z, y, loss, target), normalize_each
    )
    return logits, grad
