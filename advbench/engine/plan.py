"""Resolve a spec into a plan: the model with its card, the samples, the threats, the attacks and
the model as each attack sees it. Everything a batch of work needs, so workers keep one plan.

`resolve(spec, runtime)` builds a plan from names (the CLI's path); `EvalPlan.from_objects`
builds one from a model object and tensors a library user already holds (RobustBench's
`benchmark()` style). Either way the plan carries the run's identity (`key`), computed from the
spec, the checkpoint's hash, the subset's hash and what adaptive evaluation chose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from advbench.attacks import build_attack
from advbench.attacks.base import Attack
from advbench.attacks.model_checks import validate_outputs
from advbench.attacks.registry import attack_identity
from advbench.attacks.transfer import Transfer
from advbench.attacks.wrappers import AttackedModel, TransferModel, view_for
from advbench.core.device import resolve_device
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel, parse_norm
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.objects import (
    Loader,
    TensorSource,
    as_robust_model,
    weights_sha256,
)
from advbench.engine.runs import config_key
from advbench.engine.spec import EvalSpec, Runtime
from advbench.models.card import ModelCard, load_model
from advbench.models.wrapper import RobustModel


@dataclass
class PlannedAttack:
    label: str
    attack: Attack
    config: dict[str, Any]
    view: AttackedModel  # the model as this attack sees it (EOT draws, BPDA, transfer surrogate)


@dataclass
class EvalPlan:
    """A resolved evaluation. `adaptations` (per attack: EOT draws, BPDA, ...) is what adaptive
    evaluation chose for this model; it is stored with the run and is part of its key."""

    name: str
    model: RobustModel
    sha256: str
    dataset: str
    split: str
    indices: torch.Tensor
    threats: list[ThreatModel]
    attacks: list[PlannedAttack]
    seed: int
    load: Loader
    device: torch.device
    checks: bool = True
    check_n: int = 100
    eot: int | None = None
    bpda: bool = True
    card: ModelCard | None = None
    spec: EvalSpec | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    load_surrogate: Callable[[str], RobustModel] | None = None  # a named model on the plan's device (transfer attacks)

    num_classes: int = 0  # the dataset's class count (the model's outputs must match it); 0: the model's own

    def __post_init__(self) -> None:
        self.num_classes = self.num_classes or self.model.num_classes

    @property
    def adaptations(self) -> dict[str, dict[str, Any]]:
        return {a.label: a.attack.adaptations(a.view) for a in self.attacks}

    @property
    def indices_hash(self) -> str:
        return indices_hash(self.indices)

    def payload(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "checkpoint_sha256": self.sha256,
            "dataset": self.dataset,
            "split": self.split,
            "indices_hash": self.indices_hash,
            "norm": self.threats[0].norm.value,
            "eps": [t.eps for t in self.threats],
            "attacks": [{"name": a.label, "config": a.config} for a in self.attacks],
            "adaptations": self.adaptations,
            "seed": self.seed,
            # The checks adapt the evaluation, so they are part of what was asked; written only
            # when not the default, so runs stored before keep their identity.
            **({"checks": "off"} if not self.checks else {}),
            **({"check_n": self.check_n} if self.checks and self.check_n != 100 else {}),
        }

    @property
    def key(self) -> str:
        return config_key(self.payload())

    def paper(self) -> dict[str, Any]:
        """The paper's own numbers travel with the run, so reports can show them without loading models."""
        facts = self.card.paper_facts if self.card is not None else None
        return {k: facts.get(k) for k in ("paper", "section", "paper_name", "dataset", "threat_model", "reported")} if facts else {}

    def reseed(self, stream: str) -> None:
        """Restart the randomness of every model in the plan (target and surrogates) for one unit
        of work, so a model random at inference draws the same noise for a sample in any batch,
        shard or resumed run."""
        seed = derive_seed(self.seed, "model-noise", stream)
        for model in {id(m): m for a in self.attacks for m in (a.view.model, a.view.target)}.values():
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
        attacks: Sequence[str | Attack] = ("auto",),
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
    ) -> "EvalPlan":
        """A plan for a model object and images `x` in [0,1] (N x C x H x W) with labels `y`.

        A bare `nn.Module` is wrapped as a `RobustModel` (normalization `mean`/`std` when its
        inputs are not [0,1] pixels); `indices` name the samples (default 0..N-1) for per-sample
        randomness and the stored rows. `attacks` are specs or `Attack` objects. The key hashes
        the weights and the tensors.
        """
        source = TensorSource.of(x, y, indices)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        model = as_robust_model(model, x, dev, num_classes, mean, std, name)
        threats = _threats(norm, eps)
        for threat in threats:
            threat.check_for(int(x[0].numel()))
        # A single spec is one attack, not its letters; anything else that is not a list is refused by name.
        one = isinstance(attacks, (str, Attack)) or not isinstance(attacks, Iterable)
        planned = _plan_attacks((attacks,) if one else tuple(attacks), threats, model, None, eot, bpda, load_surrogate=None)  # type: ignore[arg-type]
        return cls(
            name=name or model.name, model=model, sha256=weights_sha256(model), dataset=source.dataset, split="-",
            indices=source.indices, threats=threats, attacks=planned, seed=seed, load=source.loader(), device=dev, checks=checks,
            check_n=check_n, eot=eot, bpda=bpda,
        )


def _threats(norm: str, eps: Sequence[float]) -> list[ThreatModel]:
    parsed = parse_norm(norm)
    return [ThreatModel(parsed, float(e)) for e in eps]


def validate_attacks(names: tuple[str | Attack, ...], threats: list[ThreatModel], surrogate: str | None) -> list[tuple[str, Attack, dict[str, Any]]]:
    """Every attack name, option and norm checked before anything heavy is loaded (an `Attack`
    object is taken as is, labelled as the spec that builds it)."""
    built = [build_attack(a, surrogate) if isinstance(a, str) else _built_object(a) for a in names]
    labels = [b[0] for b in built]
    if len(set(labels)) != len(labels):
        raise UsageError("each attack (with its options) may appear once per run")
    norm = threats[0].norm.value
    for label, attack, _ in built:
        if norm not in attack.norms:
            raise UsageError(f"attack {label!r} does not support the {norm} norm")
    return built


def _built_object(attack: Attack) -> tuple[str, Attack, dict[str, Any]]:
    label, config = attack_identity(attack)
    return label, attack, config


def _plan_attacks(
    names: tuple[str | Attack, ...], threats: list[ThreatModel], model: RobustModel, surrogate: str | None, eot: int | None, bpda: bool,
    load_surrogate: Callable[[str], RobustModel] | None,
) -> list[PlannedAttack]:
    planned, surrogates = [], {}
    for label, attack, config in validate_attacks(names, threats, surrogate):
        if isinstance(attack, Transfer):
            if load_surrogate is None:
                raise UsageError("transfer attacks need a named surrogate model; evaluate by name (resolve) to use them")
            name = attack.config.surrogate
            if name not in surrogates:
                surrogates[name] = load_surrogate(name)
            inner = view_for(surrogates[name], attack.inner.uses_gradients, eot, bpda)
            view: AttackedModel = TransferModel(model, inner, name)
        else:
            view = attack.view(model, eot, bpda)
        planned.append(PlannedAttack(label, attack, config, view))
    return planned


def resolve(spec: EvalSpec, runtime: Runtime, device: torch.device | None = None) -> EvalPlan:
    """The plan for `spec`: names checked first, then the model (hash-checked) and the subset.

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

    def load_surrogate(name: str) -> RobustModel:
        return load_model(name, spec.dataset, zoo, None, data_dir)[0].to(dev)

    planned = _plan_attacks(spec.attacks, threats, model, spec.surrogate, spec.eot, spec.bpda, load_surrogate)
    labels = dataset_labels(spec.dataset, spec.split, data_dir)
    indices = select_indices(labels, spec.n, spec.seed, spec.balanced)

    def load(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data = load_dataset(spec.dataset, spec.split, data_dir, idx)
        return data.images, data.labels

    first = load(indices[:1])[0]
    model.check_inputs(first)
    with torch.no_grad():  # a model whose outputs are unusable fails here, before any run is stored
        validate_outputs(model, model(first.to(dev)), 1, model.num_classes)
    return EvalPlan(
        name=spec.model, model=model, sha256=card.sha256, dataset=spec.dataset, split=spec.split, indices=indices, threats=threats,
        attacks=planned, seed=spec.seed, load=load, device=dev, checks=spec.checks, check_n=spec.check_n, eot=spec.eot, bpda=spec.bpda,
        card=card, spec=spec, load_surrogate=load_surrogate,
    )
