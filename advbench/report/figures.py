"""Figures for self-contained HTML pages: matplotlib (Agg, no display) drawn into PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_uri(fig: Any) -> str:
    """The figure as a PNG data URI; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def line_figure(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str = "accuracy %",
    title: str = "",
) -> Any:
    """(label, x, y as shares) lines on one axes, y in percent: the open matplotlib figure."""
    fig, ax = _pyplot().subplots(figsize=(6.4, 4.0), dpi=100)
    for label, xs, ys in series:
        ax.plot(list(xs), [100 * y for y in ys], marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def line_plot(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str = "accuracy %",
    title: str = "",
) -> str:
    """`line_figure` as a data URI ("" with nothing to draw)."""
    return figure_uri(line_figure(series, xlabel, ylabel, title)) if series else ""


def save_figure(fig: Any, path: Any) -> None:
    """Write the figure to `path` and close it."""
    fig.savefig(path)
    _pyplot().close(fig)


def _hwc(image: Any) -> np.ndarray:
    """C x H x W in [0,1] -> H x W (one channel) or H x W x C, clipped."""
    array = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))


def example_grid(examples: Sequence[tuple[Any, Any, str, str, str]]) -> str:
    """One column per example, rows: clean image, adversarial image, perturbation (scaled so its
    largest entry fills the range, grey = 0). Each example is (clean CxHxW, adversarial CxHxW,
    the three images' titles)."""
    if not examples:
        return ""
    plt = _pyplot()
    fig, axes = plt.subplots(
        3, len(examples), figsize=(max(4.0, 1.7 * len(examples)), 5.4), dpi=100, squeeze=False
    )
    for column, (clean, adversarial, *titles) in enumerate(examples):
        delta = np.asarray(adversarial, dtype=np.float32) - np.asarray(clean, dtype=np.float32)
        peak = float(np.abs(delta).max()) or 1.0
        images = [_hwc(clean), _hwc(adversarial), _hwc(0.5 + delta / (2 * peak))]
        for row, (image, title) in enumerate(zip(images, titles)):
            ax = axes[row][column]
            ax.imshow(
                image,
                cmap="gray" if image.ndim == 2 else None,
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return figure_uri(fig)
