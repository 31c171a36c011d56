"""AutoAttack (Croce & Hein, ICML 2020) run through its authors' own package, `pyautoattack`.

We do not reimplement it: every attack here builds `pyautoattack.AutoAttack` with the model
(the RobustModel itself: [0,1] inputs, logits out), the threat model's norm and eps, our run
seed and the whole given batch, and returns what `run_standard_evaluation` returns. `run` is
bit-identical (torch.equal) to calling the package directly with the same arguments; after it,
the base class projects into the eps-ball and [0,1] and recomputes success, which leaves
predictions, success and robust accuracy exactly as AutoAttack's but moves some coordinates
of x_adv by float rounding: `x + ((x_adv - x) clamped)` is not always x_adv bit for bit (a few
1e-9 in Linf), and AutoAttack's L1 outputs can overshoot eps by ~1e-7 relative, which the
projection corrects. tests/test_autoattack.py pins both facts.

- `autoattack` (version standard | plus | rand): the ensemble, each later attack run only on
  the points no earlier one broke. `rand` is the version for stochastic models (EOT, 20 draws
  per gradient); AutoAttack's own checks flag a random model evaluated with another version.
- `apgd-ce`, `apgd-t`, `fab-t`, `square-aa`: AutoAttack version='custom' with that one attack
  and the package's own defaults for it (e.g. APGD-CE 5 restarts, Square 5000 queries).

The package reseeds the global torch RNG (`torch.manual_seed(seed)` before each attack). We run
it inside `torch.random.fork_rng`, seeded with our run seed, so the caller's RNG state is left as
it was and a stochastic model's pre-attack forward passes are reproducible too. Its progress
messages (logger 'auto-attack') are passed to this module's logger at DEBUG.

Steps: pyautoattack does not report per-sample iterations or queries, so `steps` is 0.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pyautoattack import AutoAttack

from advbench.attacks.base import Attack
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel

log = logging.getLogger(__name__)

AA_LOGGER = "auto-attack"
AA_NORMS = {Norm.LINF: "Linf", Norm.L2: "L2", Norm.L1: "L1"}
VERSIONS = ("auto", "standard", "plus", "rand")


def _positive(name: str, **values: int | None) -> None:
    for key, value in values.items():
        if value is not None and value < 1:
            raise UsageError(f"{name} {key} must be >= 1, got {value}")


@dataclass(frozen=True)
class AutoAttackConfig:
    version: str = (
        "auto"  # auto (rand for models random at inference, else standard) | standard | plus | rand
    )
    n_restarts: int | None = (
        None  # APGD restarts; None: the version's own (standard/rand 1, plus 5)
    )
    eot_iter: int | None = (
        None  # EOT draws per APGD gradient; None: the version's own (rand 20, else 1)
    )

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise UsageError(
                f"autoattack version must be one of {', '.join(VERSIONS)}, got {self.version!r}"
            )
        _positive("autoattack", n_restarts=self.n_restarts, eot_iter=self.eot_iter)


# The single-attack configs default to AutoAttack's own values for version='custom'.
@dataclass(frozen=True)
class APGDCEConfig:
    n_restarts: int = 5
    eot_iter: int = 1

    def __post_init__(self) -> None:
        _positive("apgd-ce", n_restarts=self.n_restarts, eot_iter=self.eot_iter)


@dataclass(frozen=True)
class APGDTConfig:
    n_restarts: int = 1
    n_target_classes: int = 9  # the top wrong classes attacked in turn (at most classes - 1)

    def __post_init__(self) -> None:
        _positive("apgd-t", n_restarts=self.n_restarts, n_target_classes=self.n_target_classes)


@dataclass(frozen=True)
class FABTConfig:
    n_target_classes: int = 9  # AutoAttack runs FAB-T with one restart per target class

    def __post_init__(self) -> None:
        _positive("fab-t", n_target_classes=self.n_target_classes)


@dataclass(frozen=True)
class SquareAAConfig:
    n_queries: int = 5000

    def __post_init__(self) -> None:
        _positive("square-aa", n_queries=self.n_queries)


class _ToDebug(logging.Handler):
    """Re-emits pyautoattack's records (any level) on our logger at DEBUG."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("pyautoattack: %s", record.getMessage())


@contextlib.contextmanager
def _contained(seed: int, device: torch.device) -> Iterator[None]:
    """Run pyautoattack without side effects on the caller: global RNG, its logger, sys.settrace."""
    aa_log = logging.getLogger(AA_LOGGER)
    handler = _ToDebug()
    saved = (aa_log.level, aa_log.propagate)
    tracer = sys.gettrace()  # AutoAttack's dynamic-defense check ends with sys.settrace(None)
    aa_log.addHandler(handler)
    aa_log.setLevel(logging.DEBUG)
    aa_log.propagate = False
    # pyautoattack seeds the current CUDA device; the model's device gets our seed as well.
    devices = (
        sorted(
            {
                torch.cuda.current_device() if device.index is None else device.index,
                torch.cuda.current_device(),
            }
        )
        if device.type == "cuda"
        else []
    )
    try:
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield
    finally:
        sys.settrace(tracer)
        aa_log.removeHandler(handler)
        aa_log.setLevel(saved[0])
        aa_log.propagate = saved[1]


class _AutoAttackBase(Attack):
    """Builds a `pyautoattack.AutoAttack` per call; subclasses pick the version and settings."""

    norms: ClassVar[tuple[str, ...]] = ("linf", "l2", "l1")
    aa_attack: ClassVar[str | None] = (
        None  # pyautoattack's name of the single attack of a 'custom' run
    )

    def __init__(self, config: Any) -> None:
        self.config = config

    def version(self, model: AttackedModel | None = None) -> str:
        """pyautoattack's version for this attack on `model`."""
        return "custom"

    def configure(self, aa: Any, num_classes: int) -> None:
        """Adjust the package's attack objects after construction (defaults: leave them be)."""

    def build(
        self, model: AttackedModel, threat: ThreatModel, seed: int, device: torch.device
    ) -> Any:
        attacks = None if self.aa_attack is None else [self.aa_attack]
        aa = AutoAttack(
            model,
            norm=AA_NORMS[threat.norm],
            eps=threat.eps,
            version=self.version(model),
            attacks=attacks,
            device=device,
            seed=seed,
        )
        self.configure(aa, model.num_classes)
        return aa

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        if threat.eps == 0 or len(x) == 0:
            return x.clone(), steps
        if model.stochastic and self.version(model) != "rand":
            log.info(
                "%s: model %s is random at inference; autoattack:version=rand (EOT) is the version meant for it",
                self.name,
                model.name,
            )
        with _contained(seed, x.device):
            aa = self.build(model, threat, seed, x.device)
            x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=len(x))
        return x_adv, steps


def _check_targets(name: str, wanted: int, num_classes: int) -> None:
    if wanted > num_classes - 1:
        raise UsageError(
            f"{name}: n_target_classes={wanted} exceeds the model's {num_classes - 1} wrong classes"
        )


@register_attack(
    "autoattack",
    config=AutoAttackConfig,
    family="ensemble",
    description="AutoAttack via pyautoattack: standard (APGD-CE, APGD-T, FAB-T, Square), plus, or rand (EOT); auto picks rand for random models",
)
class AutoAttackEnsemble(_AutoAttackBase):
    name = "autoattack"
    config: AutoAttackConfig

    def version(self, model: AttackedModel | None = None) -> str:
        """Adaptive by default: version 'auto' is 'rand' (EOT) on a model random at inference, else 'standard'."""
        if self.config.version != "auto":
            return self.config.version
        return "rand" if model is not None and model.stochastic else "standard"

    def adaptations(self, model: AttackedModel) -> dict[str, object]:
        return {**super().adaptations(model), "autoattack_version": self.version(model)}

    def configure(self, aa: Any, num_classes: int) -> None:
        cfg = self.config
        if cfg.n_restarts is not None:
            aa.apgd.n_restarts = cfg.n_restarts
        if cfg.eot_iter is not None:
            aa.apgd.eot_iter = cfg.eot_iter
        # Fewer than 10 classes: target every wrong class instead of failing (no-op for 10+).
        aa.apgd_targeted.n_target_classes = min(aa.apgd_targeted.n_target_classes, num_classes - 1)
        aa.fab.n_target_classes = min(aa.fab.n_target_classes, num_classes - 1)


@register_attack(
    "apgd-ce",
    config=APGDCEConfig,
    family="gradient",
    description="APGD on cross-entropy (AutoAttack's, via pyautoattack); step-size-free PGD",
)
class APGDCE(_AutoAttackBase):
    name = "apgd-ce"
    aa_attack = "apgd-ce"
    config: APGDCEConfig

    def configure(self, aa: Any, num_classes: int) -> None:
        aa.apgd.n_restarts = self.config.n_restarts
        aa.apgd.eot_iter = self.config.eot_iter


@register_attack(
    "apgd-t",
    config=APGDTConfig,
    family="gradient",
    description="APGD on the targeted DLR loss over the top wrong classes (AutoAttack's, via pyautoattack)",
)
class APGDT(_AutoAttackBase):
    name = "apgd-t"
    aa_attack = "apgd-t"
    config: APGDTConfig

    def configure(self, aa: Any, num_classes: int) -> None:
        _check_targets(self.name, self.config.n_target_classes, num_classes)
        aa.apgd_targeted.n_restarts = self.config.n_restarts
        aa.apgd_targeted.n_target_classes = self.config.n_target_classes


@register_attack(
    "fab-t",
    config=FABTConfig,
    family="gradient",
    description="Targeted FAB, minimal-norm boundary attack, kept where within eps (AutoAttack's, via pyautoattack)",
)
class FABT(_AutoAttackBase):
    name = "fab-t"
    aa_attack = "fab-t"
    config: FABTConfig

    def configure(self, aa: Any, num_classes: int) -> None:
        _check_targets(self.name, self.config.n_target_classes, num_classes)
        aa.fab.n_target_classes = self.config.n_target_classes


@register_attack(
    "square-aa",
    config=SquareAAConfig,
    family="black-box",
    description="Square Attack, score-based random search (AutoAttack's own, via pyautoattack)",
)
class SquareAA(_AutoAttackBase):
    name = "square-aa"
    aa_attack = "square"
    config: SquareAAConfig

    def configure(self, aa: Any, num_classes: int) -> None:
        aa.square.n_queries = self.config.n_queries
