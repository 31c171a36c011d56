"""Block-input SNR under Gaussian noise (dissertation eq. 5.6, Fig. 5.6).

    SNR_n = 10 log10( E_x[ ||f_n(x)||_2^2 / ||f_n(x + w) - f_n(x)||_2^2 ] ) dB

with f_n(x) the input tensor of block n and w ~ N(0, sigma^2 I) (noisy images clipped to
[0,1] unless told otherwise). Zero noise gives an infinite SNR.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from advbench.analysis.common import (
    AnalysisResult,
    db,
    paired_stats,
    pyplot,
    select_layers,
)
from advbench.analysis.perturb import gaussian_noise
from advbench.analysis.psr import ratio


def snr_stats(clean: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample signal power over noise power of flattened (N, D) tensors."""
    return {"snr": ratio(clean.pow(2).sum(1), (other - clean).pow(2).sum(1))}


def block_snr(
    model: nn.Module,
    x: torch.Tensor,
    x_noisy: torch.Tensor,
    layers: str | list[tuple[str, nn.Module]] = "block",
    batch_size: int = 128,
) -> dict[str, float]:
    """{"input": dB, block: dB} - the SNR of the image and of each block's input, eq. 5.6."""
    net = getattr(model, "net", model)
    modules = select_layers(net, layers) if isinstance(layers, str) else layers
    per = {"input": snr_stats(x.flatten(1).float(), x_noisy.flatten(1).float())}
    per.update(paired_stats(model, x, x_noisy, modules, snr_stats, batch_size, inputs=True))
    return {name: db(s["snr"].mean(), power=True) for name, s in per.items()}


def snr_analysis(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float] = (0.1,),
    layers: str = "block",
    batch_size: int = 128,
    seed: int = 0,
    clip: bool = True,
) -> AnalysisResult:
    rows = []
    for k, sigma in enumerate(sigmas):
        noisy = x + gaussian_noise(x, sigma, seed, stream=k)
        if clip:
            noisy = noisy.clamp(0, 1)
        for name, value in block_snr(model, x, noisy, layers, batch_size).items():
            rows.append([float(sigma), name, value])
    return AnalysisResult(
        "snr",
        ["sigma", "block_input", "snr_db"],
        rows,
        config={"sigmas": list(sigmas), "layers": layers, "n": len(x), "seed": seed, "clip": clip},
    )


def plot_snr(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for sigma in sorted(set(result.column("sigma"))):
        rows = [r for r in result.rows if r[0] == sigma]
        ax.plot(
            range(len(rows)),
            [r[2] for r in rows],
            marker="o",
            markersize=3,
            label=f"sigma={sigma:g}",
        )
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r[1] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("SNR (dB)")
    ax.set_title("SNR of block inputs under Gaussian noise")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
