"""Shared pieces of the analyses: the result type, layer selection, hooks, batching and output files."""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advbench.core.errors import UsageError


@dataclass
class AnalysisResult:
    """Rows of numbers (the CSV), a summary and the settings used (both go into the JSON record)."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # Arrays too large for the table (kernels, images) that only the plot needs; not written to JSON.
    arrays: dict[str, Any] = field(default_factory=dict, repr=False)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([[_plain(v) for v in row] for row in self.rows])
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("arrays")
        return _jsonable(data)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _jsonable(value: Any) -> Any:
    """Floats that JSON cannot hold (inf, nan) become strings; tensors become lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def write_outputs(
    result: AnalysisResult,
    out_dir: Path,
    stem: str,
    plot: Callable[[AnalysisResult, Path], None] | None,
    record: dict[str, Any],
) -> dict[str, Path]:
    """Write STEM.csv, STEM.png (when there is a plot) and STEM.json (the record) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"{stem}.csv", "json": out_dir / f"{stem}.json"}
    paths["csv"].write_text(result.to_csv())
    if plot is not None:
        paths["png"] = out_dir / f"{stem}.png"
        plot(result, paths["png"])
    payload = {
        **_jsonable(record),
        **result.to_dict(),
        "files": {k: str(p) for k, p in paths.items()},
    }
    paths["json"].write_text(json.dumps(payload, indent=2))
    return paths


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- layers

LAYER_KINDS = ("conv", "block", "all")


def select_layers(net: nn.Module, layers: str = "conv") -> list[tuple[str, nn.Module]]:
    """Named modules of `net` to hook, in registration order.

    conv: every Conv2d and Linear; block: the outermost modules whose class name ends in
    "Block" (falling back to "Unit", then to conv layers) plus the classifier's Linear;
    all: every leaf module; anything else: comma-separated fnmatch patterns over module names.
    """
    named = [(n, m) for n, m in net.named_modules() if n]
    chosen: list[tuple[str, nn.Module]]
    if layers == "conv":
        chosen = [(n, m) for n, m in named if isinstance(m, (nn.Conv2d, nn.Linear))]
    elif layers == "block":
        chosen = []
        for suffix in ("Block", "Unit"):
            chosen = _outermost([(n, m) for n, m in named if type(m).__name__.endswith(suffix)])
            if chosen:
                break
        if not chosen:
            return select_layers(net, "conv")
        linears = [(n, m) for n, m in named if isinstance(m, nn.Linear)]
        if linears and linears[-1][0] not in {n for n, _ in chosen}:
            chosen.append(linears[-1])
    elif layers == "all":
        chosen = [(n, m) for n, m in named if not list(m.children())]
    else:
        patterns = [p.strip() for p in layers.split(",") if p.strip()]
        chosen = [(n, m) for n, m in named if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not chosen:
        raise UsageError(
            f"no layers match {layers!r}; use conv, block, all or patterns over module names"
        )
    return chosen


def _outermost(named: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    names = [n for n, _ in named]
    return [
        (n, m)
        for n, m in named
        if not any(n.startswith(other + ".") for other in names if other != n)
    ]


@contextlib.contextmanager
def hooked(
    modules: list[tuple[str, nn.Module]],
    fn: Callable[[str, torch.Tensor], None],
    inputs: bool = False,
) -> Iterator[None]:
    """Call fn(name, tensor) with each module's output (or first input) on every forward pass."""

    def pre_hook(name: str, args: tuple) -> None:  # returning None leaves the module's input alone
        fn(name, args[0].detach())

    def post_hook(name: str, out: Any) -> None:  # returning None leaves the module's output alone
        fn(name, _first(out).detach())

    handles = []
    for name, module in modules:
        if inputs:
            handles.append(
                module.register_forward_pre_hook(lambda m, args, name=name: pre_hook(name, args))
            )
        else:
            handles.append(
                module.register_forward_hook(lambda m, args, out, name=name: post_hook(name, out))
            )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def batches(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def paired_stats(
    model: nn.Module,
    x: torch.Tensor,
    x_other: torch.Tensor,
    modules: list[tuple[str, nn.Module]],
    stat: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
    batch_size: int = 128,
    inputs: bool = False,
) -> dict[str, dict[str, torch.Tensor]]:
    """Per-sample statistics of each hooked layer, comparing x with x_other.

    x and x_other go through the network in one batch ([x; x_other], eval mode keeps samples
    independent); the hook reduces the two halves to per-sample numbers at once, so no
    activations are stored. Returns {layer: {stat name: tensor of len(x)}}.
    """
    collected: dict[str, dict[str, list[torch.Tensor]]] = {name: {} for name, _ in modules}
    current = [0]

    def hook(name: str, t: torch.Tensor) -> None:
        n = current[0]
        clean, other = t[:n].flatten(1).float(), t[n:].flatten(1).float()
        for key, value in stat(clean, other).items():
            collected[name].setdefault(key, []).append(value.cpu())

    with torch.no_grad(), hooked(modules, hook, inputs=inputs):
        for part in batches(len(x), batch_size):
            current[0] = part.stop - part.start
            model(torch.cat([x[part], x_other[part]]))
    return {name: {k: torch.cat(v) for k, v in stats.items()} for name, stats in collected.items()}


def image_grid(images: torch.Tensor, nrow: int, pad: int = 1) -> torch.Tensor:
    """(N, C, H, W) -> (H', W', C) grid for imshow, padded with white."""
    n, c, h, w = images.shape
    ncol = math.ceil(n / nrow)
    filled = torch.ones(nrow * ncol, c, h + pad, w + pad, dtype=images.dtype)
    filled[:n, :, pad:, pad:] = images.detach().cpu()
    grid = (
        filled.view(nrow, ncol, c, h + pad, w + pad)
        .permute(2, 0, 3, 1, 4)
        .reshape(c, nrow * (h + pad), ncol * (w + pad))
    )
    grid = torch.nn.functional.pad(grid, (0, pad, 0, pad), value=1.0)
    return grid.permute(1, 2, 0)


def show_image(ax: Any, img: torch.Tensor, **kwargs: Any) -> None:
    """imshow of an (H, W, C) image in [0,1]: grey when C == 1."""
    img = img.detach().cpu().clamp(0, 1)
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0].numpy(), cmap="gray", vmin=0, vmax=1, **kwargs)
    else:
        ax.imshow(img.numpy(), **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def db(ratio: torch.Tensor | float, power: bool = False) -> float:
    """A ratio of norms (20 log10) or of powers (10 log10) in dB; 0 -> -inf, inf -> inf."""
    value = float(ratio)
    if value <= 0:
        return float("-inf")
    if math.isinf(value):
        return float("inf")
    return (10.0 if power else 20.0) * math.log10(value)
