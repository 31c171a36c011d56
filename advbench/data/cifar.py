"""CIFAR-10/100 from the official python pickle batches.

The batches are pickles; they are only read from the official archive's layout and the
unpickler refuses anything but plain containers and numpy arrays.
"""

from __future__ import annotations

import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from advbench.core.errors import DataError
from advbench.data.base import Dataset
from advbench.data.download import fetch
from advbench.data.paths import cache_dir, search_dirs


@dataclass(frozen=True)
class Layout:
    """Where one CIFAR archive keeps its batches, labels and class names, and where it is fetched."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    labels: bytes
    meta: tuple[str, bytes]  # (file, key of the class names)
    url: str
    md5: str

    def batches(self, split: str) -> tuple[str, ...]:
        return {"train": self.train, "test": self.test}[split]


LAYOUT = {
    "cifar10": Layout(
        folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        labels=b"labels",
        meta=("batches.meta", b"label_names"),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": Layout(
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        labels=b"fine_labels",
        meta=("meta", b"fine_label_names"),
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Allows numpy array reconstruction only; any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a garbled pickle raises anything (IndexError, KeyError...)
        why = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if why.startswith("refusing") else " (truncated or corrupt?)"
        raise DataError(f"cannot read CIFAR batch {path}{hint}: {why}") from None


def _batch(path: Path, keys: tuple[bytes, ...]) -> dict:
    """One batch file: a dict holding `keys`, else a DataError naming the file."""
    batch = _unpickle(path)
    if not isinstance(batch, dict) or any(k not in batch for k in keys):
        raise DataError(
            f"{path} is not a CIFAR python batch (no {', '.join(k.decode() for k in keys)})"
        )
    return batch


def load_cifar(name: str, split: str = "test", data_dir: str | Path | None = None) -> Dataset:
    spec = LAYOUT[name]
    files = spec.batches(split)
    folder = next(
        (
            d / spec.folder
            for d in search_dirs(name, data_dir)
            if (d / spec.folder / files[0]).is_file()
        ),
        None,
    )
    if folder is None:
        raise DataError(
            f"{name} not found; run `advbench download {name}` when online, or pass --data-dir DIR "
            f"holding {spec.folder}/"
        )
    batches = [_batch(folder / f, (b"data", spec.labels)) for f in files]
    try:
        data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
        data = data.reshape(-1, 3, 32, 32)
        labels = np.concatenate([np.asarray(b[spec.labels], dtype=np.int64) for b in batches])
        if len(labels) != len(data):
            raise ValueError(f"{len(data)} images but {len(labels)} labels")
        meta_file, meta_key = spec.meta
        classes: tuple[str, ...] = ()
        if (folder / meta_file).is_file():
            names = _batch(folder / meta_file, (meta_key,))[meta_key]
            classes = tuple(c.decode() for c in names)
    except (ValueError, TypeError, AttributeError) as exc:  # arrays of the wrong size or type
        raise DataError(f"{name} batches in {folder} are malformed: {exc}") from None
    x = torch.from_numpy(data.copy()).float().div_(255.0)
    return Dataset(name, split, x, torch.from_numpy(labels), classes)


def download_cifar(name: str, dest: Path | None = None) -> Path:
    spec = LAYOUT[name]
    dest = dest or cache_dir() / name
    archive = fetch(spec.url, dest / Path(spec.url).name, spec.md5)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest
