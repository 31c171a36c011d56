"""Training recipes: the loss each paper trains with, registered by name.

A recipe turns a batch into a loss. Hooks: `prepare` (before the first epoch, e.g. learning the
sparse-coding dictionary), `start_epoch` (e.g. the polarizer's stage switches) and callbacks a
loss can queue to run after the optimizer step (AWP removes its weight perturbation there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advbench.core.errors import UsageError
from advbench.core.registry import Registry
from advbench.core.seeding import derive_seed
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel
from advbench.train.adversary import maximize
from advbench.train.config import TrainConfig

Loss = tuple[Tensor, Tensor]  # (loss, logits whose accuracy the progress log reports)
Net = TypeVar("Net", bound=nn.Module)


@dataclass
class StepContext:
    """What a recipe sees of the training state at one step."""

    model: RobustModel  # unfrozen wrapper around `net`: normalizes [0,1] inputs
    config: TrainConfig
    epoch: int
    progress: float  # fraction of the current epoch done, in [0, 1)
    after_step: list[Callable[[], None]] = field(default_factory=list)

    @property
    def net(self) -> nn.Module:
        return self.model.net

    def threat(self) -> ThreatModel:
        return ThreatModel(Norm(self.config.at_norm), self.config.at_eps)

    def seed(self, what: str) -> int:
        return derive_seed(self.config.seed, what, self.epoch)

    def pgd(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, stop_after: int | None = None) -> torch.Tensor:
        """Madry et al.'s inner maximization of CE (uniform start); `stop_after`: FAT's early stop."""
        cfg = self.config
        return maximize(
            self.model, x, lambda logits, rows: F.cross_entropy(logits, y[rows], reduction="none"), self.threat(),
            cfg.at_steps, cfg.at_rel_stepsize * cfg.at_eps, idx, self.seed("adversary"), y=y, stop_after=stop_after,
        )

    def trades_adversary(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """TRADES' inner maximization: KL from the clean softmax, from x + 0.001 N(0, I)."""
        cfg = self.config
        with torch.no_grad():
            self.net.eval()
            clean = F.softmax(self.model(x), 1)
            self.net.train()
        return maximize(
            self.model, x, lambda logits, rows: kl(clean[rows], logits), self.threat(),
            cfg.at_steps, cfg.at_rel_stepsize * cfg.at_eps, idx, self.seed("trades"), start="normal",
        )


def trained(net: nn.Module, kind: type[Net], recipe: str) -> Net:
    """`net` as the architecture a recipe is written for; a UsageError naming both otherwise."""
    if not isinstance(net, kind):
        raise UsageError(f"the {recipe} recipe trains {kind.__name__} models, not {type(net).__name__}")
    return net


def kl(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(target || softmax(logits))."""
    return F.kl_div(F.log_softmax(logits, 1), target_probs, reduction="none").sum(1)


class Recipe:
    name = "recipe"
    adversarial = False  # adversarial recipes keep the epoch with the best robust validation accuracy

    def prepare(self, net: nn.Module, x_train: torch.Tensor, config: TrainConfig) -> None:
        """Once, before training (skipped when resuming: the state already holds its result)."""

    def start_epoch(self, net: nn.Module, epoch: int, config: TrainConfig) -> None:
        """At the start of every epoch, also after resuming."""

    def loss(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits whose accuracy the progress log reports)."""
        raise NotImplementedError


RECIPES: Registry[Recipe] = Registry("training recipe")


def register_recipe(name: str) -> Callable[[type[Recipe]], type[Recipe]]:
    def wrap(cls: type[Recipe]) -> type[Recipe]:
        cls.name = name
        RECIPES.add(name, cls())
        return cls

    return wrap


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
        x_adv = maximize(ctx.model, x, lambda lg, rows: F.cross_entropy(lg, y[rows], reduction="none"), ctx.threat(), 1, 1.25 * eps, idx, ctx.seed("fast-at"))
        logits = ctx.model(x_adv)
        return F.cross_entropy(logits, y), logits


@register_recipe("trades")
class Trades(Recipe):
    """CE(f(x), y) + beta KL(f(x) || f(x')) with x' maximizing the KL (Zhang et al.; beta = 1/lambda)."""

    adversarial = True

    def loss(self, ctx: StepContext, x: Tensor, y: Tensor, idx: Tensor) -> Loss:
        return trades_loss(ctx, x, ctx.trades_adversary(x, idx), y)


def trades_loss(ctx: StepContext, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = ctx.model(x)
    robust = kl(F.softmax(logits, 1), ctx.model(x_adv)).mean()
    return F.cross_entropy(logits, y) + ctx.config.trades_beta * robust, logits


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
        return F.cross_entropy(logits_adv, y) + ctx.config.pairing_gamma * kl(F.softmax(logits_adv, 1), logits).mean(), logits_adv


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
        boosted = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), runner_up)
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


def _perturbable(net: nn.Module) -> list[Tensor]:
    """The weights AWP perturbs: every conv/linear weight matrix (not biases or norms)."""
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad]


def perturb_weights(ctx: StepContext, adversarial_loss: Callable[[], torch.Tensor]) -> None:
    """AWP (Wu et al. 2020): one normalized ascent step on the weights, v = gamma ||w|| g / ||g||
    per layer, applied now and removed after the optimizer step."""
    weights = _perturbable(ctx.net)
    grads = torch.autograd.grad(adversarial_loss(), weights, allow_unused=True)
    deltas = []
    with torch.no_grad():
        for w, g in zip(weights, grads):
            d = torch.zeros_like(w) if g is None else ctx.config.awp_gamma * w.norm() * g / (g.norm() + 1e-20)
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
                raise RuntimeError("the polarizer's regularizer needs the front end's activations of a training forward pass")
            bump = bump_b1(z, ctx.config.polarizer_sigma1) if stage == 0 else bump_b2(z, polarizer.quantizer.threshold, ctx.config.polarizer_sigma2)
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
        atoms = learn_dictionary(x_train[:5000].cpu(), coder.dictionary.shape[0], patch, coder.stride, seed=config.seed, iterations=config.dictionary_steps)
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
        pick = (torch.rand(len(x), generator=gen) < ctx.config.gauss_q).to(x.device).view(-1, 1, 1, 1)
        logits = _base(ctx)(_smoothing_noise(ctx, torch.where(pick, x_adv, x)))
        return F.cross_entropy(logits, y), logits
