"""The most deceptive adversarial example per class (smooth-kernels Fig. 2 and App.): among the
successful adversarial examples of each true class, the one the model misclassifies with the
highest softmax confidence. FGSM as in the paper by default; any registered attack works.
"""

from __future__ import annotations

from pathlib import Path

import torch

from advbench.analysis.common import AnalysisResult, batches, pyplot, show_image
from advbench.analysis.perturb import adversarial_examples
from advbench.models.wrapper import RobustModel


def most_deceptive(
    confidence: torch.Tensor, success: torch.Tensor, y: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Per class, the index of the successful sample with the highest confidence (-1 where none succeeded)."""
    classes = torch.arange(num_classes, device=y.device).view(1, -1)
    score = torch.where(
        (y.view(-1, 1) == classes) & success.view(-1, 1),
        confidence.view(-1, 1),
        torch.full_like(confidence.view(-1, 1), float("-inf")),
    )
    best = score.argmax(0)
    return torch.where(torch.isinf(score.amax(0)), torch.full_like(best, -1), best)


def deceptive_analysis(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str = "fgsm",
    norm: str = "linf",
    eps: float = 0.1,
    batch_size: int = 128,
    seed: int = 0,
    class_names: list[str] | None = None,
) -> AnalysisResult:
    x_adv, adv_pred, label = adversarial_examples(model, x, y, attack, norm, eps, batch_size, seed)
    with torch.no_grad():
        probs = torch.cat([model(x_adv[p]).softmax(1) for p in batches(len(x), batch_size)])
    confidence = probs.gather(1, adv_pred.view(-1, 1)).squeeze(1)
    success = adv_pred != y
    best = most_deceptive(confidence, success, y, model.num_classes).cpu()
    names = class_names or [str(c) for c in range(model.num_classes)]
    counts = torch.bincount(y[success].cpu(), minlength=model.num_classes)
    rows = []
    for c, i in enumerate(best.tolist()):  # classes, not samples
        if i < 0:
            rows.append([names[c], "", "", float("nan"), int(counts[c])])
        else:
            rows.append(
                [names[c], i, names[int(adv_pred[i])], float(confidence[i]), int(counts[c])]
            )
    found = best[best >= 0]
    return AnalysisResult(
        "deceptive",
        ["class", "sample", "predicted_as", "confidence", "successes"],
        rows,
        summary={"attack_success_rate": float(success.float().mean())},
        config={"attack": label, "norm": norm, "eps": eps, "n": len(x), "seed": seed},
        arrays={
            "clean": x[found.to(x.device)].cpu(),
            "adversarial": x_adv[found.to(x.device)].cpu(),
            "labels": [r[0] for r in rows if r[1] != ""],
            "predicted": [r[2] for r in rows if r[1] != ""],
        },
    )


def plot_deceptive(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    clean, adv = result.arrays["clean"], result.arrays["adversarial"]
    k = max(1, len(clean))
    fig, axes = plt.subplots(2, k, figsize=(1.6 * k, 3.8), dpi=100, squeeze=False)
    for j in range(len(clean)):
        show_image(axes[0][j], clean[j].permute(1, 2, 0))
        show_image(axes[1][j], adv[j].permute(1, 2, 0))
        axes[0][j].set_title(f"O: {result.arrays['labels'][j]}", fontsize=7)
        axes[1][j].set_title(f"-> {result.arrays['predicted'][j]}", fontsize=7)
    if not len(clean):
        axes[0][0].set_title("no successful adversarial example")
    fig.suptitle(
        f"most deceptive {result.config['attack']} examples per class ({result.config['norm']}, eps={result.config['eps']:g})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
