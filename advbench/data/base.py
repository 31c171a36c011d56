"""The in-memory dataset type every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Dataset:
    name: str
    split: str
    images: torch.Tensor  # float32, N x C x H x W, values in [0,1]
    labels: torch.Tensor  # int64, N
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.dtype != torch.float32:
            raise ValueError(
                f"{self.name}: images must be float32 NCHW, got {tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"{self.name}: {len(self.images)} images but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        _, channels, height, width = self.images.shape  # NCHW, checked on construction
        return channels, height, width
