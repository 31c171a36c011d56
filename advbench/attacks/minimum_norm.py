"""Minimum-norm attacks: DeepFool, Carlini & Wagner L2, Fast Minimum-Norm (FMN) and DDN.

Each looks for the smallest perturbation that changes the prediction, so one run yields the
accuracy at every eps (`MinimumNormAttack.minimize` / `at_eps`). All are batched: the loops run
over iterations only, each over the samples still being attacked. Samples the model already
misclassifies are never attacked (their minimum norm is 0), and where no adversarial example is
found the clean input is returned. The update rules follow Foolbox 3.3 (see each class for the
few places where we deliberately differ), so results can be checked against it.

DeepFool and C&W live here; FMN and DDN (`fmn_ddn`) live in their own module and are re-exported
here, so importing this module registers all four.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import MinimumNormAttack
from advbench.attacks.fmn_ddn import DDN, FMN, DDNConfig, FMNConfig
from advbench.attacks.losses import margin
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError, require_positive
from advbench.core.tensors import partition, per_sample
from advbench.core.threat import Norm, batch_norm

__all__ = [
    "DDN",
    "FMN",
    "CWConfig",
    "CarliniWagnerL2",
    "DDNConfig",
    "DeepFool",
    "DeepFoolConfig",
    "FMNConfig",
]


# --- DeepFool -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepFoolConfig:
    steps: int = 50
    overshoot: float = 0.02
    candidates: int = 10  # the top-k classes (at the clean input) considered for the boundary

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError("deepfool needs steps >= 1")
        if self.candidates < 2:
            raise UsageError(
                "deepfool needs candidates >= 2 (the predicted class and at least one other)"
            )
        if not (math.isfinite(self.overshoot) and self.overshoot >= 0):
            raise UsageError("deepfool overshoot must be a number >= 0")


@register_attack(
    "deepfool",
    config=DeepFoolConfig,
    family="minimum-norm",
    description="DeepFool (Moosavi-Dezfooli et al.), logit differences, top-k classes",
)
class DeepFool(MinimumNormAttack):
    """Foolbox 3 `L2DeepFoolAttack` / `LinfDeepFoolAttack` semantics: linearize the logit differences to
    the top-k classes, step to the nearest linearized boundary (+1e-4), and apply the accumulated step
    times (1 + overshoot) to the clean input, clipped to [0,1]. A sample stops once misclassified."""

    name = "deepfool"
    norms = ("l2", "linf")

    def __init__(self, config: DeepFoolConfig = DeepFoolConfig()) -> None:
        self.config = config

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        x_adv = x.clone()
        with torch.no_grad():
            logits = model(x)
        k = min(cfg.candidates, logits.shape[1])
        classes = logits.argsort(dim=1, descending=True)[:, :k]  # column 0: the clean prediction
        p_total = torch.zeros_like(x)
        active = (logits.argmax(1) == y).nonzero().view(-1)
        for _ in range(cfg.steps):
            if len(active) == 0:
                break
            xa = x_adv[active].requires_grad_(True)
            logits = model(xa)
            fooled, kept = partition(logits.argmax(1) != y[active])  # the step's one host sync
            if len(fooled):
                active, logits = active[kept], logits[kept]
                if len(active) == 0:
                    break
            cls = classes[active]
            diffs = logits.gather(1, cls[:, 1:]) - logits.gather(
                1, cls[:, :1]
            )  # (m, k-1), negative
            grads = torch.stack(
                [
                    torch.autograd.grad(diffs[:, j].sum(), xa, retain_graph=j < k - 2)[0]
                    for j in range(k - 1)
                ],
                dim=1,
            )
            if len(fooled):
                grads = grads[kept]
            flat = grads.flatten(2)
            dual = flat.norm(dim=2) if norm is Norm.L2 else flat.abs().sum(dim=2)
            distances = diffs.detach().abs() / (dual + 1e-8)
            best = distances.argmin(dim=1)
            rows = torch.arange(len(active), device=x.device)
            dist, grad = distances[rows, best] + 1e-4, grads[rows, best]
            if norm is Norm.L2:
                step = per_sample(dist / (batch_norm(grad, Norm.L2) + 1e-8), grad) * grad
            else:
                step = per_sample(dist, grad) * grad.sign()
            p_total[active] += step
            x_adv[active] = (x[active] + (1.0 + cfg.overshoot) * p_total[active]).clamp(0.0, 1.0)
            steps[active] += 1
        if len(active):
            # The last step is not checked inside the loop; a sample it did not break keeps x.
            failed = active[model.predict(x_adv[active]) == y[active]]
            x_adv[failed] = x[failed]
        return x_adv, steps


# --- Carlini & Wagner L2 ------------------------------------------------------------------------


@dataclass(frozen=True)
class CWConfig:
    binary_search_steps: int = 9
    steps: int = 1000  # Adam steps per binary-search step (Foolbox's default is 10000)
    stepsize: float = 0.01
    confidence: float = 0.0
    initial_const: float = 0.001
    abort_early: bool = True

    def __post_init__(self) -> None:
        if self.binary_search_steps < 1 or self.steps < 1:
            raise UsageError("cw needs binary_search_steps >= 1 and steps >= 1")
        require_positive("cw", stepsize=self.stepsize, initial_const=self.initial_const)
        if not (math.isfinite(self.confidence) and self.confidence >= 0):
            raise UsageError("cw confidence must be a number >= 0")


@register_attack(
    "cw",
    config=CWConfig,
    family="minimum-norm",
    description="Carlini & Wagner L2 (tanh space, Adam, binary search over the constant c)",
)
class CarliniWagnerL2(MinimumNormAttack):
    """Foolbox 3 `L2CarliniWagnerAttack` semantics, with one difference: abort-early is decided per
    sample (its own loss stalled over a tenth of the steps), not on the loss summed over the batch,
    so a sample's result does not depend on the batch it runs in."""

    name = "cw"
    norms = ("l2",)

    def __init__(self, config: CWConfig = CWConfig()) -> None:
        self.config = config

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        best_adv, steps, todo = self.unbounded_start(model, x, y)
        if len(todo) == 0:
            return best_adv, steps
        x0, y0 = x[todo], y[todo]
        n = len(todo)
        w0 = torch.atanh((2 * x0 - 1) * 0.999999)  # attack space: x = (tanh(w) + 1) / 2
        x_rec = (torch.tanh(w0) + 1) / 2
        best_norm = torch.full((n,), float("inf"), device=x.device)
        best = x0.clone()
        consts = torch.full((n,), cfg.initial_const, dtype=torch.float64, device=x.device)
        lower = torch.zeros_like(consts)
        upper = torch.full_like(consts, float("inf"))
        check_every = math.ceil(cfg.steps / 10)
        beta1, beta2 = 0.9, 0.999
        for search in range(cfg.binary_search_steps):
            if search == cfg.binary_search_steps - 1 and cfg.binary_search_steps >= 10:
                consts = upper.clamp(max=1e10)  # the last step repeats the best constant found
            c = consts.to(x.dtype)
            delta, m, v = torch.zeros_like(x0), torch.zeros_like(x0), torch.zeros_like(x0)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            previous = torch.full((n,), float("inf"), device=x.device)
            active = torch.arange(n, device=x.device)
            for step in range(cfg.steps):
                d = delta[active].requires_grad_(True)
                xa = (torch.tanh(w0[active] + d) + 1) / 2
                logits = model(xa)
                ya = y0[active]
                adv_loss = (margin(logits, ya) + cfg.confidence).clamp_min(0) * c[active]
                loss = adv_loss + (xa - x_rec[active]).flatten(1).pow(2).sum(dim=1)
                (grad,) = torch.autograd.grad(loss.sum(), d)
                t = step + 1
                m[active] = beta1 * m[active] + (1 - beta1) * grad
                v[active] = beta2 * v[active] + (1 - beta2) * grad**2
                m_hat, v_hat = m[active] / (1 - beta1**t), v[active] / (1 - beta2**t)
                delta[active] = delta[active] - cfg.stepsize * m_hat / (v_hat.sqrt() + 1e-8)
                steps[todo[active]] += 1
                loss = loss.detach()
                go_on = torch.ones(len(active), dtype=torch.bool, device=x.device)
                if cfg.abort_early and step % check_every == 0:
                    go_on = (
                        loss <= 0.9999 * previous[active]
                    )  # no progress: stop this sample's Adam run
                    previous[active] = loss
                logits, xa = logits.detach(), xa.detach()
                # Adversarial with the required confidence: the label logit plus it still loses.
                is_adv = go_on & (
                    (logits + cfg.confidence * F.one_hot(ya, logits.shape[1])).argmax(1) != ya
                )
                found[active] |= is_adv
                dist = (xa - x0[active]).flatten(1).norm(dim=1)
                better = is_adv & (dist < best_norm[active])
                best_norm[active] = torch.where(better, dist, best_norm[active])
                best[active] = torch.where(per_sample(better, xa), xa, best[active])
                if cfg.abort_early and step % check_every == 0:
                    # Rows leave only at these checks: one host sync per check, none between.
                    active = active[partition(~go_on)[1]]
                    if len(active) == 0:
                        break
            upper = torch.where(found, consts, upper)
            lower = torch.where(found, lower, consts)
            consts = torch.where(upper.isinf(), consts * 10, (lower + upper) / 2)
        best_adv[todo] = best
        return best_adv, steps
