"""Model cards (YAML) and safetensors checkpoints, verified by sha256 before loading."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from advbench.core.errors import CheckpointError, UsageError, ZooFolderError
from advbench.models.card_check import check_card
from advbench.models.external import (
    build_external,
    external_sha256,
    is_external,
    load_state,
)
from advbench.models.registry import MODELS
from advbench.models.state_fit import load_fitting
from advbench.models.wrapper import RobustModel

REPO_ZOO = Path(__file__).resolve().parents[2] / "model_zoo"


@dataclass(frozen=True)
class ModelCard:
    """A checkpoint's provenance and data contract."""

    name: str
    dataset: str
    weights: str  # file name next to the card
    sha256: str
    input_shape: list[int]
    num_classes: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    mean: list[float] | None = None
    std: list[float] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    advbench_version: str = ""
    stored_dtype: str = "float32"  # float16 halves the file; weights load into float32 parameters
    threat_model: dict[str, Any] = field(
        default_factory=dict
    )  # the default threat model to judge it under
    paper_facts: dict[str, Any] = field(
        default_factory=dict
    )  # paper file, section, recipe and reported numbers

    @classmethod
    def from_yaml(cls, path: Path) -> "ModelCard":
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise CheckpointError(f"cannot read model card {path}: {why}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise CheckpointError(f"model card {path} is not a YAML mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"model card {path} has unknown keys: {', '.join(unknown)}")
        try:
            card = cls(**data)
        except TypeError as exc:
            raise CheckpointError(f"model card {path} is incomplete: {exc}") from None
        check_card(card, path)
        return card

    def to_yaml(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zoo_dirs(zoo: str | Path | None = None) -> list[Path]:
    """Where cards are looked up: --zoo, $ADVBENCH_ZOO, then the repository's model_zoo/."""
    dirs = [Path(p) for p in (zoo, os.environ.get("ADVBENCH_ZOO")) if p]
    return dirs + [REPO_ZOO]


def check_zoo(zoo: str | Path | None, dataset: str, name: str) -> None:
    """A --zoo that is not a folder, or holds no DATASET/ folder, is a mistake (a typo would
    otherwise fall back to the shipped checkpoints without a word)."""
    if zoo is None:
        return
    root = Path(zoo)
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise ZooFolderError(
            f"no {dataset} checkpoint for model {name!r}: the model zoo folder {root} (--zoo) {state}"
        )
    if not (root / dataset).is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        where = f" (it has: {', '.join(have)})" if have else ""
        raise ZooFolderError(
            f"no {dataset} checkpoint for model {name!r}: the model zoo folder {root} (--zoo) has no {dataset}/ folder{where}"
        )


def card_path(name: str, dataset: str, zoo: str | Path | None = None) -> Path | None:
    for root in zoo_dirs(zoo):
        candidate = root / dataset / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def available_checkpoints(name: str, zoo: str | Path | None = None) -> list[str]:
    """Datasets for which model `name` has a card."""
    found = {
        p.parent.name
        for root in zoo_dirs(zoo)
        if root.is_dir()
        for p in root.glob(f"*/{name}.yaml")
        if p.is_file()
    }
    return sorted(found)


def save_checkpoint(
    net: torch.nn.Module, card: ModelCard, directory: Path, dtype: torch.dtype = torch.float32
) -> ModelCard:
    """Write weights as safetensors (floating tensors in `dtype`) and the card, with their sha256, beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / card.weights
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in net.state_dict().items()
    }
    save_file(state, str(weights))
    final = ModelCard(
        **{
            **asdict(card),
            "sha256": file_sha256(weights),
            "stored_dtype": str(dtype).removeprefix("torch."),
        }
    )
    final.to_yaml(directory / f"{card.name}.yaml")
    return final


def load_weights(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise CheckpointError(
            f"checkpoint {path} fails its sha256 check (card {expected_sha256[:12]}, file {actual[:12]}); refusing to load"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is not valid safetensors: {exc}") from None


def build_from_card(card: ModelCard, weights_dir: Path) -> RobustModel:
    spec = MODELS.get(card.name)
    try:
        net = spec.build(**card.kwargs)
    except UsageError as exc:  # kwargs the architecture does not take: the card is at fault
        raise CheckpointError(f"model card {weights_dir / card.name}.yaml: {exc}") from None
    state = load_weights(weights_dir / card.weights, card.sha256)
    load_fitting(
        net, state, f"checkpoint {weights_dir / card.weights} does not fit model {card.name}"
    )
    return RobustModel(net, card.input_shape, card.num_classes, card.mean, card.std, name=card.name)


def load_model(
    name: str,
    dataset: str,
    zoo: str | Path | None = None,
    weights: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> tuple[RobustModel, ModelCard]:
    """The registered model `name` with its checkpoint for `dataset`, hash-checked; or an
    external model `file:PATH.py:NAME` with `weights` (see advbench.models.external), whose input
    shape and class count are read off `dataset` (in `data_dir` when given)."""
    if is_external(name):
        return _load_external(name, dataset, weights, data_dir)
    if weights is not None:
        raise UsageError(
            "--weights goes with an external model (file:PATH.py:NAME); zoo models load their card's checkpoint"
        )
    MODELS.get(name)  # unknown names fail here, with suggestions
    check_zoo(zoo, dataset, name)
    path = card_path(name, dataset, zoo)
    if path is None:
        have = available_checkpoints(name, zoo)
        where = (
            f"; checkpoints exist for: {', '.join(have)}"
            if have
            else "; train one with `advbench train`"
        )
        raise CheckpointError(f"no {dataset} checkpoint for model {name!r}{where}")
    card = ModelCard.from_yaml(path)
    if (card.name, card.dataset) != (name, dataset):
        raise CheckpointError(
            f"model card {path} is for {card.name} on {card.dataset}, not {name} on {dataset}"
        )
    return build_from_card(card, path.parent), card


def _load_external(
    name: str, dataset: str, weights: str | Path | None, data_dir: str | Path | None = None
) -> tuple[RobustModel, ModelCard]:
    from advbench.data.registry import load_dataset

    if weights is None:
        raise UsageError(
            f"{name} needs --weights (a state dict: .pt/.pth read with weights_only=True, or .safetensors)"
        )
    net = build_external(name)
    path = Path(weights)
    load_fitting(net, load_state(path), f"weights file {path} does not fit {name}")
    sample = load_dataset(dataset, "test", data_dir, indices=torch.tensor([0]))
    # The run's identity covers the model's code as well as its weights: an edited PATH.py is a new run.
    sha256 = external_sha256(name, file_sha256(path))
    card = ModelCard(
        name=name,
        dataset=dataset,
        weights=str(path),
        sha256=sha256,
        input_shape=list(sample.input_shape),
        num_classes=sample.num_classes,
    )
    return RobustModel(net, card.input_shape, card.num_classes, name=name), card
