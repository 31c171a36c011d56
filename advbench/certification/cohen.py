"""Randomized-smoothing certification after Cohen, Rosenfeld & Kolter (2019): CERTIFY and PREDICT.

The smoothed classifier g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c) of a base classifier f
(the wrapped model, noise added in [0,1] pixel space). CERTIFY picks the top class from n0
draws, then lower-bounds its probability pA from n fresh draws with a one-sided
Clopper-Pearson bound at level 1 - alpha and certifies the L2 radius sigma * Phi^-1(pA_lower)
(abstaining when pA_lower <= 1/2). PREDICT returns the top class unless a two-sided binomial
test of its count against the runner-up's fails at level alpha.

Each noisy copy's noise is a function of (seed, the image's dataset index, sigma, the copy's draw
index) only (`certification.noise`): the selection draws are copies 0 .. n0-1, the estimation
draws n0 .. n0+n-1. So a certificate does not depend on the batch size, on what else is certified
with it, on how the work is sharded or resumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportion_confint

from advbench.certification.forward import count_votes
from advbench.certification.noise import image_key
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel

ABSTAIN = -1


@dataclass(frozen=True)
class CertifyConfig:
    sigma: float = 0.25
    n0: int = 100
    n: int = 100_000
    alpha: float = 0.001
    batch_size: int = 1000
    precision: str = "fp32"  # autocast dtype of the forward passes (counts stay exact integers)

    def __post_init__(self) -> None:
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise UsageError(f"--sigma must be a positive number, got {self.sigma}")
        if self.n0 < 1 or self.n < 1 or self.batch_size < 1:
            raise UsageError("--n0, --n and --batch-size must be positive")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha must lie in (0, 1), got {self.alpha}")


@dataclass(frozen=True)
class Certificate:
    sample_idx: int
    label: int
    prediction: int  # ABSTAIN (-1) when the bound is not above 1/2
    radius: float  # 0.0 when abstaining
    p_lower: float
    count_top: int  # draws (of n) that voted for the n0-selected class
    n: int
    predict: int  # PREDICT's answer (ABSTAIN when the binomial test fails)


def lower_confidence_bound(count: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion."""
    return float(proportion_confint(count, n, alpha=2 * alpha, method="beta")[0])


def radius(p_lower: float, sigma: float) -> float:
    return sigma * float(norm.ppf(p_lower)) if p_lower > 0.5 else 0.0


def sample_counts(
    model: RobustModel,
    x: torch.Tensor,
    num: int,
    sigma: float,
    batch_size: int,
    key: int,
    first: int = 0,
    precision: str = "fp32",
) -> torch.Tensor:
    """Class counts of the base classifier over copies first .. first + num - 1 of one image x
    (C, H, W) whose noise is keyed `key` (`noise.image_key`)."""
    keys = torch.tensor([key], dtype=torch.int64, device=x.device)
    starts = torch.tensor([first], dtype=torch.int64, device=x.device)
    return count_votes(
        model, x.unsqueeze(0), keys, starts, num, sigma, batch_size, precision
    ).squeeze(0)


def certify_sample(
    model: RobustModel,
    x: torch.Tensor,
    label: int,
    index: int,
    config: CertifyConfig,
    seed: int = 0,
) -> Certificate:
    """CERTIFY and PREDICT for one image; both read the same sample-keyed noise stream."""
    key = image_key(seed, index, config.sigma)
    c = config
    selection = sample_counts(model, x, c.n0, c.sigma, c.batch_size, key, 0, c.precision)
    top = int(selection.argmax())
    estimation = sample_counts(model, x, c.n, c.sigma, c.batch_size, key, c.n0, c.precision)
    count_top = int(estimation[top])
    p_lower = lower_confidence_bound(count_top, config.n, config.alpha)
    prediction = top if p_lower > 0.5 else ABSTAIN
    # PREDICT (Cohen et al. Alg. 1) from the estimation draws: top two classes, binomial test.
    first, second = estimation.topk(2).values.tolist()
    p_value = binomtest(int(first), int(first + second), 0.5).pvalue if first + second > 0 else 1.0
    predicted = int(estimation.argmax()) if p_value <= config.alpha else ABSTAIN
    return Certificate(
        index,
        label,
        prediction,
        radius(p_lower, config.sigma),
        p_lower,
        count_top,
        config.n,
        predicted,
    )


def look_schedule(n0: int, n_max: int, growth: float = 2.0) -> list[int]:
    """Cumulative sample sizes at which the sequential test looks: n0, 2 n0, 4 n0, ... up to n_max."""
    looks, n = [], max(1, n0)
    while n < n_max:
        looks.append(n)
        n = int(math.ceil(n * growth))
    return looks + [n_max]


def certify_sample_adaptive(
    model: RobustModel,
    x: torch.Tensor,
    label: int,
    index: int,
    config: CertifyConfig,
    target_radius: float,
    seed: int = 0,
    first_look: int = 100,
) -> tuple[Certificate, int]:
    """Sequential CERTIFY deciding only whether x is certified at `target_radius`.

    After the n0 selection draws, estimation draws come in a doubling schedule; at each of the K
    looks a one-sided Clopper-Pearson bound at level alpha/K is computed (a union bound keeps the
    overall failure probability below alpha), and sampling stops as soon as the bound clears
    p* = Phi(target_radius / sigma) (certified) or the matching upper bound falls below it (it
    cannot be certified there). Returns the certificate and the number of forward passes used.
    """
    key, c = image_key(seed, index, config.sigma), config
    selection = sample_counts(model, x, c.n0, c.sigma, c.batch_size, key, 0, c.precision)
    top = int(selection.argmax())
    looks = look_schedule(first_look, config.n)
    alpha_look = config.alpha / len(looks)
    needed = float(norm.cdf(target_radius / config.sigma))
    counts = torch.zeros(model.num_classes, dtype=torch.int64, device=x.device)
    drawn = 0
    p_lower = 0.0
    for look in looks:
        counts += sample_counts(
            model, x, look - drawn, c.sigma, c.batch_size, key, c.n0 + drawn, c.precision
        )
        drawn = look
        count_top = int(counts[top])
        p_lower = lower_confidence_bound(count_top, drawn, alpha_look)
        p_upper = 1.0 - lower_confidence_bound(drawn - count_top, drawn, alpha_look)
        if p_lower >= needed or p_upper < needed:
            break
    prediction = top if p_lower > 0.5 else ABSTAIN
    first, second = counts.topk(2).values.tolist()
    p_value = binomtest(int(first), int(first + second), 0.5).pvalue if first + second > 0 else 1.0
    predicted = int(counts.argmax()) if p_value <= config.alpha else ABSTAIN
    cert = Certificate(
        index,
        label,
        prediction,
        radius(p_lower, config.sigma),
        p_lower,
        int(counts[top]),
        drawn,
        predicted,
    )
    return cert, config.n0 + drawn
