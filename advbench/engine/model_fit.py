"""Does the model take the dataset's images? The first forward pass of a plan, run on one image
before any run is stored: a model whose layers are sized for other shapes or channels is a
ModelOutputError (exit 2) naming the model, the dataset and the image shape, never an internal
error from deep inside its forward."""

from __future__ import annotations

import torch

from advbench.attacks.model_checks import validate_outputs
from advbench.core.errors import ModelOutputError
from advbench.models.wrapper import RobustModel


def first_forward(model: RobustModel, x: torch.Tensor, dataset: str) -> object:
    """The model's outputs on `x` (one or a few images of `dataset`); a RuntimeError in its
    forward (other than running out of memory) becomes a ModelOutputError saying what failed."""
    try:
        return model(x)
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelOutputError(
            f"model {model.name} cannot take the {dataset} images (shape {tuple(x.shape[1:])}): {detail}"
        ) from None


def check_first_image(model: RobustModel, x: torch.Tensor, dataset: str) -> None:
    """One image through the model: its outputs must be finite logits over the model's classes."""
    with torch.no_grad():
        validate_outputs(model, first_forward(model, x, dataset), len(x), model.num_classes)
