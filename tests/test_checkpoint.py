import shutil
from pathlib import Path

import pytest
import torch
import yaml

from advbench.core.errors import CheckpointError, UnknownNameError
from advbench.models.card import ModelCard, load_model


@pytest.fixture()
def zoo_copy(digits_zoo: Path, tmp_path: Path) -> Path:
    shutil.copytree(digits_zoo, tmp_path / "zoo")
    return tmp_path / "zoo"


def test_roundtrip_loads_same_predictions(digits_zoo: Path, digits_model, digits_data) -> None:
    again, card = load_model("rn18-nt", "digits", digits_zoo)
    x, _ = digits_data
    assert torch.equal(again.predict(x), digits_model.predict(x))
    assert len(card.sha256) == 64 and card.dataset == "digits" and card.mean is not None


def test_tampered_weights_refused(zoo_copy: Path) -> None:
    weights = zoo_copy / "digits" / "rn18-nt.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model("rn18-nt", "digits", zoo_copy)


def test_corrupt_file_with_matching_card_refused(zoo_copy: Path) -> None:
    from advbench.models.card import file_sha256

    weights = zoo_copy / "digits" / "rn18-nt.safetensors"
    weights.write_bytes(b"not a safetensors file")
    card_path = zoo_copy / "digits" / "rn18-nt.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["sha256"] = file_sha256(weights)
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(CheckpointError, match="not valid safetensors"):
        load_model("rn18-nt", "digits", zoo_copy)


def test_card_with_unknown_key_refused(zoo_copy: Path) -> None:
    card_path = zoo_copy / "digits" / "rn18-nt.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["surprise"] = 1
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(CheckpointError, match="unknown keys: surprise"):
        load_model("rn18-nt", "digits", zoo_copy)


def test_card_that_is_not_yaml_refused(zoo_copy: Path) -> None:
    (zoo_copy / "digits" / "rn18-nt.yaml").write_text("!!python/object:os.system {}\n")
    with pytest.raises(CheckpointError):
        load_model("rn18-nt", "digits", zoo_copy)


def test_missing_checkpoint_names_alternatives(digits_zoo: Path) -> None:
    with pytest.raises(CheckpointError, match="digits"):
        load_model("rn18-nt", "cifar10", digits_zoo)
    with pytest.raises(UnknownNameError, match="rn18-nt"):
        load_model("rn18-ntt", "digits", digits_zoo)


def test_card_fields_roundtrip(tmp_path: Path, digits_zoo: Path) -> None:
    card = ModelCard.from_yaml(digits_zoo / "digits" / "rn18-nt.yaml")
    card.to_yaml(tmp_path / "c.yaml")
    assert ModelCard.from_yaml(tmp_path / "c.yaml") == card
