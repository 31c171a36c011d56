"""Class sub-folders of image files (e.g. the CIFAR-10 test set as JPEGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from advbench.core.errors import DataError
from advbench.data.base import Dataset

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_image_folder(root: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """(image files, their labels, the class names) of `root`: one sub-folder per class, sorted;
    a DataError (exit 2) naming the folder if it is missing, a file, unreadable or holds no images."""
    if not root.exists():
        raise DataError(f"image folder {root} (--dataset imagefolder:PATH) does not exist")
    if not root.is_dir():
        raise DataError(f"image folder {root} (--dataset imagefolder:PATH) is a file, not a folder")
    try:
        classes = tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
        if not classes:
            raise DataError(
                f"image folder {root} has no class sub-folders (it needs one folder of images per class)"
            )
        paths, labels = [], []
        for label, cls in enumerate(classes):
            files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in EXTENSIONS)
            paths += files
            labels += [label] * len(files)
    except OSError as exc:
        raise DataError(
            f"cannot read image folder {exc.filename or root}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not paths:
        raise DataError(
            f"image folder {root} holds no images ({', '.join(sorted(EXTENSIONS))}) in its class sub-folders"
        )
    return paths, labels, classes


def load_image_folder(root: str | Path, indices: list[int] | None = None) -> Dataset:
    """Decode images (all, or only `indices` of the sorted file list) into one tensor."""
    root = Path(root)
    paths, labels, classes = list_image_folder(root)
    chosen = range(len(paths)) if indices is None else indices
    arrays = []
    for i in chosen:
        try:
            with Image.open(paths[i]) as img:
                arrays.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot decode image {paths[i]}: {exc}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images in {root} differ in size: {sorted(shapes)[:3]}")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    y = torch.tensor([labels[i] for i in chosen], dtype=torch.int64)
    return Dataset(f"imagefolder:{root}", "all", x, y, classes)
