"""Shared fixtures: a tiny model trained on scikit-learn digits, so most tests take seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from advbench.models.card import load_model
from advbench.train import TrainConfig, train_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CIFAR_JPG = SHARED / "datasets" / "cifar10-test-jpg"


@pytest.fixture(scope="session")
def digits_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo folder holding an rn18-nt (width 4) trained for a few epochs on digits."""
    zoo = tmp_path_factory.mktemp("zoo")
    config = TrainConfig("rn18-nt", dataset="digits", epochs=6, batch_size=64, lr=0.05, crop_pad=0, flip=False, model_kwargs={"width": 4})
    train_model(config, zoo / "digits", torch.device("cpu"))
    return zoo


@pytest.fixture(scope="session")
def digits_model(digits_zoo: Path):
    model, _ = load_model("rn18-nt", "digits", digits_zoo)
    return model


@pytest.fixture(scope="session")
def digits_data():
    from advbench.data import load_dataset

    data = load_dataset("digits", "test")
    return data.images, data.labels
