"""Training recipes: the loss each paper trains with, registered by name.

A recipe turns a batch into a loss. Hooks: `prepare` (before the first epoch, e.g. learning the
sparse-coding dictionary), `start_epoch` (e.g. the polarizer's stage switches) and callbacks a
loss can queue to run after the optimizer step (AWP removes its weight perturbation there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advbench.train.adversary import maximize
from advbench.train.recipe_base import (
    RECIPES,
    Loss,
    Recipe,
    StepContext,
    kl,
    register_recipe,
    trades_loss,
    trained,
)


@register_recipe("normal")
class Normal(Recipe):
    """Cross-entropy; noise layers in the model add the Gaussian input/activation noise (KAP §4.1)."""

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        logits = ctx.model(x)
        return F.cross_entropy(logits, y), logits


@register_recipe("hah")
class HebbianAntiHebbian(Recipe):
    """CE minus the weighted HaH objectives of the model's HaH blocks (dissertation eq. 5.5)."""

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        from advbench.models.hah import VGG16

        logits = ctx.model(x)
        return F.cross_entropy(logits, y) - trained(ctx.net, VGG16, "hah").hah_objective(), logits


@register_recipe("pgd-at")
class PGDAdversarialTraining(Recipe):
    """CE on PGD adversarial examples made on the fly (Madry et al.)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        logits = ctx.model(ctx.pgd(x, y, idx))
        return F.cross_entropy(logits, y), logits


@register_recipe("fast-at")
class FastAdversarialTraining(Recipe):
    """FGSM from a uniform random start with step 1.25 eps (Wong et al., 'fast is better than free')."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        eps = ctx.config.at_eps
        x_adv = maximize(
            ctx.model,
            x,
            lambda lg, rows: F.cross_entropy(lg, y[rows], reduction="none"),
            ctx.threat(),
            1,
            1.25 * eps,
            idx,
            ctx.seed("fast-at"),
        )
        logits = ctx.model(x_adv)
        return F.cross_entropy(logits, y), logits


@register_recipe("trades")
class Trades(Recipe):
    """CE(f(x), y) + beta KL(f(x) || f(x')) with x' maximizing the KL (Zhang et al.; beta = 1/lambda)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        return trades_loss(ctx, x, ctx.trades_adversary(x, idx), y)


@register_recipe("alp")
class AdversarialLogitPairing(Recipe):
    """Mixed clean/adversarial CE plus the squared L2 distance of their logits (Kannan et al.)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.pgd(x, y, idx)
        logits, logits_adv = ctx.model(x), ctx.model(x_adv)
        ce = 0.5 * (F.cross_entropy(logits, y) + F.cross_entropy(logits_adv, y))
        return ce + ctx.config.alp_weight * (logits - logits_adv).pow(2).sum(1).mean(), logits_adv


@register_recipe("kl-pairing")
class KLLogitPairing(Recipe):
    """Smooth-kernels §3 'L': CE on x' (PGD) + gamma KL(softmax(x') || softmax(x))."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.pgd(x, y, idx)
        logits_adv, logits = ctx.model(x_adv), ctx.model(x)
        return F.cross_entropy(logits_adv, y) + ctx.config.pairing_gamma * kl(
            F.softmax(logits_adv, 1), logits
        ).mean(), logits_adv


@register_recipe("mart")
class MART(Recipe):
    """Boosted CE on x' plus beta KL(f(x) || f(x')) weighted by 1 - p_y(x) (Wang et al. 2020)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.pgd(x, y, idx)
        logits_adv, logits = ctx.model(x_adv), ctx.model(x)
        adv_probs = F.softmax(logits_adv, 1)
        # The most likely wrong class: its probability is pushed down (boosted CE).
        runner_up = adv_probs.masked_fill(F.one_hot(y, adv_probs.shape[1]).bool(), -1.0).argmax(1)
        boosted = F.cross_entropy(logits_adv, y) + F.nll_loss(
            torch.log(1.0001 - adv_probs + 1e-12), runner_up
        )
        clean_probs = F.softmax(logits, 1)
        true_prob = clean_probs.gather(1, y.view(-1, 1)).squeeze(1)
        robust = (kl(clean_probs, logits_adv) * (1.0000001 - true_prob)).mean()
        return boosted + ctx.config.mart_beta * robust, logits_adv


@register_recipe("fat")
class FriendlyAdversarialTraining(Recipe):
    """CE on early-stopped PGD: each sample stops tau steps after it is misclassified (Zhang et al. 2020)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        logits = ctx.model(ctx.pgd(x, y, idx, stop_after=ctx.config.fat_tau))
        return F.cross_entropy(logits, y), logits


# The defenses' recipes register in their own module; importing it here completes RECIPES.
from advbench.train.defense_recipes import Polarizer, perturb_weights  # noqa: E402

__all__ = [
    "RECIPES",
    "Loss",
    "Polarizer",
    "Recipe",
    "StepContext",
    "kl",
    "perturb_weights",
    "register_recipe",
    "trained",
    "trades_loss",
]
