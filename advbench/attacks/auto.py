"""`auto`: the default strong, adaptive and fast evaluation, a still-robust ensemble inside one attack.

Why: AutoAttack (standard) spends ~10^4 model passes on every robust sample (APGD-CE, APGD-T
over 9 targets, FAB-T over 9 targets, Square with 5000 queries) and its components run every
sample to the end. On models without gradient masking the later components rarely break
anything APGD did not. `auto` keeps AutoAttack's idea, cheapest first, each stage only on the
samples no earlier stage broke, with native batched attacks that stop per sample:

1. APGD on cross-entropy (`apgd`, `ce_steps`, `ce_restarts`);
2. APGD on the targeted DLR loss over the `targets` most likely wrong classes (`t_steps`,
   scale-invariant: catches what CE misses on models with huge or saturated logits). By default
   (`target_ranking="both"`) the targets are the union of the `targets` likeliest wrong classes
   at the clean input (AutoAttack's choice, `"clean"`) and at the point where stage 1 left the
   sample (`"attacked"`): after cross-entropy ascent other classes can be the near ones, and
   each ranking alone missed images the other broke (docs/attacks.md);
3. Square Attack (`square_queries`, Linf and L2): a score-based search for what gradients cannot
   break (masked or obfuscated gradients). Skipped on models random at inference, as
   AutoAttack's `rand` version does: there a single lucky query proves nothing. On models
   attacked through BPDA surrogates the gradients are approximations by construction, so
   Square gets AutoAttack's own budget (`bpda_square_queries`, 5000): on pfe-madry, 500
   queries left 1.5 points more robust accuracy than AutoAttack standard (docs/performance.md);
4. Optional (off by default, `boundary_margin=0`): APGD-T near the boundary: on the survivors
   whose lowest margin found is below `boundary_margin` of their clean margin, APGD-T
   (`boundary_steps`) over up to `boundary_targets` wrong classes stage 2 did not attack (A3's
   idea, Liu et al., CVPR 2022). Measured on the panel at 0.25 it cost 20-40 % of `auto`'s
   time and caught one more of AutoAttack's breaks in five models (docs/attacks.md), so it is
   not the default.

On a model random at inference (`random_stages`) the stages are AutoAttack `rand`'s: APGD on
cross-entropy, then APGD on the untargeted DLR loss (`t_steps`), with `random_eot` EOT draws per
gradient (unless --eot says otherwise). Chosen for time at no measured loss, on pni-w (64 images,
Linf 0.1, every point judged by a vote; `benchmarks/random_stages.py`, exploratory, differences of
an image or two untested): CE + untargeted DLR left the same robust accuracy as CE + targeted DLR
over 3 classes (45.3 %) in 15 % less time, the deterministic stages 48.4 % at 1.9x the time; 10
EOT draws left the same as 5 at 1.5x the time (docs/notes/performance.md). On a smoothed model
(each pass averages M noisy copies) `smoothed_eot` draws: on cpni-w-smooth-soft (M = 8, 100
images) 2 draws left every image's outcome as 5 did in 48 % of the time, 1 draw was no faster.
A sample leaves a stage when the step's draws nominate it and a vote confirms it (`apgd`).

A stage budget of 0 (`targets=0`, `square_queries=0`, `boundary_margin=0`) drops that stage. Every stage's seed is
`derive_seed(seed, "auto", stage)`; its randomness is index-seeded, so a sample's result never
depends on its batch. A sample broken by a stage keeps that stage's adversarial point (success
is judged by the exact model); one no stage breaks keeps the stage point of lowest margin, the
per-sample worst case. `steps` adds APGD gradient steps (times EOT draws) and Square queries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from advbench.attacks.apgd import APGD, APGDConfig, likeliest_wrong_classes
from advbench.attacks.base import Attack, StageRecord
from advbench.attacks.blackbox import Square, SquareConfig
from advbench.attacks.losses import margin
from advbench.attacks.registry import keyed_unless_default, register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel

TARGET_RANKINGS = ("both", "attacked", "clean")
RANDOM_STAGES = ("ce+dlr", "ce+dlr-targeted")
RANKED, BOUNDARY = "ranked", "boundary"  # how a targeted stage picks its classes


@dataclass(frozen=True)
class Stage:
    """One stage of `auto`: its attack and, for APGD-T, how it picks each sample's targets
    (`RANKED`: stage 2's likeliest wrong classes; `BOUNDARY`: stage 4's, on near-boundary samples only)."""

    name: str
    attack: Attack
    targets: str | None = None


@dataclass(frozen=True)
class AutoConfig:
    ce_steps: int = 50
    ce_restarts: int = 1
    targets: int = (
        3  # APGD-T target classes per ranking (the most likely wrong ones); 0 skips the stage
    )
    t_steps: int = 50
    t_restarts: int = 1
    square_queries: int = 500  # 0 skips the stage; raise it (e.g. 5000) where gradients are masked
    bpda_square_queries: int = 5000  # Square's budget where gradients go through BPDA surrogates (unless square_queries is 0)
    early_stop: bool = True
    target_ranking: str = "both"  # APGD-T's targets: likeliest at the clean input, at the stage-1 point, or both (union)
    boundary_margin: float = 0.0  # >0: survivors whose lowest margin found is below this fraction of their clean margin get stage 4 (off by default: docs/attacks.md)
    boundary_targets: int = 9  # stage 4: APGD-T over the likeliest wrong classes stage 2 did not attack, up to this many
    boundary_steps: int = 100
    # On models random at inference: EOT draws per gradient (unless --eot), and the stages: APGD-CE
    # then untargeted APGD-DLR, or "ce+dlr-targeted" (as on other models). Keyed unless default:
    # runs stored before they existed keep their identity.
    random_eot: int = keyed_unless_default(5)
    random_stages: str = keyed_unless_default("ce+dlr")
    # EOT draws on a random model whose forward pass already averages noisy copies (randomized
    # smoothing, `RobustModel.averaged_copies` > 1): each draw's gradient averages M of them.
    smoothed_eot: int = keyed_unless_default(2)

    def __post_init__(self) -> None:
        if self.target_ranking not in TARGET_RANKINGS:
            raise UsageError(
                f"auto target_ranking is one of {', '.join(TARGET_RANKINGS)}, not {self.target_ranking!r}"
            )
        if (
            min(self.ce_steps, self.ce_restarts, self.t_steps, self.t_restarts, self.boundary_steps)
            < 1
        ):
            raise UsageError(
                "auto needs ce_steps, ce_restarts, t_steps, t_restarts and boundary_steps >= 1"
            )
        if (
            min(self.targets, self.square_queries, self.bpda_square_queries, self.boundary_targets)
            < 0
        ):
            raise UsageError(
                "auto targets, square_queries, bpda_square_queries and boundary_targets must be >= 0 (0 skips the stage)"
            )
        if min(self.random_eot, self.smoothed_eot) < 1:
            raise UsageError(
                f"auto random_eot and smoothed_eot must be at least 1, got {self.random_eot} and {self.smoothed_eot}"
            )
        if self.random_stages not in RANDOM_STAGES:
            raise UsageError(
                f"auto random_stages is one of {', '.join(RANDOM_STAGES)}, not {self.random_stages!r}"
            )
        if not 0 <= self.boundary_margin <= 1:
            raise UsageError(
                f"auto boundary_margin is a fraction of the clean margin in [0, 1] (0 skips the stage), not {self.boundary_margin}"
            )


@register_attack(
    "auto",
    config=AutoConfig,
    family="ensemble",
    description="Fast default ensemble: native APGD-CE, then APGD targeted DLR, then Square, each on what earlier stages left robust; per-sample early stopping",
)
class Auto(Attack):
    name = "auto"
    norms = ("linf", "l2")
    uses_gradients = True
    steps_count_eot = True

    def __init__(self, config: AutoConfig = AutoConfig()) -> None:
        self.config = config

    def view(
        self, model: RobustModel | AttackedModel, eot_draws: int | None = None, bpda: bool = True
    ) -> AttackedModel:
        """The adaptive default, with `random_eot` EOT draws on a model random at inference
        (`smoothed_eot` where one forward pass already averages several noisy copies)."""
        if eot_draws is None and not isinstance(model, AttackedModel) and model.stochastic:
            smoothed = model.averaged_copies > 1
            eot_draws = self.config.smoothed_eot if smoothed else self.config.random_eot
        return super().view(model, eot_draws, bpda)

    def stages(self, model: AttackedModel) -> list[Stage]:
        """The stages this config runs against `model`, cheapest first."""
        cfg = self.config
        if model.stochastic and cfg.random_stages == "ce+dlr":
            return [
                Stage("apgd-ce", APGD(APGDConfig(steps=cfg.ce_steps, restarts=cfg.ce_restarts))),
                Stage(
                    "apgd-dlr",
                    APGD(APGDConfig(steps=cfg.t_steps, restarts=cfg.t_restarts, loss="dlr")),
                ),
            ][: 2 if model.num_classes >= 3 else 1]
        out = [
            Stage(
                "apgd-ce",
                APGD(
                    APGDConfig(
                        steps=cfg.ce_steps,
                        restarts=cfg.ce_restarts,
                        loss="ce",
                        early_stop=cfg.early_stop,
                    )
                ),
            )
        ]
        targeted = model.num_classes >= 4
        if cfg.targets and targeted:
            apgd_t = APGD(
                APGDConfig(
                    steps=cfg.t_steps,
                    restarts=cfg.t_restarts,
                    loss="dlr-targeted",
                    early_stop=cfg.early_stop,
                )
            )
            out.append(Stage("apgd-t", apgd_t, RANKED))
        queries = cfg.square_queries
        if queries and model.bpda and model.has_bpda:
            queries = max(queries, cfg.bpda_square_queries)
        if queries and not model.stochastic:
            out.append(Stage("square", Square(SquareConfig(n_queries=queries))))
        if cfg.boundary_margin and cfg.boundary_targets and targeted:
            boundary = APGD(
                APGDConfig(steps=cfg.boundary_steps, loss="dlr-targeted", early_stop=cfg.early_stop)
            )
            out.append(Stage("apgd-t-boundary", boundary, BOUNDARY))
        return out

    def target_classes(
        self, model: AttackedModel, x: torch.Tensor, x_attacked: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Stage 2's target classes per sample, -1 padded: the `targets` likeliest wrong ones at
        `x` ("clean"), at `x_attacked` ("attacked"), or both interleaved (attacked first), each once."""
        k = min(self.config.targets, model.num_classes - 1)
        with torch.no_grad():
            if self.config.target_ranking == "clean":
                return likeliest_wrong_classes(model(x), y, k)
            ranked = likeliest_wrong_classes(model(x_attacked), y, k)
            if self.config.target_ranking == "both":
                ranked = torch.stack([ranked, likeliest_wrong_classes(model(x), y, k)], 2).flatten(
                    1
                )
        return _first_occurrences(ranked)

    def boundary_classes(
        self, model: AttackedModel, x_attacked: torch.Tensor, y: torch.Tensor, tried: torch.Tensor
    ) -> torch.Tensor:
        """Stage 4's target classes per sample, -1 padded: up to `boundary_targets` of the wrong
        classes not in `tried` (stage 2's, -1 padded), likeliest at `x_attacked` first."""
        with torch.no_grad():
            ranked = likeliest_wrong_classes(model(x_attacked), y, model.num_classes - 1)
        done = (ranked[:, :, None] == tried[:, None, :]).any(2)
        return _first_occurrences(ranked.masked_fill(done, -1))[:, : self.config.boundary_targets]

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv, steps, _ = self.run_staged(model, x, y, threat, indices, seed)
        return x_adv, steps

    def run_staged(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
        **run_options: object,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[StageRecord, ...]]:
        """The stages in turn, each on what no earlier stage broke; with a record of each stage
        over the batch (which samples it attacked, broke, broke late) for the checks."""
        n = len(x)
        x_adv = x.clone()
        steps = torch.zeros(n, dtype=torch.int64, device=x.device)
        records: list[StageRecord] = []
        if threat.eps == 0 or n == 0:
            return x_adv, steps, ()
        still = torch.ones(n, dtype=torch.bool, device=x.device)
        worst = torch.full(
            (n,), float("inf"), device=x.device
        )  # lowest margin seen on unbroken samples
        tried = torch.full(
            (n, 0), -1, dtype=torch.int64, device=x.device
        )  # stage 2's target classes
        for stage in self.stages(model):
            todo = still.nonzero().view(-1)
            if stage.targets == BOUNDARY and len(todo):
                # The extra budget goes where it can change the answer: samples whose margin the
                # earlier stages brought close to 0 relative to where it started.
                near = worst[todo] < self.config.boundary_margin * _mean_margin(
                    model, x[todo], y[todo]
                )
                todo = todo[near]
            if len(todo) == 0:
                continue
            options = {}
            if stage.targets == RANKED:
                # x_adv holds each unbroken sample's point of lowest margin so far: stage 1's.
                options["targets"] = self.target_classes(model, x[todo], x_adv[todo], y[todo])
                tried = torch.full(
                    (n, options["targets"].shape[1]), -1, dtype=torch.int64, device=x.device
                )
                tried[todo] = options["targets"]
            elif stage.targets == BOUNDARY:
                options["targets"] = self.boundary_classes(model, x_adv[todo], y[todo], tried[todo])
            result = stage.attack(
                model,
                x[todo],
                y[todo],
                threat,
                indices[todo],
                derive_seed(seed, "auto", stage.name),
                **options,
            )
            records += [replace(r.at(todo, n), name=stage.name) for r in result.stages]
            steps[todo] += result.steps
            broke = result.success
            x_adv[todo[broke]] = result.x_adv[broke]
            still[todo[broke]] = False
            rest = todo[~broke]
            if len(rest):
                m = _mean_margin(model, result.x_adv[~broke], y[rest])
                lower = m < worst[rest]
                x_adv[rest[lower]] = result.x_adv[~broke][lower]
                worst[rest] = torch.minimum(worst[rest], m)
        return x_adv, steps, tuple(records)


def _first_occurrences(ranked: torch.Tensor) -> torch.Tensor:
    """Each row's classes (-1 = none) with repeats and -1 moved to the end as -1, order kept;
    columns only as many as the fullest row needs."""
    j = torch.arange(ranked.shape[1], device=ranked.device)
    repeat = ((ranked[:, :, None] == ranked[:, None, :]) & (j[None, :] < j[:, None])[None]).any(
        2
    ) | (ranked < 0)
    order = repeat.int().argsort(dim=1, stable=True)
    ranked = ranked.masked_fill(repeat, -1).gather(1, order)
    return ranked[:, : int((ranked >= 0).sum(1).max())]


@torch.no_grad()
def _mean_margin(model: AttackedModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Margin of the logits averaged over the view's EOT draws (one pass on deterministic models)."""
    draws = int(model.eot_draws) if model.stochastic else 1
    logits = sum(model(x) for _ in range(draws)) / draws
    return margin(logits, y)
