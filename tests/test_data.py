import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR_JPG

from advbench.core.errors import DataError, UsageError
from advbench.data import load_dataset, select_indices
from advbench.data.fashion_mnist import load_fashion_mnist, read_idx
from advbench.data.registry import dataset_labels
from advbench.data.subset import indices_hash


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_roundtrip(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28))
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 10, 28, 28) + b"\x00" * 100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_fashion_mnist_from_data_dir(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, size=(6, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(6))
    data = load_fashion_mnist("test", tmp_path)
    assert data.images.shape == (6, 1, 28, 28) and data.images.dtype == torch.float32
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    assert data.labels.tolist() == list(range(6))


def test_missing_fashion_mnist_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("advbench.data.fashion_mnist.SYSTEM_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ADVBENCH_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", tmp_path / "empty")


def test_real_fashion_mnist_test_split() -> None:
    data = load_dataset("fashion-mnist", "test")
    assert data.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [1000] * 10


def test_subsets_are_deterministic_and_balanced() -> None:
    labels = dataset_labels("fashion-mnist")
    a = select_indices(labels, 300, seed=4)
    assert torch.equal(a, select_indices(labels, 300, seed=4))
    assert not torch.equal(a, select_indices(labels, 300, seed=5))
    assert indices_hash(a) == indices_hash(select_indices(labels, 300, seed=4))
    bal = select_indices(labels, 105, seed=0, balanced=True)
    counts = torch.bincount(labels[bal], minlength=10)
    assert len(bal) == 105 and int(counts.max() - counts.min()) <= 1
    assert torch.equal(select_indices(labels, None), torch.arange(len(labels)))
    with pytest.raises(UsageError):
        select_indices(labels, -3)


def test_cifar_pickle_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 256, size=(4, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    ds = load_dataset("cifar10", "test", tmp_path)
    assert ds.images.shape == (4, 3, 32, 32) and ds.labels.tolist() == [0, 1, 2, 3]
    assert ds.images[0, 0, 0, 0].item() == pytest.approx(data[0, 0] / 255)
    assert ds.classes[3] == "c3"


def test_cifar_unpickler_refuses_code(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil()}, f)
    with pytest.raises(DataError, match="refusing"):
        load_dataset("cifar10", "test", tmp_path)


def test_digits() -> None:
    ds = load_dataset("digits", "test")
    assert ds.images.shape[1:] == (1, 8, 8) and float(ds.images.max()) <= 1.0


@pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason="../shared/datasets/cifar10-test-jpg is absent (CIFAR-10 JPEG test set)")
def test_imagefolder_cifar10_jpegs() -> None:
    spec = f"imagefolder:{CIFAR_JPG}"
    labels = dataset_labels(spec)
    assert len(labels) == 10000 and torch.bincount(labels).tolist() == [1000] * 10
    idx = select_indices(labels, 20, seed=0, balanced=True)
    ds = load_dataset(spec, indices=idx)
    assert ds.images.shape == (20, 3, 32, 32) and ds.images.dtype == torch.float32
    assert torch.equal(ds.labels, labels[idx])
    assert ds.classes[0] == "airplane"


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(UsageError, match="fashion-mnist"):
        load_dataset("fashion-mnst")
