"""Checks on the model itself, before any attack: are its outputs usable logits, is it as
deterministic as it claims, do its input gradients carry signal?

A model whose outputs are NaN, infinite or of the wrong shape is an error (`ModelOutputError`,
exit 2), never a result. The other findings are `CheckResult`s the evaluation acts on:
probabilities instead of logits -> attack their logarithm; undeclared randomness -> treat the
model as random (EOT); zero or non-finite gradients -> gradient-free attacks.
"""

from __future__ import annotations

import torch

from advbench.attacks.checks import CheckResult
from advbench.attacks.losses import loss_and_grad
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import ModelOutputError
from advbench.models.wrapper import RobustModel

PROBABILITY_TOLERANCE = 1e-3  # rows summing to 1 within this, all entries >= 0: probabilities
DEAD_GRADIENT_LIMIT = 0.05  # share of samples whose input gradient is zero or not finite


def validate_outputs(model: torch.nn.Module, out: object, n: int, num_classes: int) -> torch.Tensor:
    """`out` as logits of `n` images over `num_classes` classes, or a `ModelOutputError` naming the model."""
    name = getattr(model, "name", type(model).__name__)
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"model {name} returns a {type(out).__name__}, not a tensor of {n} x {num_classes} logits")
    if out.dim() != 2 or out.shape != (n, num_classes):
        raise ModelOutputError(
            f"model {name} returns outputs of shape {tuple(out.shape)} for {n} images; expected {n} x {num_classes} logits (one per class of the dataset)"
        )
    bad = int((~torch.isfinite(out)).any(1).sum())
    if bad:
        raise ModelOutputError(f"model {name} returns NaN or infinite outputs for {bad} of {n} images; a broken model has no robust accuracy")
    return out


def output_checks(model: RobustModel, x: torch.Tensor, num_classes: int) -> CheckResult:
    """Raise on unusable outputs; return whether they look like probabilities rather than logits."""
    with torch.no_grad():
        out = validate_outputs(model, model(x), len(x), num_classes)
    if out.dim() != 2 or out.shape != (len(x), num_classes):
        raise ModelOutputError(
            f"model {model.name} returns outputs of shape {tuple(out.shape)} for {len(x)} images; expected {len(x)} x {num_classes} logits (one per class of the dataset)"
        )
    bad = int((~torch.isfinite(out)).any(1).sum())
    if bad:
        raise ModelOutputError(f"model {model.name} returns NaN or infinite outputs for {bad} of {len(x)} images; a broken model has no robust accuracy")
    sums = out.sum(1)
    probability_rows = float((((sums - 1).abs() <= PROBABILITY_TOLERANCE) & (out >= 0).all(1)).float().mean())
    return CheckResult(
        "logits-not-probabilities", probability_rows < 0.5, probability_rows, 0.5,
        f"model {model.name} outputs probabilities ({100 * probability_rows:.0f}% of rows are non-negative and sum to 1), not logits: "
        "losses on them saturate; their logarithm is attacked",
    )


def determinism_check(model: RobustModel, x: torch.Tensor) -> CheckResult:
    """A model that does not declare randomness must predict the same twice, in any batching."""
    with torch.no_grad():
        first = model(x)
        second = torch.cat([model(x[i : i + 7]) for i in range(0, len(x), 7)])
    changed = int((first.argmax(1) != second.argmax(1)).sum())
    drift = float((first - second).abs().amax()) if len(x) else 0.0
    random = changed > 0 or drift > 1e-3 * max(1.0, float(first.abs().amax()))
    return CheckResult(
        "deterministic", model.stochastic or not random, float(changed) / max(1, len(x)), 0.0,
        f"model {model.name} does not declare randomness but {changed}/{len(x)} predictions (logits by up to {drift:.3g}) changed between calls; "
        "it is evaluated as a random model (EOT gradients, no early stopping)",
    )


def gradient_check(view: AttackedModel, x: torch.Tensor, y: torch.Tensor) -> CheckResult:
    """Share of samples whose cross-entropy input gradient is all zero or not finite (as attacked:
    through BPDA surrogates, averaged over EOT draws)."""
    _, grad = loss_and_grad(view, x, y, "ce")
    flat = grad.flatten(1)
    dead = (~torch.isfinite(flat).all(1)) | (flat.abs().amax(1) == 0)
    share = float(dead.float().mean()) if len(x) else 0.0
    return CheckResult(
        "input-gradients", share <= DEAD_GRADIENT_LIMIT, share, DEAD_GRADIENT_LIMIT,
        f"the input gradients of {100 * share:.0f}% of samples are zero or not finite: gradient attacks see nothing there "
        "(a non-differentiable input map or saturated outputs); gradient-free and transfer attacks take over",
    )
