"""Proposition 1 of the stride paper (§III-B, Fig. 2, App. A Fig. 8), measured on random CNNs.

A randomly initialized CNN of 3x3 stride-1 convs (out channels 3, 16, 32, 64 by default)
maps an input of size S x S to features of the same size, then pools them globally by
average or max. Under uniform input noise delta ~ U[-a, a], the output disturbance
||pool(g(x + delta)) - pool(g(x))||_inf is measured for growing feature sizes S: the
proposition predicts it shrinks with S after average pooling and grows after max pooling.
Repeated for several weight initializations, with and without ReLU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from advbench.analysis.common import AnalysisResult, batches, pyplot
from advbench.core.errors import UsageError

INITS = ("normal", "uniform", "xavier_normal", "xavier_uniform", "kaiming_normal")


def random_weights(
    channels: Sequence[int], init: str, generator: torch.Generator, in_channels: int = 3
) -> list[torch.Tensor]:
    """3x3 conv kernels for in_channels -> channels[0] -> ... drawn with `init`.

    normal: N(0, 0.1^2); uniform: U(-0.1, 0.1); xavier_*: Glorot; kaiming_normal: He (fan in, ReLU gain).
    """
    if init not in INITS:
        raise UsageError(f"unknown initialization {init!r}; known: {', '.join(INITS)}")
    weights, cin = [], in_channels
    for cout in channels:
        shape = (cout, cin, 3, 3)
        fan_in, fan_out = cin * 9, cout * 9
        z = torch.randn(shape, generator=generator)
        u = torch.rand(shape, generator=generator) * 2 - 1
        w = {
            "normal": 0.1 * z,
            "uniform": 0.1 * u,
            "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)) * z,
            "xavier_uniform": math.sqrt(6.0 / (fan_in + fan_out)) * u,
            "kaiming_normal": math.sqrt(2.0 / fan_in) * z,
        }[init]
        weights.append(w)
        cin = cout
    return weights


def random_cnn_features(
    x: torch.Tensor, weights: list[torch.Tensor], activation: bool
) -> torch.Tensor:
    for w in weights:
        x = F.conv2d(x, w.to(x), padding=1)
        if activation:
            x = F.relu(x)
    return x


def output_disturbance(
    weights: list[torch.Tensor],
    size: int,
    activation: bool,
    amplitude: float,
    perturbations: int,
    generator: torch.Generator,
    batch_size: int = 100,
    in_channels: int = 3,
) -> dict[str, torch.Tensor]:
    """{"avg"|"max": per-perturbation Linf disturbance of the pooled output} for one random image of size x size."""
    x = torch.rand(1, in_channels, size, size, generator=generator)
    clean = random_cnn_features(x, weights, activation)
    pooled = {"avg": clean.mean((2, 3)), "max": clean.amax((2, 3))}
    out: dict[str, list[torch.Tensor]] = {"avg": [], "max": []}
    with torch.no_grad():
        for part in batches(perturbations, batch_size):
            delta = (
                torch.rand(part.stop - part.start, in_channels, size, size, generator=generator) * 2
                - 1
            ) * amplitude
            feats = random_cnn_features(x + delta, weights, activation)
            out["avg"].append((feats.mean((2, 3)) - pooled["avg"]).abs().amax(1))
            out["max"].append((feats.amax((2, 3)) - pooled["max"]).abs().amax(1))
    return {k: torch.cat(v) for k, v in out.items()}


def features_analysis(
    sizes: Sequence[int] = (8, 16, 24, 32),
    channels: Sequence[int] = (3, 16, 32, 64),
    inits: Sequence[str] = INITS,
    amplitude: float = 0.1,
    perturbations: int = 200,
    seed: int = 0,
    batch_size: int = 100,
) -> AnalysisResult:
    if perturbations < 1 or not sizes or min(sizes) < 1:
        raise UsageError("features needs at least one perturbation and positive feature sizes")
    if len(channels) < 2 or min(channels) < 1:
        raise UsageError(
            f"--channels must be the input's and at least one conv layer's channels, each >= 1, got {','.join(map(str, channels))}"
        )
    if not (math.isfinite(amplitude) and amplitude > 0):
        raise UsageError(f"--amplitude must be a positive number, got {amplitude}")
    rows = []
    for k, init in enumerate(inits):
        weights = random_weights(channels, init, torch.Generator().manual_seed(seed * 100 + k))
        for activation in (False, True):
            for size in sizes:
                gen = torch.Generator().manual_seed(
                    seed * 100003 + size
                )  # the same image and noise for every network
                per = output_disturbance(
                    weights, int(size), activation, amplitude, perturbations, gen, batch_size
                )
                for pool in ("avg", "max"):
                    rows.append(
                        [
                            init,
                            "relu" if activation else "none",
                            pool,
                            int(size),
                            float(per[pool].mean()),
                            float(per[pool].std()),
                        ]
                    )
    return AnalysisResult(
        "features",
        ["init", "activation", "pool", "feature_size", "disturbance_mean", "disturbance_std"],
        rows,
        config={
            "sizes": list(sizes),
            "channels": list(channels),
            "inits": list(inits),
            "amplitude": amplitude,
            "perturbations": perturbations,
            "seed": seed,
        },
    )


def plot_features(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    inits = result.config["inits"]
    colors = plt.get_cmap("tab10")
    for ax, act in zip(axes, ("none", "relu")):
        for i, init in enumerate(inits):
            for pool, style in (("avg", "-"), ("max", "--")):
                rows = [r for r in result.rows if r[0] == init and r[1] == act and r[2] == pool]
                ax.plot(
                    [r[3] for r in rows],
                    [r[4] for r in rows],
                    style,
                    marker="o",
                    markersize=3,
                    color=colors(i),
                    label=f"{init}, {pool}",
                )
        ax.set_yscale("log")
        ax.set_xlabel("feature size (H = W)")
        ax.set_ylabel("Linf output disturbance")
        ax.set_title(f"activation: {act} (solid avg pool, dashed max pool)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
