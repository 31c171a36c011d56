"""Dataset names -> loaders. `imagefolder:PATH` decodes only the images asked for."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from advbench.core.errors import UsageError
from advbench.core.registry import Registry
from advbench.data.base import Dataset
from advbench.data.cifar import load_cifar
from advbench.data.digits import load_digits_dataset
from advbench.data.fashion_mnist import load_fashion_mnist
from advbench.data.imagefolder import list_image_folder, load_image_folder


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    load: Callable[[str, str | Path | None], Dataset]


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(name: str, description: str) -> Callable:
    return DATASETS.decorator(name, lambda fn: DatasetEntry(name, description, fn))


@register_dataset("fashion-mnist", "Fashion-MNIST 28x28 grey (IDX); the embedded default")
def _fashion_mnist(split: str, data_dir: str | Path | None) -> Dataset:
    return load_fashion_mnist(split, data_dir)


@register_dataset("cifar10", "CIFAR-10 32x32 RGB (python pickle batches)")
def _cifar10(split: str, data_dir: str | Path | None) -> Dataset:
    return load_cifar("cifar10", split, data_dir)


@register_dataset("cifar100", "CIFAR-100 32x32 RGB (python pickle batches)")
def _cifar100(split: str, data_dir: str | Path | None) -> Dataset:
    return load_cifar("cifar100", split, data_dir)


@register_dataset("digits", "scikit-learn 8x8 digits, for fast tests")
def _digits(split: str, data_dir: str | Path | None) -> Dataset:
    return load_digits_dataset(split)


IMAGEFOLDER = "imagefolder:"


@functools.lru_cache(maxsize=4)
def _cached(name: str, split: str, data_dir: str | None) -> Dataset:
    return DATASETS.get(name).load(split, data_dir)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise UsageError(f"unknown split {split!r}; use train or test")


def check_dataset_spec(spec: str) -> None:
    """Fail early, before any model loads: an unknown dataset name (with suggestions), or an
    `imagefolder:PATH` that is missing, not a folder or holds no images."""
    if spec.startswith(IMAGEFOLDER):
        list_image_folder(_folder(spec))
    else:
        DATASETS.get(spec)


def _folder(spec: str) -> Path:
    path = spec[len(IMAGEFOLDER) :]
    if not path.strip():
        raise UsageError(
            "write an image folder dataset as imagefolder:PATH, e.g. imagefolder:data/cifar10-jpg"
        )
    return Path(path).expanduser()


def dataset_labels(
    spec: str, split: str = "test", data_dir: str | Path | None = None
) -> torch.Tensor:
    """Labels of the whole split, without decoding images where that can be avoided."""
    if spec.startswith(IMAGEFOLDER):
        return torch.tensor(list_image_folder(_folder(spec))[1], dtype=torch.int64)
    _check_split(split)
    return _cached(spec, split, str(data_dir) if data_dir else None).labels


def load_dataset(
    spec: str,
    split: str = "test",
    data_dir: str | Path | None = None,
    indices: torch.Tensor | None = None,
) -> Dataset:
    """The named dataset (or just the rows at `indices`) as float32 NCHW in [0,1]."""
    if spec.startswith(IMAGEFOLDER):
        chosen = None if indices is None else indices.tolist()
        return load_image_folder(_folder(spec), chosen)
    _check_split(split)
    full = _cached(spec, split, str(data_dir) if data_dir else None)
    if indices is None:
        return full
    return Dataset(full.name, full.split, full.images[indices], full.labels[indices], full.classes)
