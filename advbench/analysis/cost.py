"""Model cost (stride paper Figs. 6-7): parameters, FLOPs, activation memory and receptive field.

One forward pass of a single image runs under a torch function mode that follows every
tensor: conv and pooling calls grow the receptive field r and its jump j (r += (k - 1) d j,
j *= s), upsampling divides j, elementwise joins (residual adds) keep the largest r, and
global pooling or flattening spans the whole map. The same pass counts multiply-accumulates
of conv and linear calls (FLOPs = 2 x MACs); leaf modules' outputs give the activation memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from advbench.analysis.common import AnalysisResult, pyplot


@dataclass(frozen=True)
class ModelCost:
    params: int
    macs: int
    activation_bytes: (
        int  # outputs of all leaf modules for one image (float32 unless the model says otherwise)
    )
    receptive_field: float  # of the last conv layer's output, in input pixels
    layers: tuple[
        tuple[str, float, float], ...
    ]  # (conv layer, receptive field, jump) in execution order

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


class _Tracer(TorchFunctionMode):
    """Receptive-field bookkeeping and MAC counting over torch function calls."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.meta: dict[int, tuple[float, float]] = {id(x): (1.0, 1.0)}
        self.alive: list[torch.Tensor] = [x]
        self.macs = 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        tensors = [
            t
            for t in _flatten(args) + _flatten(list(kwargs.values()))
            if isinstance(t, torch.Tensor)
        ]
        known = [self.meta[id(t)] for t in tensors if id(t) in self.meta]
        first = next((t for t in tensors if id(t) in self.meta), None)
        if (
            name in ("conv2d", "linear")
            and len(args) > 1
            and isinstance(args[1], torch.Tensor)
            and isinstance(out, torch.Tensor)
        ):
            weight = args[1]
            self.macs += out.numel() * (weight[0].numel() if name == "conv2d" else weight.shape[-1])
        if not known or first is None:
            return out
        r, j = max(m[0] for m in known), max(m[1] for m in known)
        if name == "conv2d":
            k = args[1].shape[-1]
            d = _pair(_arg(args, kwargs, 5, "dilation", 1))[1]
            r, j = r + (k - 1) * d * j, j * _pair(_arg(args, kwargs, 3, "stride", 1))[1]
        elif name in ("max_pool2d", "avg_pool2d"):
            k = _pair(_arg(args, kwargs, 1, "kernel_size", 1))[1]
            s = _arg(args, kwargs, 2, "stride", None)
            s = k if s in (None, [], ()) else _pair(s)[1]
            d = _pair(_arg(args, kwargs, 4, "dilation", 1))[1] if name == "max_pool2d" else 1
            r, j = r + (k - 1) * d * j, j * s
        elif name in ("adaptive_avg_pool2d", "adaptive_max_pool2d") and first.dim() >= 3:
            size_in = first.shape[-1]
            size_out = max(1, out.shape[-1]) if isinstance(out, torch.Tensor) else 1
            k = math.ceil(size_in / size_out)
            r, j = r + (k - 1) * j, j * max(1, size_in // size_out)
        elif name == "interpolate" and isinstance(out, torch.Tensor) and first.dim() == 4:
            j = j * first.shape[-1] / out.shape[-1]
        elif (
            name in ("flatten", "reshape", "view")
            and isinstance(out, torch.Tensor)
            and first.dim() == 4
            and out.dim() == 2
        ):
            r = r + (first.shape[-1] - 1) * j  # every pixel feeds every output from here on
        for t in _flatten([out]):
            if isinstance(t, torch.Tensor):
                self.meta[id(t)] = (r, j)
                self.alive.append(t)
        return out


def _flatten(items: Any) -> list[Any]:
    flat: list[Any] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def model_cost(
    net: nn.Module, input_shape: Sequence[int], device: torch.device | str = "cpu"
) -> ModelCost:
    """Cost of one forward pass of a (1, *input_shape) image through `net` (in eval mode)."""
    was_training = net.training
    net.eval()
    x = torch.rand(1, *input_shape, device=device)
    tracer = _Tracer(x)
    layers: list[tuple[str, float, float]] = []
    activation = [0]
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(
                module.register_forward_hook(
                    lambda m, a, out, name=name: layers.append(
                        (name, *tracer.meta.get(id(out), (float("nan"), float("nan"))))
                    )
                )
            )
        if not list(module.children()):
            handles.append(
                module.register_forward_hook(
                    lambda m, a, out: activation.__setitem__(
                        0,
                        activation[0]
                        + sum(
                            t.numel() * t.element_size()
                            for t in _flatten([out])
                            if isinstance(t, torch.Tensor)
                        ),
                    )
                )
            )
    try:
        with torch.no_grad(), tracer:
            net(x)
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    params = sum(p.numel() for p in net.parameters())
    return ModelCost(
        params, tracer.macs, activation[0], layers[-1][1] if layers else float("nan"), tuple(layers)
    )


def receptive_fields(net: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, float, float]]:
    """(conv layer name, receptive field, jump) for every conv call, in execution order."""
    return list(model_cost(net, input_shape).layers)


def default_input_shape(net: nn.Module) -> tuple[int, int, int]:
    """3x32x32 (the stride paper's Fig. 7) for RGB networks; 1x28x28 for grey ones (Fashion-MNIST/MNIST builds)."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first.in_channels if first is not None else 3
    return (3, 32, 32) if channels == 3 else (channels, 28, 28)


def cost_rows(
    pattern: str = "*",
) -> list[tuple[str, tuple[int, ...] | None, ModelCost | None, str]]:
    """(model, input shape, cost or None, error) for every registered model matching `pattern`, built with its defaults."""
    import advbench.models  # noqa: F401  (registers the models)
    from advbench.models.registry import MODELS

    rows: list[tuple[str, tuple[int, ...] | None, ModelCost | None, str]] = []
    for name in MODELS.names(pattern):
        shape = None
        try:
            net = MODELS.get(name).build()
            shape = default_input_shape(net)
            rows.append((name, shape, model_cost(net, shape), ""))
        except Exception as exc:  # noqa: BLE001 - one model that cannot run must not hide the others
            rows.append((name, shape, None, f"{type(exc).__name__}: {exc}".splitlines()[0][:80]))
    return rows


def cost_analysis(net: nn.Module, input_shape: Sequence[int]) -> AnalysisResult:
    """Per conv layer receptive field (stride paper Fig. 6) plus the model's totals in the summary."""
    cost = model_cost(net, input_shape)
    rows = [[i, name, r, j] for i, (name, r, j) in enumerate(cost.layers)]
    return AnalysisResult(
        "cost",
        ["index", "layer", "receptive_field", "jump"],
        rows,
        summary={
            "params": cost.params,
            "macs": cost.macs,
            "flops": cost.flops,
            "activation_bytes": cost.activation_bytes,
            "receptive_field": cost.receptive_field,
        },
        config={"input_shape": list(input_shape)},
    )


def plot_cost(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(result.column("index"), result.column("receptive_field"), marker="o", markersize=3)
    ax.axhline(result.config["input_shape"][-1], color="k", linestyle=":", label="image size")
    ax.set_xlabel("conv layer (execution order)")
    ax.set_ylabel("receptive field (pixels)")
    s = result.summary
    ax.set_title(
        f"{s['params'] / 1e6:.2f} M params, {s['flops'] / 1e6:.1f} MFLOPs, {s['activation_bytes'] / 2**20:.2f} MiB activations",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
