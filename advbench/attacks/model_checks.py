"""Checks on the model itself, before any stage: are its outputs usable logits, is it as
deterministic as it claims, do its input gradients carry signal, does a huge budget break it?

A model whose outputs are NaN, infinite or of the wrong shape is an error (`ModelOutputError`,
exit 2), never a result. The other findings are `CheckResult`s of the `PROBE` checks in
`checks`, whose remedies the evaluation applies before its stages run. All are cheap: a few
forward passes, one gradient, and PGD-50 with early stopping on at most `LARGE_EPS_SAMPLES`.
"""

from __future__ import annotations

import torch

from advbench.attacks.checks import (
    CHECKS,
    DETERMINISTIC,
    INPUT_GRADIENTS,
    LARGE_EPS,
    PROBABILITIES,
    CheckResult,
)
from advbench.attacks.gradient import PGD, PGDConfig
from advbench.attacks.losses import loss_and_grad
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import ModelOutputError
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel

PROBABILITY_TOLERANCE = 1e-3  # rows summing to 1 within this, all entries >= 0: probabilities
# Drift of a deterministic model's logits between two batchings, as a share of the row's scale,
# that is still float rounding: float32 kernels drift by ~1e-6, TF32 (10-bit mantissa, `--tf32`)
# by ~1e-3; noise layers and dropout move logits by far more than 1e-2.
ROUNDING_TOLERANCE = 1e-2
LARGE_EPS_SAMPLES = (
    32  # the huge-budget probe needs only a few samples: it should break all of them
)


def validate_outputs(model: torch.nn.Module, out: object, n: int, num_classes: int) -> torch.Tensor:
    """`out` as logits of `n` images over `num_classes` classes, or a `ModelOutputError` naming the model."""
    name = getattr(model, "name", type(model).__name__)
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(
            f"model {name} returns a {type(out).__name__}, not a tensor of {n} x {num_classes} logits"
        )
    if out.dim() != 2 or out.shape != (n, num_classes):
        raise ModelOutputError(
            f"model {name} returns outputs of shape {tuple(out.shape)} for {n} images; expected {n} x {num_classes} logits (one per class of the dataset)"
        )
    bad = int((~torch.isfinite(out)).any(1).sum())
    if bad:
        raise ModelOutputError(
            f"model {name} returns NaN or infinite outputs for {bad} of {n} images; a broken model has no robust accuracy"
        )
    return out


def output_checks(model: RobustModel, x: torch.Tensor, num_classes: int) -> CheckResult:
    """Raise on unusable outputs; return whether they look like probabilities rather than logits."""
    with torch.no_grad():
        out = validate_outputs(model, model(x), len(x), num_classes)
    sums = out.sum(1)
    probability_rows = float(
        (((sums - 1).abs() <= PROBABILITY_TOLERANCE) & (out >= 0).all(1)).float().mean()
    )
    return CHECKS.get(PROBABILITIES).result(
        probability_rows,
        f"model {model.name} outputs probabilities ({100 * probability_rows:.0f}% of rows are non-negative and sum to 1), not logits: "
        "losses on them saturate; their logarithm is attacked",
    )


def determinism_check(model: RobustModel, x: torch.Tensor) -> CheckResult:
    """A model that does not declare randomness must predict the same twice, in any batching.

    Float rounding is not randomness: the two calls batch x differently, so on a GPU (other
    kernels per batch shape, TF32 where allowed) the logits may drift by a few units in their last
    digits, and a near tie may flip. A row counts as random only when a logit moves by more than
    `ROUNDING_TOLERANCE` of the row's scale (its largest logit, at least 1); a flipped prediction
    within that drift is a tie. Real randomness (noise layers, dropout) moves logits far more.
    """
    with torch.no_grad():
        first = model(x).float()
        second = torch.cat([model(x[i : i + 7]) for i in range(0, len(x), 7)]).float()
    if not len(x):
        return CHECKS.get(DETERMINISTIC).result(0.0, "no samples")
    drift = (first - second).abs().amax(1)
    random = drift > ROUNDING_TOLERANCE * first.abs().amax(1).clamp(min=1.0)
    changed = int((first.argmax(1) != second.argmax(1)).sum())
    share = float(random.float().mean())
    value = 0.0 if model.stochastic or not bool(random.any()) else max(share, 1e-6)
    return CHECKS.get(DETERMINISTIC).result(
        value,
        f"model {model.name} does not declare randomness but the logits of {int(random.sum())}/{len(x)} samples changed between calls "
        f"(by up to {float(drift.max()):.3g}, beyond float rounding; {changed} predictions changed); "
        "it is evaluated as a random model (EOT gradients, points judged by votes)",
    )


def gradient_check(view: AttackedModel, x: torch.Tensor, y: torch.Tensor) -> CheckResult:
    """Share of samples whose cross-entropy input gradient is all zero or not finite (as attacked:
    through BPDA surrogates, averaged over EOT draws)."""
    grad = loss_and_grad(view, x, y, "ce").grad
    flat = grad.flatten(1)
    dead = (~torch.isfinite(flat).all(1)) | (flat.abs().amax(1) == 0)
    share = float(dead.float().mean()) if len(x) else 0.0
    return CHECKS.get(INPUT_GRADIENTS).result(
        share,
        f"the input gradients of {100 * share:.0f}% of samples are zero or not finite: gradient attacks see nothing there "
        "(a non-differentiable input map or saturated outputs); gradient-free and transfer attacks take over",
    )


def large_eps(norm: Norm, dims: int) -> float:
    """A budget that lets any image become any other: half the pixel range per coordinate."""
    return {Norm.LINF: 0.5, Norm.L2: 0.5 * dims**0.5, Norm.L1: 0.5 * dims, Norm.L0: float(dims)}[
        norm
    ]


def large_eps_check(
    view: AttackedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: Norm,
    indices: torch.Tensor,
    seed: int,
) -> CheckResult:
    """PGD-50 at a budget that lets any image become any other, on the first `LARGE_EPS_SAMPLES`
    samples: a model it cannot break hides its gradients."""
    # x[0] of the batch's shape, even when no checked sample is classified correctly (x is empty)
    big = ThreatModel(norm, large_eps(norm, x[0].numel() if len(x) else int(x.shape[1:].numel())))
    x, y, indices = x[:LARGE_EPS_SAMPLES], y[:LARGE_EPS_SAMPLES], indices[:LARGE_EPS_SAMPLES]
    accuracy = 0.0
    if len(x) and norm is not Norm.L0:
        accuracy = (
            1.0
            - PGD(PGDConfig(steps=50, rel_stepsize=0.1))(view, x, y, big, indices, seed)
            .success.float()
            .mean()
            .item()
        )
    return CHECKS.get(LARGE_EPS).result(
        accuracy,
        f"gradient masking? PGD-50 at the huge budget {big.label()} still leaves {100 * accuracy:.1f}% (should be ~0)",
    )
