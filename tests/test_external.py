"""Bring-your-own model on the CIFAR-10 pipeline: AutoAttack's example ResNet18 (external weights)
on the CIFAR-10 test JPEGs of ../shared. Skipped, with a message, where ../shared is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CIFAR_JPG

from advbench.core.errors import CheckpointError, UsageError
from advbench.core.threat import ThreatModel
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model

pyautoattack = pytest.importorskip("pyautoattack")
EXAMPLES = Path(pyautoattack.__file__).parent / "examples"
SPEC = f"file:{EXAMPLES / 'resnet.py'}:ResNet18"
WEIGHTS = EXAMPLES / "model_test.pt"
DATASET = f"imagefolder:{CIFAR_JPG}"

pytestmark = pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason=f"the CIFAR-10 test JPEGs are not at {CIFAR_JPG} (../shared absent)")


@pytest.fixture(scope="module")
def cifar():
    model, card = load_model(SPEC, DATASET, weights=WEIGHTS)
    idx = select_indices(dataset_labels(DATASET), 200, seed=0)
    data = load_dataset(DATASET, "test", indices=idx)
    return model, card, data.images, data.labels


def test_external_model_loads_with_its_hash_and_is_accurate(cifar) -> None:
    model, card, x, y = cifar
    assert len(card.sha256) == 64 and card.input_shape == [3, 32, 32] and card.num_classes == 10
    with torch.no_grad():
        accuracy = (model.predict(x) == y).float().mean().item()
    print(f"AutoAttack's example ResNet18 on 200 CIFAR-10 test JPEGs: clean {accuracy:.3f}")
    assert 0.78 < accuracy < 0.9  # 83.8 % measured on 1000 images


def test_pgd_at_a_small_budget_is_informative(cifar) -> None:
    from advbench.attacks import build_attack

    model, _, x, y = cifar
    x, y = x[:40], y[:40]
    result = build_attack("pgd")[1](model, x, y, ThreatModel("linf", 0.5 / 255))
    robust = 1 - result.success.float().mean().item()
    clean = (model.predict(x) == y).float().mean().item()
    assert 0.0 < robust < clean


def test_autoattack_equals_pyautoattack_called_directly(cifar) -> None:
    from advbench.attacks import build_attack

    model, _, x, y = cifar
    x, y = x[:6], y[:6]
    eps = 1 / 255
    torch.manual_seed(0)
    direct = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version="standard", device=x.device, seed=0)
    with model.attack_mode():
        x_direct, y_direct = direct.run_standard_evaluation(x, y, batch_size=len(x))
    ours = build_attack("autoattack:version=standard")[1](model, x, y, ThreatModel("linf", eps), seed=0)
    assert torch.equal(ours.x_adv, x_direct) and torch.equal(ours.adv_pred, y_direct)


def test_bad_external_specs_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(UsageError, match="needs --weights"):
        load_model(SPEC, DATASET)
    with pytest.raises(UsageError, match="file:PATH.py:NAME"):
        load_model("file:nocolon", DATASET, weights=WEIGHTS)
    with pytest.raises(UsageError, match="no class or function"):
        load_model(f"file:{EXAMPLES / 'resnet.py'}:ResNet99", DATASET, weights=WEIGHTS)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is neither a torch checkpoint"):
        load_model(SPEC, DATASET, weights=bad)
