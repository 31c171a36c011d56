"""A model object and tensors a library user already holds, turned into what a plan needs: the
model as a `RobustModel` on its device, the hashes that make the run's identity (weights, tensors)
and a loader from sample indices to images. `EvalPlan.from_objects` and
`CertifyPlan.from_objects` share it, so both name the same objects the same way.

A module whose weights are fp16 or bf16 is taken as it is: its inputs are cast to its dtype and
its outputs back to float32 (`CastInputs`), so attacks, judgements and certificates work in float32
around it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from advbench.attacks.model_checks import validate_outputs
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel

Loader = Callable[
    [torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]  # dataset indices -> (images, labels)
LOW_PRECISION = (torch.float16, torch.bfloat16)


class CastInputs(nn.Module):
    """A module of fp16 or bf16 weights seen from float32: inputs cast to `dtype`, logits to float32."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.dtype)).float()


def weights_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the module's first floating-point parameter or buffer (float32 without any)."""
    tensors = [*model.parameters(), *model.buffers()]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def check_tensors(x: torch.Tensor, y: torch.Tensor) -> None:
    """Images N x C x H x W and N labels, or a one-line UsageError."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise UsageError(
            f"give images and labels as torch tensors, got {type(x).__name__} and {type(y).__name__}"
        )
    if x.dim() != 4 or y.shape != (len(x),) or len(x) == 0:
        raise UsageError(
            f"give images as N x C x H x W and N labels, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def as_robust_model(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    num_classes: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    name: str | None = None,
) -> RobustModel:
    """`model` as a `RobustModel` on `device`, its outputs checked on the first image.

    A bare `nn.Module` is wrapped (normalization `mean`/`std` when its inputs are not [0,1]
    pixels; `num_classes` read from its output when not given); a `RobustModel` is used as is.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"give the model as a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(model, RobustModel):
        if weights_dtype(model) in LOW_PRECISION:
            model = CastInputs(model, weights_dtype(model))
        if num_classes is None:
            with torch.no_grad():
                out = model.eval()(x[:1].to(next(iter(model.parameters()), torch.empty(0)).device))
            num_classes = (
                int(out.shape[1]) if isinstance(out, torch.Tensor) and out.dim() == 2 else 0
            )
            validate_outputs(model, out, 1, num_classes)
        model = RobustModel(
            model, tuple(x.shape[1:]), num_classes, mean, std, name=name or type(model).__name__
        )
    model.to(device)
    with torch.no_grad():
        validate_outputs(model, model(x[:1].to(device)), 1, model.num_classes)
    return model


def weights_sha256(model: nn.Module) -> str:
    """The hash of every tensor in the state dict, in key order: the object's 'checkpoint'."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:  # numpy has no bfloat16: its raw bytes, as for the others
            data = data.reshape(-1).view(torch.uint8)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TensorSource:
    """Images and labels held in memory, named by `indices` (default 0..N-1)."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    @classmethod
    def of(
        cls, x: torch.Tensor, y: torch.Tensor, indices: torch.Tensor | None = None
    ) -> TensorSource:
        check_tensors(x, y)
        idx = (
            torch.arange(len(x), dtype=torch.int64)
            if indices is None
            else indices.to(torch.int64).cpu()
        )
        if idx.shape != (len(x),):
            raise UsageError(f"indices must name each of the {len(x)} samples")
        return cls(x.detach().cpu().float(), y.detach().cpu().to(torch.int64), idx)

    @property
    def dataset(self) -> str:
        """The dataset's name in the store: the hash of the tensors' bytes."""
        data_hash = hashlib.sha256(
            self.images.numpy().tobytes() + self.labels.numpy().tobytes()
        ).hexdigest()[:16]
        return f"tensors:{data_hash}"

    def loader(self) -> Loader:
        position = {int(i): p for p, i in enumerate(self.indices.tolist())}
        images, labels = self.images, self.labels

        def load(chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rows = torch.tensor([position[int(i)] for i in chosen.tolist()], dtype=torch.int64)
            return images[rows], labels[rows]

        return load
