"""Accuracy under common corruptions in the style of CIFAR-10-C (Hendrycks & Dietterich), at
5 severities (dissertation Table 5.2), and its plot.

The corruptions themselves (torch, batched, seeded by (seed, corruption name)) are in
`corruption_functions` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from advbench.analysis.common import (
    AnalysisResult,
    batches,
    image_grid,
    pyplot,
    show_image,
)
from advbench.analysis.corruption_functions import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptionFn,
    brightness,
    contrast,
    corrupt,
    corruption_names,
    defocus_blur,
    elastic,
    fog,
    frost,
    gaussian_blur,
    gaussian_filter,
    gaussian_noise,
    impulse_noise,
    jpeg,
    jpeg_roundtrip,
    motion_blur,
    pixelate,
    shot_noise,
    snow,
    speckle_noise,
    zoom_blur,
)
from advbench.core.seeding import derive_seed

__all__ = [
    "CORRUPTIONS",
    "CorruptionFn",
    "SEVERITIES",
    "brightness",
    "contrast",
    "corrupt",
    "corruption_analysis",
    "corruption_names",
    "defocus_blur",
    "elastic",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_filter",
    "gaussian_noise",
    "impulse_noise",
    "jpeg",
    "jpeg_roundtrip",
    "motion_blur",
    "pixelate",
    "plot_corruptions",
    "shot_noise",
    "snow",
    "speckle_noise",
    "zoom_blur",
]


def corruption_analysis(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    corruptions: str | Sequence[str] | None = None,
    batch_size: int = 128,
    seed: int = 0,
    indices: torch.Tensor | None = None,
) -> AnalysisResult:
    """Accuracy per corruption and severity, per-corruption mean and the mean corruption accuracy.

    Each batch's corruption noise is seeded by (seed, name, batch start index in this subset).
    """
    names = corruption_names(corruptions)

    def accuracy(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> float:
        correct = 0
        with torch.no_grad():
            for part in batches(len(x), batch_size):
                correct += int((model(fn(x[part], part.start)).argmax(1) == y[part]).sum())
        return correct / len(x)

    def corrupted(name: str, severity: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
        return lambda xb, start: corrupt(xb, name, severity, derive_seed(seed, start))

    clean = accuracy(lambda xb, start: xb)
    rows: list[list[Any]] = []
    mean_of: dict[str, float] = {}  # corruption -> its accuracy averaged over the severities
    for name in names:
        accs = [accuracy(corrupted(name, s)) for s in SEVERITIES]
        mean_of[name] = sum(accs) / len(accs)
        rows.append([name, CORRUPTIONS[name][0], *accs, mean_of[name]])
    categories = {}
    for cat in dict.fromkeys(CORRUPTIONS[n][0] for n in names):
        means = [mean_of[n] for n in names if CORRUPTIONS[n][0] == cat]
        categories[cat] = sum(means) / len(means)
    summary = {
        "clean_accuracy": clean,
        "mean_corruption_accuracy": sum(mean_of.values()) / len(mean_of),
        "per_category": categories,
    }
    examples = (
        torch.stack(
            [corrupt(x[:1], name, s, derive_seed(seed, 0))[0] for name in names for s in SEVERITIES]
        )
        if len(x)
        else None
    )
    return AnalysisResult(
        "corruptions",
        ["corruption", "category", *[f"severity_{s}" for s in SEVERITIES], "mean"],
        rows,
        summary,
        config={"corruptions": names, "n": len(x), "seed": seed},
        arrays={"examples": examples, "clean_example": x[:1].cpu()},
    )


def plot_corruptions(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(13, 6), dpi=100, gridspec_kw={"width_ratios": [1, 1.4]}
    )
    examples = result.arrays.get("examples")
    if examples is not None:
        show_image(ax1, image_grid(examples.cpu(), nrow=len(result.rows)))
        ax1.set_yticks([(i + 0.5) * (examples.shape[-2] + 1) for i in range(len(result.rows))])
        ax1.set_yticklabels(result.column("corruption"), fontsize=7)
        ax1.set_title("severity 1 to 5", fontsize=9)
    names = result.column("corruption")
    ax2.barh(range(len(names)), [100 * v for v in result.column("mean")], color="tab:blue")
    ax2.axvline(100 * result.summary["clean_accuracy"], color="k", linestyle="--", label="clean")
    ax2.axvline(
        100 * result.summary["mean_corruption_accuracy"],
        color="tab:red",
        linestyle=":",
        label="mean corruption accuracy",
    )
    ax2.set_yticks(range(len(names)))
    ax2.set_yticklabels(names, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlim(0, 100)
    ax2.set_xlabel("accuracy % (mean over severities)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
