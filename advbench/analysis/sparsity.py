"""Normalized Hoyer sparsity of activations per layer (dissertation Fig. 5.4).

For each spatial location's vector v across the d channels,

    h(v) = ((||v||_1 / ||v||_2)^2 - 1) / (d - 1)

which is 0 for a single nonzero element and 1 when all elements are equal (lower = sparser).
All-zero vectors have no defined value and are left out of the means. The same ratio over a
conv filter's weights is the filter sparsity ratio of dissertation §3.2.2.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from advbench.analysis.common import (
    AnalysisResult,
    batches,
    hooked,
    pyplot,
    select_layers,
)


def hoyer(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Normalized squared Hoyer measure along `dim`; nan for all-zero vectors or d = 1."""
    d = v.shape[dim]
    l1 = v.abs().sum(dim)
    l2sq = v.pow(2).sum(dim)
    if d < 2:
        return torch.full_like(l1, float("nan"))
    value = (l1.pow(2) / l2sq - 1) / (d - 1)
    return torch.where(l2sq > 0, value.clamp(0, 1), torch.full_like(value, float("nan")))


def activation_hoyer(t: torch.Tensor) -> torch.Tensor:
    """Per-sample mean Hoyer of an (N, C, ...) activation, over the channel vector at each location."""
    per_location = hoyer(t.float().flatten(2) if t.dim() > 2 else t.float().unsqueeze(-1), dim=1)
    return per_location.nanmean(dim=1)


def layer_sparsity(
    model: nn.Module, x: torch.Tensor, layers: str = "block", batch_size: int = 128
) -> dict[str, torch.Tensor]:
    """{layer: per-sample mean Hoyer sparsity of that layer's output}."""
    net = getattr(model, "net", model)
    modules = select_layers(net, layers)
    collected: dict[str, list[torch.Tensor]] = {name: [] for name, _ in modules}
    with (
        torch.no_grad(),
        hooked(modules, lambda name, t: collected[name].append(activation_hoyer(t).cpu())),
    ):
        for part in batches(len(x), batch_size):
            model(x[part])
    return {name: torch.cat(v) for name, v in collected.items()}


def sparsity_analysis(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, layers: str = "block", batch_size: int = 128
) -> AnalysisResult:
    per = layer_sparsity(model, x, layers, batch_size)
    modules = dict(getattr(model, "net", model).named_modules())
    rows = [
        [
            name,
            type(modules[name]).__name__,
            float(v.nanmean()),
            float(v.nanmedian()),
            float(torch.nan_to_num(v.float(), nan=0.0).std()),
        ]
        for name, v in per.items()
    ]
    return AnalysisResult(
        "sparsity",
        ["layer", "type", "hoyer_mean", "hoyer_median", "hoyer_std"],
        rows,
        config={"layers": layers, "n": len(x)},
    )


def plot_sparsity(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    names = result.column("layer")
    ax.bar(
        range(len(names)), result.column("hoyer_mean"), yerr=result.column("hoyer_std"), capsize=2
    )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("normalized Hoyer (0 = one-hot, 1 = constant)")
    ax.set_title("activation sparsity per layer (lower = sparser)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
