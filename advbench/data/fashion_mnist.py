"""Fashion-MNIST from IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from advbench.core.errors import DataError
from advbench.data.base import Dataset
from advbench.data.download import fetch
from advbench.data.paths import cache_dir, search_dirs

SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MISSING_HELP = (
    "Fashion-MNIST not found; install it with `apt-get install dataset-fashion-mnist` (Debian), "
    "run `advbench download fashion-mnist` when online, or pass --data-dir DIR holding the IDX files"
)


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic: 0, 0, dtype code, ndim; then big-endian dims; then data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path} (truncated or corrupt?): {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(
            f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}"
        )
    return data.reshape(dims)


def _find(stem: str, data_dir: str | Path | None) -> Path | None:
    for folder in search_dirs("fashion-mnist", data_dir, (SYSTEM_DIR,)):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(split: str = "test", data_dir: str | Path | None = None) -> Dataset:
    image_stem, label_stem = FILES[split]
    image_path, label_path = _find(image_stem, data_dir), _find(label_stem, data_dir)
    if image_path is None or label_path is None:
        raise DataError(MISSING_HELP)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files in {image_path.parent} do not match each other")
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset("fashion-mnist", split, x, y, CLASSES)


def download_fashion_mnist(dest: Path | None = None) -> Path:
    dest = dest or cache_dir() / "fashion-mnist"
    for stems in FILES.values():
        for stem in stems:
            if not (dest / f"{stem}.gz").is_file():
                fetch(URL + f"{stem}.gz", dest / f"{stem}.gz")
    return dest
