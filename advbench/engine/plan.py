"""Resolve a spec into a plan: the model with its card, the samples, the threats, the attacks and
the model as each attack sees it. Everything a batch of work needs, so workers keep one plan.

A plan is a value (frozen): `resolve(spec, runtime, findings)` builds one from names (the CLI's
path), `EvalPlan.from_objects` from a model object and tensors a library user already holds
(RobustBench's `benchmark()` style), and an escalation the checks call for gives a new plan
(`plan.escalated(findings)`), never an edit. The plan carries the run's identity (`key`),
computed from the spec, the checkpoint's hash, the subset's hash and the attacks as asked.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from advbench.attacks.base import Attack
from advbench.attacks.checks import Escalation
from advbench.attacks.stage_checks import RANDOM_SQUARE_PROBE_QUERIES, SQUARE_PROBE_QUERIES
from advbench.core.device import device_class, resolve_device
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel, parse_norm
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.attack_plan import (
    PlannedAttack,
    escalated_attacks,
    plan_attacks,
    validate_attacks,
)
from advbench.engine.executors import portable, same_checkpoint, work_class, worker_device
from advbench.engine.from_objects import (
    Loader,
    TensorSource,
    as_robust_model,
    weights_sha256,
)
from advbench.engine.model_fit import check_first_image
from advbench.engine.run_key import Adaptation, AttackKey, EvalRunKey, JsonMap
from advbench.engine.spec import EvalSpec, Runtime
from advbench.models.card import ModelCard, load_model
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class EvalPlan:
    """A resolved evaluation, immutable. `attacks` run in order on what earlier ones left;
    `asked` are the attacks as the spec asked for them (the run's identity), `escalation` what
    the checks changed since (`escalated`)."""

    name: str
    model: RobustModel
    sha256: str
    dataset: str
    split: str
    indices: torch.Tensor
    threats: tuple[ThreatModel, ...]
    attacks: tuple[PlannedAttack, ...]
    seed: int
    load: Loader
    device: torch.device
    checks: bool = True
    check_n: int = 100
    eot: int | None = None
    bpda: bool = True
    card: ModelCard | None = None
    spec: EvalSpec | None = None
    load_surrogate: Callable[[str], RobustModel] | None = (
        None  # a named model on the plan's device (transfer attacks)
    )
    num_classes: int = (
        0  # the dataset's class count (the model's outputs must match it); 0: the model's own
    )
    asked: tuple[PlannedAttack, ...] = ()  # default: `attacks`
    escalation: Escalation = Escalation()
    rebuild: Callable[[], "EvalPlan"] | None = (
        None  # the same plan on a Ray worker (named models only)
    )
    tf32: bool = False  # TF32 allowed on CUDA (the determinism policy turns it off otherwise)
    work_device: str = ""  # the device class the rows are computed on; "": the plan's device's

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_device", self.work_device or device_class(self.device))
        object.__setattr__(self, "tf32", self.tf32 and self.work_device == "cuda")
        object.__setattr__(self, "threats", tuple(self.threats))
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "asked", tuple(self.asked) or self.attacks)
        object.__setattr__(self, "num_classes", self.num_classes or self.model.num_classes)

    @property
    def adaptations(self) -> dict[str, dict[str, Any]]:
        """Per attack, how it sees the model (EOT draws, BPDA, ...), as the plan runs it."""
        return {a.label: a.attack.adaptations(a.view) for a in self.attacks}

    @property
    def passes_per_step(self) -> dict[str, int]:
        """Per attack, the forward+backward passes one of its stored steps stands for."""
        return {
            a.label: 1 if a.attack.steps_count_eot else int(a.view.eot_draws) for a in self.attacks
        }

    @property
    def labels(self) -> list[str]:
        return [a.label for a in self.attacks]

    def escalated(self, findings: Escalation) -> "EvalPlan":
        """A new plan with what `findings` call for: views for random or log-probability models,
        the remedy attacks appended (each once). The same findings twice give the same plan."""
        esc = self.escalation.merged(findings)
        if esc == self.escalation:
            return self
        attacks = escalated_attacks(
            self.asked, esc, self.model, self.threats, self.eot, self.bpda, self.load_surrogate
        )
        return replace(self, attacks=attacks, escalation=esc)

    @property
    def indices_hash(self) -> str:
        return indices_hash(self.indices)

    @property
    def random_square_probe(self) -> int | None:
        """The checks' black-box probe budget on a model declared random at inference, where
        Square's later queries found nothing (`attacks.stage_checks`); None on other models."""
        return RANDOM_SQUARE_PROBE_QUERIES if self.model.stochastic else None

    @property
    def square_probe_queries(self) -> int:
        """The checks' black-box probe budget on this model."""
        return self.random_square_probe or SQUARE_PROBE_QUERIES

    def run_key(self) -> EvalRunKey:
        """The run's identity: the attacks as asked, with how each saw the model before any check."""
        return EvalRunKey(
            model=self.name,
            checkpoint_sha256=self.sha256,
            dataset=self.dataset,
            split=self.split,
            indices_hash=self.indices_hash,
            norm=self.threats[0].norm.value,
            eps=tuple(t.eps for t in self.threats),
            attacks=tuple(AttackKey(a.label, JsonMap.of(a.config)) for a in self.asked),
            adaptations=tuple(
                (a.label, Adaptation.of(a.attack.adaptations(a.view))) for a in self.asked
            ),
            seed=self.seed,
            checks=self.checks,
            check_n=self.check_n,
            random_square_probe=self.random_square_probe,
            device=self.work_device,
            tf32=self.tf32,
        )

    def payload(self) -> dict[str, Any]:
        return self.run_key().payload()

    @property
    def key(self) -> str:
        return self.run_key().key()

    def paper(self) -> dict[str, Any]:
        """The paper's own numbers travel with the run, so reports can show them without loading models."""
        facts = self.card.paper_facts if self.card is not None else None
        return (
            {
                k: facts.get(k)
                for k in ("paper", "section", "paper_name", "dataset", "threat_model", "reported")
            }
            if facts
            else {}
        )

    def reseed(self, stream: str) -> None:
        """Restart the randomness of every model in the plan (target and surrogates) for one unit
        of work, so a model random at inference draws the same noise for a sample in any batch,
        shard or resumed run."""
        seed = derive_seed(self.seed, "model-noise", stream)
        for model in {
            id(m): m for a in (*self.asked, *self.attacks) for m in (a.view.model, a.view.target)
        }.values():
            model.reseed(seed)
        self.model.reseed(seed)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at dataset indices `idx`, on the plan's device."""
        x, y = self.load(idx)
        return x.to(self.device), y.to(self.device)

    @classmethod
    def from_objects(
        cls,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        attacks: str | Attack | Sequence[str | Attack] = ("auto",),
        eps: Sequence[float] = (0.1,),
        norm: str = "linf",
        seed: int = 0,
        indices: torch.Tensor | None = None,
        name: str | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        checks: bool = False,
        check_n: int = 100,
        eot: int | None = None,
        bpda: bool = True,
        device: str | torch.device = "auto",
        tf32: bool = False,
    ) -> "EvalPlan":
        """A plan for a model object and images `x` in [0,1] (N x C x H x W) with labels `y`.

        A bare `nn.Module` is wrapped as a `RobustModel` (normalization `mean`/`std` when its
        inputs are not [0,1] pixels); `indices` name the samples (default 0..N-1) for per-sample
        randomness and the stored rows. `attacks` are specs or `Attack` objects. The key hashes
        the weights and the tensors. `tf32` allows TF32 on CUDA (recorded in the key).
        """
        source = TensorSource.of(x, y, indices)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        model = as_robust_model(model, x, dev, num_classes, mean, std, name)
        threats = _threats(norm, eps)
        for threat in threats:
            threat.check_for(int(x[0].numel()))
        # A single spec is one attack, not its letters; anything else that is not a list is refused by name.
        specs: tuple[Any, ...] = (
            (attacks,)
            if isinstance(attacks, (str, Attack)) or not isinstance(attacks, Iterable)
            else tuple(attacks)
        )
        planned = plan_attacks(
            specs,
            threats,
            model,
            None,
            eot,
            bpda,
            load_surrogate=None,
        )
        return cls(
            name=name or model.name,
            model=model,
            sha256=weights_sha256(model),
            dataset=source.dataset,
            split="-",
            indices=source.indices,
            threats=tuple(threats),
            attacks=tuple(planned),
            seed=seed,
            load=source.loader(),
            device=dev,
            checks=checks,
            check_n=check_n,
            eot=eot,
            bpda=bpda,
            tf32=tf32,
        )


def _threats(norm: str, eps: Sequence[float]) -> list[ThreatModel]:
    parsed = parse_norm(norm)
    return [ThreatModel(parsed, float(e)) for e in eps]


def resolve(
    spec: EvalSpec,
    runtime: Runtime,
    findings: Escalation | None = None,
    device: torch.device | None = None,
) -> EvalPlan:
    """The plan for `spec`: names checked first, then the model (hash-checked) and the subset;
    escalated as `findings` (what a run's checks decided) call for.

    `device`: where the model goes (default: the runtime's device; a Ray driver passes the CPU).
    """
    check_dataset_spec(spec.dataset)
    threats = _threats(spec.norm, spec.eps)
    validate_attacks(spec.attacks, threats, spec.surrogate)
    dev = device if device is not None else resolve_device(runtime.device)
    zoo, data_dir = runtime.zoo_str, runtime.data_dir_str
    model, card = load_model(spec.model, spec.dataset, zoo, spec.weights, data_dir)
    for threat in threats:
        threat.check_for(math.prod(card.input_shape))
    model.to(dev)

    @functools.cache
    def load_surrogate(name: str) -> RobustModel:
        return load_model(name, spec.dataset, zoo, None, data_dir)[0].to(dev)

    planned = plan_attacks(
        spec.attacks, threats, model, spec.surrogate, spec.eot, spec.bpda, load_surrogate
    )
    labels = dataset_labels(spec.dataset, spec.split, data_dir)
    indices = select_indices(labels, spec.n, spec.seed, spec.balanced)

    def load(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data = load_dataset(spec.dataset, spec.split, data_dir, idx)
        return data.images, data.labels

    first = load(indices[:1])[0]
    model.check_inputs(first)
    # A model that cannot take these images, or whose outputs are unusable, fails before any run is stored.
    check_first_image(model, first.to(dev), spec.dataset)
    plan = EvalPlan(
        name=spec.model,
        model=model,
        sha256=card.sha256,
        dataset=spec.dataset,
        split=spec.split,
        indices=indices,
        threats=tuple(threats),
        attacks=tuple(planned),
        seed=spec.seed,
        load=load,
        device=dev,
        checks=spec.checks,
        check_n=spec.check_n,
        eot=spec.eot,
        bpda=spec.bpda,
        card=card,
        spec=spec,
        load_surrogate=load_surrogate,
        rebuild=functools.partial(worker_plan, spec, portable(runtime), card.sha256),
        tf32=runtime.tf32,
        work_device=work_class(runtime, dev),
    )
    return plan.escalated(findings) if findings is not None else plan


def worker_plan(spec: EvalSpec, runtime: Runtime, sha256: str) -> EvalPlan:
    """The plan a Ray worker builds once: on its own device, the driver's checkpoint or an error."""
    plan = resolve(spec, runtime, device=worker_device(runtime.device))
    same_checkpoint(plan.sha256, sha256, spec.model)
    return plan
