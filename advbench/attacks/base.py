"""The attack contract: the base class validates, projects, and recomputes success itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from advbench.attacks.wrappers import AttackedModel, view_for
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel

# What a stage's breaks say about the evaluation (the checks read them, as AutoAttack reads
# whether Square broke what APGD left): a cross-entropy gradient attack, a scale-invariant
# margin-loss one, a single gradient step, a gradient-free search, or anything else.
CE, MARGIN_LOSS, SINGLE_STEP, BLACK_BOX, OTHER = "ce", "margin", "single-step", "black-box", "other"


@dataclass(frozen=True)
class StageRecord:
    """What one stage of an attack did on the samples of one call (bool masks over them).

    `late`: samples first broken in the last quarter of the stage's iterations: the attack was
    still breaking when it stopped (None where it does not stop at its first success, e.g. on
    models random at inference)."""

    name: str
    kind: str
    attacked: torch.Tensor
    broken: torch.Tensor
    late: torch.Tensor | None = None

    def at(self, positions: torch.Tensor, size: int) -> "StageRecord":
        """The record over a batch of `size` samples, this call's samples sitting at `positions`."""

        def spread(mask: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(size, dtype=torch.bool, device=mask.device)
            out[positions] = mask
            return out

        return StageRecord(
            self.name,
            self.kind,
            spread(self.attacked),
            spread(self.broken),
            None if self.late is None else spread(self.late),
        )


@dataclass
class AttackResult:
    """One result type for every attack: per-sample adversarial inputs and outcomes."""

    x_adv: torch.Tensor
    success: torch.Tensor  # bool: the exact model misclassifies x_adv (random models: by vote)
    distance: torch.Tensor  # perturbation norm in the threat model's norm
    steps: torch.Tensor  # int: gradient steps (or queries) spent per sample
    adv_pred: torch.Tensor  # int: the exact model's prediction on x_adv
    # Minimum-norm attacks: each sample's smallest successful perturbation norm (inf where none was found).
    min_distance: torch.Tensor | None = None
    stages: tuple[
        StageRecord, ...
    ] = ()  # what each stage did (one record for a single-stage attack)
    # Models random at inference: the vote at x_adv (`models.vote`); 0 draws: not judged here
    # (a minimum-norm result read at a budget it did not fit).
    correct_draws: torch.Tensor | None = None
    draws: torch.Tensor | None = None

    def take(self, rows: torch.Tensor) -> "AttackResult":
        """The result on `rows` of its samples (stage records are per call and not kept)."""

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[rows]

        return AttackResult(
            self.x_adv[rows],
            self.success[rows],
            self.distance[rows],
            self.steps[rows],
            self.adv_pred[rows],
            pick(self.min_distance),
            (),
            pick(self.correct_draws),
            pick(self.draws),
        )


class Attack:
    """Base of fixed-epsilon attacks. Subclasses implement `run`; `__call__` is the contract.

    An attack holds only its frozen config. How it reaches a particular model (BPDA surrogates,
    EOT draws, a transfer surrogate) belongs to the model as attacked: pass an
    `advbench.attacks.wrappers.AttackedModel`, or a plain `RobustModel` to get the adaptive
    default (`view_for`: EOT on models random at inference, BPDA where there are surrogates).
    """

    name: ClassVar[str] = "attack"
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    uses_gradients: ClassVar[bool] = False
    # Whether `AttackResult.steps` already counts every EOT draw (forward+backward passes); where
    # not, a report multiplies the steps by the view's EOT draws.
    steps_count_eot: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config  # a frozen dataclass of the attack's options: all an attack holds

    def view(
        self, model: RobustModel | AttackedModel, eot_draws: int | None = None, bpda: bool = True
    ) -> AttackedModel:
        """The model as this attack will see it (the adaptive default unless already a view)."""
        return view_for(model, self.uses_gradients, eot_draws, bpda)

    def adaptations(self, model: AttackedModel) -> dict[str, object]:
        """What adaptive evaluation uses against `model`; stored with the run, part of its identity."""
        return model.adaptations()

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x_adv, steps per sample)."""
        raise NotImplementedError

    def stage_kind(self) -> str:
        """What this attack's breaks say to the checks (`CE`, `MARGIN_LOSS`, ...)."""
        return BLACK_BOX if not self.uses_gradients else OTHER

    def iterations(self) -> int | None:
        """Iterations per run when the attack stops each sample at its first success, else None."""
        return None

    def record(self, view: AttackedModel, result: AttackResult) -> tuple[StageRecord, ...]:
        """This call as one stage: which samples it broke, and which only in its last quarter of iterations."""
        attacked = torch.ones_like(result.success)
        iterations = self.iterations()
        late = None
        if iterations is not None and not view.stochastic:
            late = result.success & (result.steps > int(view.eot_draws) * (3 * iterations // 4))
        return (StageRecord(self.name, self.stage_kind(), attacked, result.success, late),)

    def __call__(
        self,
        model: RobustModel | AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor | None = None,
        seed: int = 0,
        **run_options: Any,
    ) -> AttackResult:
        """Validate, `run`, project, judge with the exact model. `run_options` go to `run`
        (e.g. APGD's per-sample `targets`)."""
        if threat.norm.value not in self.norms:
            raise UsageError(
                f"attack {self.name!r} does not support the {threat.norm.value} norm (supports {', '.join(self.norms)})"
            )
        view = self.view(model)
        view.check_inputs(x)
        if y.shape != (len(x),):
            raise UsageError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}")
        if indices is None:
            indices = torch.arange(len(x), device=x.device)
        x_adv, steps, stages = self.run_staged(view, x, y, threat, indices, seed, **run_options)
        result = self.judge(view, x, y, threat, x_adv, steps)
        result.stages = stages if stages is not None else self.record(view, result)
        return result

    def run_staged(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
        **run_options: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[StageRecord, ...] | None]:
        """`run`, plus the records of its stages when it has several (None: the call is one stage)."""
        x_adv, steps = self.run(model, x, y, threat, indices, seed, **run_options)
        return x_adv, steps, None

    @staticmethod
    def judge(
        view: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        x_adv: torch.Tensor,
        steps: torch.Tensor,
    ) -> AttackResult:
        """The result of `run`'s output: projected into the threat model, success judged by the
        exact model (a vote on a random model)."""
        x_adv = threat.project(x, x_adv.detach())
        verdict = view.judge(x_adv, y)
        return AttackResult(
            x_adv,
            verdict.wrong,
            threat.distance(x, x_adv),
            steps,
            verdict.prediction,
            correct_draws=verdict.correct_draws,
            draws=verdict.draws,
        )


class MinimumNormAttack(Attack):
    """Base of attacks that look for the smallest adversarial perturbation (DeepFool, C&W, FMN, DDN...).

    Subclasses implement `run_unbounded`. `minimize` runs it once and re-checks every reported
    success with a clean forward pass, so accuracy at any eps follows from one run
    (success and min_distance <= eps); `__call__` with a threat model uses the same result.
    """

    minimum_norm: ClassVar[bool] = True

    @staticmethod
    def unbounded_start(
        model: AttackedModel, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_adv = a copy of x, zero steps, indices of the samples worth attacking: those the
        model still classifies correctly; misclassified ones cost nothing and keep x)."""
        todo = (~model.judge(x, y).wrong).nonzero().view(-1)
        return x.clone(), torch.zeros(len(x), dtype=torch.int64, device=x.device), todo

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x_adv in [0,1], the smallest adversarial found or x where none; steps or queries per sample)."""
        raise NotImplementedError

    def minimize(
        self,
        model: RobustModel | AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm | str,
        indices: torch.Tensor | None = None,
        seed: int = 0,
    ) -> AttackResult:
        norm = Norm(norm)
        if norm.value not in self.norms:
            raise UsageError(
                f"attack {self.name!r} does not support the {norm.value} norm (supports {', '.join(self.norms)})"
            )
        view = self.view(model)
        view.check_inputs(x)
        if indices is None:
            indices = torch.arange(len(x), device=x.device)
        x_adv, steps = self.run_unbounded(view, x, y, norm, indices, seed)
        x_adv = x_adv.detach().clamp(0.0, 1.0)
        verdict = view.judge(x_adv, y)
        success = verdict.wrong
        distance = ThreatModel(norm, 0.0).distance(x, x_adv)
        min_distance = torch.where(success, distance, torch.full_like(distance, float("inf")))
        return AttackResult(
            x_adv,
            success,
            distance,
            steps,
            verdict.prediction,
            min_distance,
            correct_draws=verdict.correct_draws,
            draws=verdict.draws,
        )

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv, steps = self.run_unbounded(model, x, y, threat.norm, indices, seed)
        # Beyond the budget the attack failed at this eps: the clean input stands in.
        far = threat.distance(x, x_adv) > threat.eps * (1 + 1e-6)
        return torch.where(far.view(-1, *([1] * (x.dim() - 1))), x, x_adv), steps

    def sweep(
        self,
        model: RobustModel | AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threats: list[ThreatModel],
        indices: torch.Tensor | None = None,
        seed: int = 0,
    ) -> list[AttackResult]:
        """Run once, read every budget (Foolbox 3's minimization attacks clipped to each epsilon):
        one fixed-eps result per threat model, all of one norm."""
        norms = {t.norm for t in threats}
        if len(norms) != 1:
            raise UsageError("a minimum-norm sweep needs threat models of one norm")
        result = self.minimize(model, x, y, norms.pop(), indices, seed)
        return [self.at_eps(result, x, y, threat) for threat in threats]

    @staticmethod
    def at_eps(
        result: AttackResult, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel
    ) -> AttackResult:
        """The fixed-eps view of a `minimize` result: successes whose smallest norm fits the budget
        (elsewhere the clean input stands, predicted as its label: the engine attacks only correct samples)."""
        assert result.min_distance is not None
        fits = result.min_distance <= threat.eps * (1 + 1e-6)
        shape = (-1, *([1] * (x.dim() - 1)))
        x_adv = torch.where(fits.view(shape), result.x_adv, x)
        adv_pred = torch.where(fits, result.adv_pred, y)
        correct_draws = draws = None
        if result.draws is not None and result.correct_draws is not None:
            # Where the found point does not fit, the clean input stands: not judged here (0 draws).
            correct_draws = torch.where(fits, result.correct_draws, 0)
            draws = torch.where(fits, result.draws, 0)
        return AttackResult(
            x_adv,
            fits,
            threat.distance(x, x_adv),
            result.steps,
            adv_pred,
            result.min_distance,
            correct_draws=correct_draws,
            draws=draws,
        )
