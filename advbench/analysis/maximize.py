"""Class activation maximization from noise (smooth-kernels §4.3; Simonyan et al. 2013).

Starting from a Gaussian-noise image, gradient ascent on one class's logit, projected onto
[0,1], for every class at once (one batch row per class). Steps are L2-normalized gradients
scaled so that each pixel moves by `lr` in RMS, which keeps the step size independent of the
model's gradient scale (the paper: 10000 plain steps of 0.001).
"""

from __future__ import annotations

from pathlib import Path

import torch

from advbench.analysis.common import AnalysisResult, pyplot, show_image
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel


def maximize_classes(
    model: RobustModel, steps: int = 200, lr: float = 0.01, init_std: float = 0.1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, logits): one image per class maximizing that class's logit."""
    if steps < 0 or lr <= 0:
        raise UsageError("maximize needs steps >= 0 and lr > 0")
    k = model.num_classes
    g = torch.Generator(device=model.device).manual_seed(seed)
    x = (
        0.5 + init_std * torch.randn((k, *model.input_shape), generator=g, device=model.device)
    ).clamp(0, 1)
    target = torch.arange(k, device=model.device)
    scale = float(x[0].numel()) ** 0.5
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            objective = model(x).gather(1, target.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(objective, x)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        x = (x.detach() + lr * scale * grad / norm).clamp(0, 1)
    with torch.no_grad():
        logits = model(x)
    return x.detach(), logits


def maximize_analysis(
    model: RobustModel,
    steps: int = 200,
    lr: float = 0.01,
    seed: int = 0,
    class_names: list[str] | None = None,
) -> AnalysisResult:
    images, logits = maximize_classes(model, steps, lr, seed=seed)
    probs = logits.softmax(1)
    names = class_names or [str(c) for c in range(model.num_classes)]
    rows = [
        [names[c], float(logits[c, c]), float(probs[c, c]), names[int(logits[c].argmax())]]
        for c in range(model.num_classes)
    ]
    return AnalysisResult(
        "maximize",
        ["class", "logit", "probability", "predicted_as"],
        rows,
        summary={"classes_reached": sum(r[0] == r[3] for r in rows)},
        config={"steps": steps, "lr": lr, "seed": seed},
        arrays={"images": images.cpu()},
    )


def plot_maximize(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    images = result.arrays["images"]
    k = len(images)
    fig, axes = plt.subplots(1, k, figsize=(1.6 * k, 2.2), dpi=100, squeeze=False)
    for j in range(k):  # classes
        show_image(axes[0][j], images[j].permute(1, 2, 0))
        axes[0][j].set_title(f"{result.rows[j][0]} ({result.rows[j][2]:.2f})", fontsize=7)
    fig.suptitle(f"class activation maximization, {result.config['steps']} steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
