"""scikit-learn's bundled 8x8 digits: 1797 images, for tiny fast tests."""

from __future__ import annotations

import torch

from advbench.data.base import Dataset


def load_digits_dataset(split: str = "test") -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    # Fixed split: every fifth image is test, the rest train.
    is_test = torch.arange(len(y)) % 5 == 0
    mask = is_test if split == "test" else ~is_test
    return Dataset("digits", split, x[mask].contiguous(), y[mask], tuple(str(d) for d in range(10)))
