"""Shared fixtures: a tiny model trained on scikit-learn digits, so most tests take seconds."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from advbench.models.card import load_model
from advbench.train import TrainConfig, train_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CIFAR_JPG = SHARED / "datasets" / "cifar10-test-jpg"


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs `-n auto`) each worker gets its share of the cores, so
    the workers do not oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the CLI processes the tests start, too


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` run only where CUDA is (scripts/gpu_check.sh); elsewhere they skip, saying why."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here); scripts/gpu_check.sh runs it on one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo folder holding an rn18-nt (width 4) trained for a few epochs on digits.

    The weights differ between CPUs with different vector units (AVX2 vs AVX-512 kernels), so
    tests must not depend on which digits a weak attack happens to break."""
    zoo = tmp_path_factory.mktemp("zoo")
    config = TrainConfig("rn18-nt", dataset="digits", epochs=6, batch_size=64, lr=0.05, crop_pad=0, flip=False, model_kwargs={"width": 4})
    # One thread, whatever the run's thread count: the trained weights depend on it, and every
    # worker (and a plain `pytest`) should test the same fixture.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_model(config, zoo / "digits", torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
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


@pytest.fixture(scope="session")
def merged_db(digits_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stored runs of rn18-nt on digits made to be merged (about 5 s). On the same 40 samples:
    FGSM at linf 0.02 and 0.08, PGD with the checks at 0.02, DeepFool at 0.08 (FGSM and DeepFool
    each break a sample the other does not); a weak PGD at 0.08 on another 30 samples; a DeepFool L2
    sweep; a small certification."""
    from advbench.engine import CertifySpec, EvalSpec, Runtime, run_eval
    from advbench.engine.certify import run_certify

    db = tmp_path_factory.mktemp("merged") / "m.sqlite"
    runtime = Runtime(db=db, zoo=digits_zoo)
    digits = {"model": "rn18-nt", "dataset": "digits"}
    run_eval(EvalSpec(**digits, attacks=("fgsm",), eps=(0.02, 0.08), n=40, checks=False), runtime)
    run_eval(EvalSpec(**digits, attacks=("pgd",), eps=(0.02,), n=40, check_n=20), runtime)
    run_eval(EvalSpec(**digits, attacks=("deepfool",), eps=(0.08,), n=40, checks=False), runtime)
    run_eval(EvalSpec(**digits, attacks=("pgd:steps=2",), eps=(0.08,), n=30, checks=False), runtime)
    run_eval(EvalSpec(**digits, attacks=("deepfool",), norm="l2", eps=(0.5, 1.0), n=40, checks=False), runtime)
    run_certify(CertifySpec(**digits, sigmas=(0.25,), n0=10, noise_draws=100, n=10), runtime)
    return db
