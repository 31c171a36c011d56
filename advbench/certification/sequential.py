"""Sequential randomized-smoothing certification: each image stops drawing noise once its answer is settled.

Cohen et al.'s CERTIFY spends the same n draws on every image. Here, after Cohen's n0 selection
draws pick the top class, the estimation draws come in a fixed geometric schedule of K looks
(first_look, 2 first_look, 4 first_look, ..., max_draws). At every look the top class's
probability pA gets a two-sided Clopper-Pearson interval at level alpha / K per side — a union
bound over the K looks, so with probability >= 1 - alpha the lower bound is below pA at *every*
look, whichever look the stopping rule ends at (the anytime-valid guarantee; no confidence
sequence is needed because the looks are fixed in advance). The certified radius is
sigma * Phi^-1(lower bound) at the last look, as in CERTIFY.

An image stops at the first look where
- for each asked radius r: it is certified at r (lower radius >= r), or CERTIFY with max_draws
  draws would not certify r even if pA were as high as its upper bound now (the radius such a run
  would report, sigma * Phi^-1 of the Clopper-Pearson lower bound on max_draws draws at that
  frequency, is below r; this also covers upper bound < Phi(r / sigma), where no budget would),
  or could not be certified at r even if every remaining draw voted for the top class; or
- either way: the interval of radii it may still reach — from the lower radius to the one
  max_draws could report, as above — is narrower than `resolution` (with no radius asked this is
  the only rule: the whole curve is known to `resolution`; with radii it bounds the work on
  images whose exact radius sits on an asked one).
Stopping early only ever certifies less, so no stopping rule can break the guarantee; the rule
against what max_draws could certify is what makes the sequential answer match fixed-N CERTIFY
with N = max_draws at a fraction of its draws, also for images whose radius sits just under an
asked one (fixed N cannot certify those either).
So images with pA near 1 (certified quickly at every asked radius) and images with pA far below
1/2 (abstaining) stop after a few hundred draws; only images whose answer hinges on the exact pA
run long.

Images are certified together: every look draws for all still-open images at once, batched into
forward passes of up to `batch_size` noisy copies. Each copy's noise is keyed by the image's dataset
index and the copy's draw index (`certification.noise`, as in CERTIFY: the n0 selection copies
first, then the estimation copies in order), so an image's result does not depend on the batch
size or on which images share its batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, binomtest, norm

from advbench.certification.cohen import ABSTAIN, Certificate, look_schedule, radius
from advbench.certification.forward import check_precision, count_votes
from advbench.certification.noise import image_key
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class SequentialConfig:
    sigma: float = 0.25
    n0: int = 100
    max_draws: int = 100_000  # estimation draws an image may use at most (CERTIFY's n)
    alpha: float = 0.001
    radii: tuple[float, ...] = ()  # decide these radii; empty: the whole curve to `resolution`
    resolution: float = 0.01  # L2 width of the radius interval at which an image counts as settled
    batch_size: int = 1000
    first_look: int = 100
    growth: float = 2.0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "radii", tuple(sorted(float(r) for r in self.radii)))
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise UsageError(f"--sigma must be a positive number, got {self.sigma}")
        if min(self.n0, self.max_draws, self.batch_size, self.first_look) < 1:
            raise UsageError("--n0, --max-draws, --batch-size and the first look must be positive")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha must lie in (0, 1), got {self.alpha}")
        if any(not (math.isfinite(r) and r >= 0) for r in self.radii):
            raise UsageError(
                f"--radius must be finite numbers >= 0, got {', '.join(f'{r:g}' for r in self.radii)}"
            )
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise UsageError(f"--resolution must be a positive number, got {self.resolution}")
        if self.growth <= 1:
            raise UsageError(f"the look schedule's growth must exceed 1, got {self.growth}")
        check_precision(self.precision)

    @property
    def alpha_per_look(self) -> float:
        # Planned looks: the geometric ones plus one per asked radius (fewer if they coincide, which
        # only makes the union bound looser).
        geometric = look_schedule(min(self.first_look, self.max_draws), self.max_draws, self.growth)
        return self.alpha / (len(geometric) + len(self.radii))

    @property
    def looks(self) -> list[int]:
        """Cumulative estimation draws at which the bounds are computed, fixed before any draw.

        Besides the geometric schedule, one look per asked radius r at the fewest draws that can
        certify r (all of them voting for the top class): a confident image then stops there
        rather than at the next doubling, up to twice as late.
        """
        looks = set(
            look_schedule(min(self.first_look, self.max_draws), self.max_draws, self.growth)
        )
        for r in self.radii:
            needed = float(norm.cdf(r / self.sigma))
            if needed >= 1.0:  # Phi(r / sigma) rounds to 1: no number of draws certifies r
                continue
            fewest = (
                math.ceil(math.log(self.alpha_per_look) / math.log(needed)) + 1
            )  # + 1: clear the float rounding
            if fewest < self.max_draws:
                looks.add(fewest)
        return sorted(looks)


def clopper_pearson(
    count: np.ndarray, n: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (1 - alpha) Clopper-Pearson lower and upper bounds, elementwise."""
    count, n = np.asarray(count, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        lower = np.where(count > 0, beta.ppf(alpha, count, n - count + 1), 0.0)
        upper = np.where(count < n, beta.ppf(1 - alpha, count + 1, n - count), 1.0)
    return lower, upper


def radius_of(p: np.ndarray, sigma: float) -> np.ndarray:
    """sigma * Phi^-1(p) where p > 1/2, else 0 (elementwise; inf at p = 1)."""
    with np.errstate(divide="ignore"):
        return np.where(p > 0.5, sigma * norm.ppf(np.clip(p, 0.5, 1.0)), 0.0)


def settled(count_top: np.ndarray, drawn: int, config: SequentialConfig) -> np.ndarray:
    """Which images' answers no longer change with more draws (see the module docstring)."""
    if drawn >= config.max_draws:
        return np.ones(len(count_top), dtype=bool)
    alpha, budget = config.alpha_per_look, np.full_like(count_top, config.max_draws)
    lower, upper = clopper_pearson(count_top, np.full_like(count_top, drawn), alpha)
    # The lower bound max_draws could give: every remaining draw votes for the top class (best), or
    # the top class's frequency over max_draws draws equals pA's upper bound now (reach).
    best, _ = clopper_pearson(count_top + (config.max_draws - drawn), budget, alpha)
    reach, _ = clopper_pearson(np.floor(upper * config.max_draws), budget, alpha)
    reach = np.minimum(reach, best)
    r_lower, r_reach = radius_of(lower, config.sigma), radius_of(reach, config.sigma)
    # Known to `resolution`: whatever max_draws would report lies within resolution of the radius now.
    narrow = (reach <= 0.5) | (r_reach - r_lower < config.resolution)
    if not config.radii:
        return narrow
    done = np.ones(len(count_top), dtype=bool)
    for r in config.radii:
        certified = (lower > 0.5) & (r_lower >= r)
        out_of_reach = reach <= 0.5 if r == 0 else r_reach < r
        done &= certified | out_of_reach
    # An image whose exact radius lies within `resolution` of an asked one stops there too
    # (otherwise pA = Phi(r / sigma) exactly would draw max_draws for nothing).
    return done | narrow


def certify_sequential(
    model: RobustModel,
    images: torch.Tensor,
    labels: list[int],
    indices: list[int],
    config: SequentialConfig,
    seed: int = 0,
) -> list[tuple[Certificate, int]]:
    """Sequential CERTIFY (and PREDICT on the estimation counts) for a batch of images (N, C, H, W).

    Returns per image its certificate and the forward passes it used (n0 + estimation draws).
    """
    num, c, dev = len(images), config, images.device
    keys = torch.tensor([image_key(seed, i, c.sigma) for i in indices], dtype=torch.int64)
    keys = keys.to(dev)
    zeros = torch.zeros(num, dtype=torch.int64, device=dev)
    selection = count_votes(model, images, keys, zeros, c.n0, c.sigma, c.batch_size, c.precision)
    top = selection.argmax(1)
    counts = torch.zeros(num, model.num_classes, dtype=torch.int64, device=images.device)
    drawn = np.zeros(num, dtype=np.int64)
    open_ = np.ones(num, dtype=bool)
    previous = 0
    for look in config.looks:
        active = np.flatnonzero(open_)
        if len(active) == 0:
            break
        sel = torch.as_tensor(active, device=images.device)
        starts = zeros[sel] + c.n0 + previous  # every open image has drawn `previous` so far
        counts[sel] += count_votes(
            model,
            images[sel],
            keys[sel],
            starts,
            look - previous,
            c.sigma,
            c.batch_size,
            c.precision,
        )
        drawn[active] = look
        previous = look
        count_top = counts[sel].gather(1, top[sel].unsqueeze(1)).squeeze(1).cpu().numpy()
        open_[active[settled(count_top, look, config)]] = False
    count_top = counts.gather(1, top.unsqueeze(1)).squeeze(1).cpu().numpy()
    lower, _ = clopper_pearson(count_top, drawn, config.alpha_per_look)
    results = []
    for i in range(num):
        p_lower = float(lower[i])
        first, second = (
            counts[i].topk(2).values.tolist() if model.num_classes > 1 else (int(counts[i, 0]), 0)
        )
        p_value = (
            binomtest(int(first), int(first + second), 0.5).pvalue if first + second > 0 else 1.0
        )
        predicted = int(counts[i].argmax()) if p_value <= config.alpha else ABSTAIN
        prediction = int(top[i]) if p_lower > 0.5 else ABSTAIN
        cert = Certificate(
            indices[i],
            labels[i],
            prediction,
            radius(p_lower, config.sigma),
            p_lower,
            int(count_top[i]),
            int(drawn[i]),
            predicted,
        )
        results.append((cert, config.n0 + int(drawn[i])))
    return results
