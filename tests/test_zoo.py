"""Every registered model builds; every shipped Fashion-MNIST checkpoint loads and is accurate."""

import pytest
import torch

from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models import MODELS
from advbench.models.card import card_path, load_model
from advbench.models.kernel_pooling import KAPConv2d
from advbench.models.noise import GaussianNoise

SHIPPED = ["rn18-nt", "rn18-nt-noise", "kap-rn18"]


@pytest.mark.parametrize("name", MODELS.names())
def test_registered_model_builds_and_runs(name: str) -> None:
    net = MODELS.get(name).build(in_channels=1, num_classes=10, width=8).eval()
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint(name: str) -> None:
    path = card_path(name, "fashion-mnist")
    assert path is not None, f"no shipped card for {name}"
    assert (path.parent / f"{name}.safetensors").stat().st_size <= 5 * 1024 * 1024
    model, card = load_model(name, "fashion-mnist")
    assert not model.stochastic  # training-time noise only: evaluation is noise-free (KAP §4.1)
    idx = select_indices(dataset_labels("fashion-mnist"), 500, seed=1)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    accuracy = (model.predict(data.images) == data.labels).float().mean().item()
    assert accuracy > 0.85
    noise = [m.sigma for m in model.modules() if isinstance(m, GaussianNoise)]
    kap = [m for m in model.modules() if isinstance(m, KAPConv2d)]
    if name == "rn18-nt":
        assert all(s == 0 for s in noise) and not kap
    else:
        assert noise and all(s == pytest.approx(0.1) for s in noise)
    if name == "kap-rn18":
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(kap) == len(convs) and all(k.pool.kernel_size == 3 and k.pool.stride == 1 for k in kap)
