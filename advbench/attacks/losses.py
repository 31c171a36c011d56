"""Losses and margins the attacks maximize, in one place (adv-lib's losses module).

Every function returns one value per sample. `margin` is positive while a sample is still
classified correctly; `attack_loss` is what an untargeted or targeted gradient attack ascends.
Scale-sensitive losses (CE) underflow on models that multiply their logits by a huge factor;
DLR is invariant to that scale (Croce & Hein 2020) and the CW margin to a shift.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from advbench.core.seeding import row_keys
from advbench.core.threat import Norm, batch_norm

EOT_ROWS = 2048  # inputs per forward pass of EOT copies (copies x batch rows), to bound memory

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


class EOTStep(NamedTuple):
    """One gradient's worth of forward passes: logits, objective and gradient averaged over the
    draws, and per sample how many draws misclassified it (what early stopping reads)."""

    logits: torch.Tensor
    values: torch.Tensor
    grad: torch.Tensor
    wrong_draws: torch.Tensor


def value_and_grad(
    model: torch.nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    normalize_each: bool = False,
    labels: torch.Tensor | None = None,
) -> EOTStep:
    """(logits, per-sample objective, its input gradient), each averaged over the forward passes
    one gradient costs on `model`: an EOT view (`advbench.attacks.wrappers`) takes `eot_draws`
    passes of a random model; and, given `labels`, how many of those passes misclassified each
    sample (zeros otherwise). `normalize_each` L2-normalizes each draw's gradient before
    averaging (the dissertation's EPGD). A model without gradient signal (no surrogate, e.g.
    --no-bpda) gives zero gradients.

    The draws run as copies of the batch in as few forward passes as `EOT_ROWS` allows: each
    copy draws the noise the same call in turn would have drawn (`RobustModel.forward_keyed`)."""
    draws = int(getattr(model, "eot_draws", 1))
    n = len(x)
    if n == 0:
        empty = x.new_zeros(0)
        return EOTStep(x.new_zeros(0, 0), empty, torch.zeros_like(x), empty.long())
    forward_keyed = getattr(model, "forward_keyed", None)
    keyed = draws > 1 and forward_keyed is not None
    keys = row_keys(x) if keyed else None
    per_pass = max(1, EOT_ROWS // max(1, n)) if keyed else 1
    grad_sum, value_sum = torch.zeros_like(x), x.new_zeros(n)
    logits_sum: torch.Tensor | None = None
    wrong = torch.zeros(n, dtype=torch.int64, device=x.device)
    done = 0
    while done < draws:
        k = min(per_pass, draws - done)
        copies = x.detach().repeat(k, *([1] * (x.dim() - 1))).requires_grad_(True)
        with torch.enable_grad():
            if keys is None or forward_keyed is None:
                logits = model(copies)
            else:
                logits = forward_keyed(copies, keys.repeat(k))
            values = torch.cat([objective(part) for part in logits.split(n)])
            grad = None
            if values.requires_grad:
                (grad,) = torch.autograd.grad(values.sum(), copies, allow_unused=True)
        grad = torch.zeros_like(copies) if grad is None else grad
        if normalize_each:
            grad = grad / batch_norm(grad, Norm.L2).clamp_min(1e-12).view(
                -1, *([1] * (grad.dim() - 1))
            )
        grad_sum += grad.view(k, *x.shape).sum(0)
        value_sum += values.detach().view(k, n).sum(0)
        logits = logits.detach()
        summed = logits.view(k, n, -1).sum(0)
        logits_sum = summed if logits_sum is None else logits_sum + summed
        if labels is not None:
            wrong += (logits.argmax(1).view(k, n) != labels).sum(0)
        done += k
    assert logits_sum is not None
    return EOTStep(logits_sum / draws, value_sum / draws, grad_sum / draws, wrong)


def loss_and_grad(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "ce",
    target: torch.Tensor | None = None,
    normalize_each: bool = False,
) -> EOTStep:
    """The EOT step of `attack_loss` (see `value_and_grad`), with the draws that misclassified."""
    return value_and_grad(
        model, x, lambda z: attack_loss(z, y, loss, target), normalize_each, labels=y
    )
