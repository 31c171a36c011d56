"""How polarized a polarizing front end is (dissertation §4.1, Fig. 4.4).

The front end computes z = (w * x) / ||w||_1 per filter and quantizes it at +-c. Because
|w * delta| / ||w||_1 <= ||delta||_inf, an Linf perturbation of size eps moves every z by at most
eps (Proposition 1): only outputs within eps of a threshold can flip. A well-polarized front end
puts its outputs in clusters at -1, 0 and 1, far from +-c, and then an eps-attack cannot change
the quantized map at all. This analysis measures exactly that on clean test images:

- the histogram of z (the dissertation's Fig. 4.4);
- the share of outputs within eps of +-c (those an eps-perturbation can flip);
- the share near each cluster (within `cluster_width` of -1, 0, 1);
- per filter, how many pixels carry 90 % of its L1 mass (the dissertation finds near
  pixel-basis filters, i.e. ~1 pixel).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from advbench.analysis.common import AnalysisResult, batches, hooked, pyplot
from advbench.core.errors import UsageError
from advbench.models.polarize import PolarizingFrontEnd


def front_end_of(model: nn.Module) -> PolarizingFrontEnd:
    """The model's polarizing front end, or a UsageError naming what the model is."""
    for module in model.modules():
        if isinstance(module, PolarizingFrontEnd):
            return module
    raise UsageError(
        f"{getattr(model, 'name', type(model).__name__)} has no polarizing front end (analyze polarization needs one, e.g. pfe-madry)"
    )


def front_end_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """z = (w * x) / ||w||_1 before the quantizer, for every image, filter and location (flattened)."""
    front = front_end_of(model).front
    collected: list[torch.Tensor] = []
    with (
        torch.no_grad(),
        hooked([("front", front)], lambda _, t: collected.append(t.flatten().cpu())),
    ):
        for part in batches(len(x), batch_size):
            model(x[part])
    return torch.cat(collected)


def pixels_for_mass(weight: torch.Tensor, mass: float = 0.9) -> torch.Tensor:
    """Per filter: the fewest pixels whose |w| sum to `mass` of the filter's L1 norm."""
    w = weight.detach().abs().flatten(1)
    share = w.sort(dim=1, descending=True).values.cumsum(1) / w.sum(1, keepdim=True).clamp_min(
        1e-12
    )
    return (share < mass).sum(1) + 1


def polarization_analysis(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    bins: int = 80,
    cluster_width: float = 0.1,
    batch_size: int = 128,
) -> AnalysisResult:
    if eps < 0 or cluster_width <= 0 or bins < 2:
        raise UsageError(
            "analyze polarization needs eps >= 0, cluster width > 0 and at least 2 bins"
        )
    pfe = front_end_of(model)
    c = pfe.quantizer.threshold
    z = front_end_outputs(model, x, batch_size)
    edges = torch.linspace(-1.0, 1.0, bins + 1)
    counts = torch.histc(z.clamp(-1, 1), bins=bins, min=-1.0, max=1.0)
    total = float(len(z))
    rows = [
        [float(edges[i]), float(edges[i + 1]), int(counts[i]), float(counts[i]) / total]
        for i in range(bins)
    ]
    near = ((z - c).abs() <= eps) | ((z + c).abs() <= eps)
    pixels = pixels_for_mass(pfe.front.weight)
    summary = {
        "threshold": c,
        "eps": eps,
        "share_flippable_at_eps": float(near.float().mean()),
        "share_near_minus_1": float(((z + 1).abs() <= cluster_width).float().mean()),
        "share_near_0": float((z.abs() <= cluster_width).float().mean()),
        "share_near_plus_1": float(((z - 1).abs() <= cluster_width).float().mean()),
        "share_below_minus_threshold": float((z < -c).float().mean()),
        "share_above_threshold": float((z > c).float().mean()),
        "pixels_for_90pct_l1_mean": float(pixels.float().mean()),
        "pixels_per_filter": int(pfe.front.weight[0].numel()),
    }
    return AnalysisResult(
        "polarization",
        ["bin_low", "bin_high", "count", "share"],
        rows,
        summary,
        config={"eps": eps, "bins": bins, "cluster_width": cluster_width, "n": len(x)},
    )


def plot_polarization(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    s = result.summary
    low, high, share = result.column("bin_low"), result.column("bin_high"), result.column("share")
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.bar(low, share, width=[h - lo for lo, h in zip(low, high)], align="edge", color="tab:blue")
    c, eps = s["threshold"], s["eps"]
    for t in (-c, c):
        ax.axvline(t, color="black", lw=1)
        ax.axvspan(t - eps, t + eps, color="tab:red", alpha=0.2)
    ax.set_xlabel("front-end output z = (w * x) / ||w||_1 (clipped to [-1, 1])")
    ax.set_ylabel("share of outputs")
    ax.set_title(
        f"front-end outputs: {100 * s['share_flippable_at_eps']:.1f} % within eps = {eps:g} of the thresholds (red) can flip"
    )
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
