"""The defenses' own training recipes: adversarial weight perturbation (AWP, TRADES-AWP), the
polarizing front end, sparse coding, and noise injection (CPNI-AT, EPGD, Gaussian)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advbench.train.config import TrainConfig
from advbench.train.recipe_base import (
    Loss,
    Recipe,
    StepContext,
    register_recipe,
    trades_loss,
    trained,
)


def _perturbable(net: nn.Module) -> list[Tensor]:
    """The weights AWP perturbs: every conv/linear weight matrix (not biases or norms)."""
    return [
        m.weight
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad
    ]


def perturb_weights(ctx: StepContext, adversarial_loss: Callable[[], torch.Tensor]) -> None:
    """AWP (Wu et al. 2020): one normalized ascent step on the weights, v = gamma ||w|| g / ||g||
    per layer, applied now and removed after the optimizer step."""
    weights = _perturbable(ctx.net)
    grads = torch.autograd.grad(adversarial_loss(), weights, allow_unused=True)
    deltas = []
    with torch.no_grad():
        for w, g in zip(weights, grads):
            d = (
                torch.zeros_like(w)
                if g is None
                else ctx.config.awp_gamma * w.norm() * g / (g.norm() + 1e-20)
            )
            w.add_(d)
            deltas.append(d)

    def restore() -> None:
        with torch.no_grad():
            for w, d in zip(weights, deltas):
                w.sub_(d)

    ctx.after_step.append(restore)


@register_recipe("awp")
class AWPAdversarialTraining(Recipe):
    """PGD adversarial training with adversarial weight perturbation (AT-AWP)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.pgd(x, y, idx)
        perturb_weights(ctx, lambda: F.cross_entropy(ctx.model(x_adv), y))
        logits = ctx.model(x_adv)
        return F.cross_entropy(logits, y), logits


@register_recipe("trades-awp")
class AWPTrades(Recipe):
    """TRADES with adversarial weight perturbation (TRADES-AWP)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.trades_adversary(x, idx)
        perturb_weights(ctx, lambda: trades_loss(ctx, x, x_adv, y)[0])
        return trades_loss(ctx, x, x_adv, y)


@register_recipe("polarizer")
class Polarizer(Recipe):
    """Dissertation §4.1: three equal stages. 1: CE + lambda B1 (no quantizer); 2: CE + lambda B2;
    3: quantizer on, front end frozen, no regularizer. lambda ramps 0 -> 1 within each stage."""

    @staticmethod
    def stage(epoch: int, epochs: int) -> int:
        return min(2, 3 * epoch // max(1, epochs))

    def start_epoch(self, net: nn.Module, epoch: int, config: TrainConfig) -> None:
        from advbench.models.polarize import PolarizingFrontEnd

        stage = self.stage(epoch, config.epochs)
        polarizer = trained(net, PolarizingFrontEnd, "polarizer")
        polarizer.quantize = stage == 2
        for p in polarizer.front.parameters():
            p.requires_grad_(stage < 2)

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        from advbench.models.polarize import PolarizingFrontEnd, bump_b1, bump_b2

        polarizer = trained(ctx.net, PolarizingFrontEnd, "polarizer")
        logits = ctx.model(x)
        loss = F.cross_entropy(logits, y)
        epochs, stage = ctx.config.epochs, self.stage(ctx.epoch, ctx.config.epochs)
        if stage < 2:
            first = -(-stage * epochs // 3)  # first epoch of this stage
            length = max(1, -(-(stage + 1) * epochs // 3) - first)
            lam = (ctx.epoch - first + ctx.progress) / length
            z = polarizer.last_activations
            if z is None:
                raise RuntimeError(
                    "the polarizer's regularizer needs the front end's activations of a training forward pass"
                )
            bump = (
                bump_b1(z, ctx.config.polarizer_sigma1)
                if stage == 0
                else bump_b2(z, polarizer.quantizer.threshold, ctx.config.polarizer_sigma2)
            )
            loss = loss + lam * bump.mean()
        return loss, logits


@register_recipe("sparse-coding")
class SparseCoding(Recipe):
    """Dissertation §4.2: learn the patch dictionary without labels (scikit-learn), then train the
    decoder and classifier with CE through the fixed encoder (dropout active while training)."""

    def prepare(self, net: nn.Module, x_train: Tensor, config: TrainConfig) -> None:
        from advbench.models.sparse_coding import SparseCodingFrontEnd, learn_dictionary

        coder = trained(net, SparseCodingFrontEnd, "sparse-coding")
        patch = coder.dictionary.shape[-1]
        atoms = learn_dictionary(
            x_train[:5000].cpu(),
            coder.dictionary.shape[0],
            patch,
            coder.stride,
            seed=config.seed,
            iterations=config.dictionary_steps,
        )
        coder.set_dictionary(atoms.to(coder.dictionary.device))

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        logits = ctx.model(x)
        return F.cross_entropy(logits, y), logits


def _base(ctx: StepContext) -> Callable[[torch.Tensor], torch.Tensor]:
    """The trainable classifier on [0,1] inputs: a smoothing wrapper's base, else the model."""
    base = getattr(ctx.net, "base", None)
    if base is None:
        return ctx.model
    return lambda x: base((x - ctx.model.mean) / ctx.model.std)


@register_recipe("cpni-at")
class NoiseInjectionAdversarialTraining(Recipe):
    """PNI / CPNI: noise scales learned with the weights under PGD adversarial training, loss
    0.5 CE(clean) + 0.5 CE(adversarial) (He et al.; the noise stays active in the attack)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        base = _base(ctx)
        x_adv = ctx.pgd(x, y, idx)
        logits_adv = base(x_adv)
        return 0.5 * F.cross_entropy(base(x), y) + 0.5 * F.cross_entropy(logits_adv, y), logits_adv


def _smoothing_noise(ctx: StepContext, x: torch.Tensor) -> torch.Tensor:
    """x plus the smoothing wrapper's Gaussian noise (its sigma is in normalized input units)."""
    sigma = float(getattr(ctx.net, "sigma", 0.0))
    return x + sigma * ctx.model.std * torch.randn_like(x)


@register_recipe("epgd")
class EPGDTraining(Recipe):
    """Smoothed-inference §4: adversarial fine-tuning on EPGD examples. Attacking the smoothing
    wrapper in attack mode follows its soft surrogate, i.e. gradients averaged over its M noise
    draws; the base then trains on the examples under the smoothing noise."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        logits = _base(ctx)(_smoothing_noise(ctx, ctx.pgd(x, y, idx)))
        return F.cross_entropy(logits, y), logits


@register_recipe("gauss")
class GaussTraining(Recipe):
    """Smoothed-inference eq. 22: inputs x + N(0, sigma^2) + B delta, B ~ Bernoulli(q), delta from PGD."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        x_adv = ctx.pgd(x, y, idx)
        gen = torch.Generator().manual_seed(ctx.seed("gauss") + int(idx[0]))
        pick = (
            (torch.rand(len(x), generator=gen) < ctx.config.gauss_q).to(x.device).view(-1, 1, 1, 1)
        )
        logits = _base(ctx)(_smoothing_noise(ctx, torch.where(pick, x_adv, x)))
        return F.cross_entropy(logits, y), logits
