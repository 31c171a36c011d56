"""Datasets as float32 NCHW tensors in [0,1] with int64 labels, and deterministic subsets."""

from advbench.data.base import Dataset
from advbench.data.registry import DATASETS, load_dataset
from advbench.data.subset import select_indices

__all__ = ["Dataset", "DATASETS", "load_dataset", "select_indices"]
