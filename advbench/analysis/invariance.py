"""Prediction invariance (stride paper Table II): the share of samples whose predicted class
stays the same under a perturbation of budget eps, right or wrong.

By default the attack is aimed at the model's own clean prediction (it tries to change the
prediction, which is what invariance measures); `target="label"` attacks the true label as an
evaluation does. Accuracy under the same perturbations is reported alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from advbench.analysis.common import AnalysisResult, pyplot
from advbench.analysis.perturb import adversarial_examples
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel


def unchanged_share(pred_clean: torch.Tensor, pred_pert: torch.Tensor) -> float:
    """Fraction of equal predictions (right or wrong)."""
    if len(pred_clean) == 0:
        raise UsageError("invariance needs at least one sample")
    return float((pred_clean.cpu() == pred_pert.cpu()).float().mean())


def invariance_analysis(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: Sequence[float] = (0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255, 10 / 255),
    attack: str = "pgd",
    norm: str = "linf",
    target: str = "prediction",
    batch_size: int = 128,
    seed: int = 0,
) -> AnalysisResult:
    if target not in ("prediction", "label"):
        raise UsageError(f"--target is prediction or label, not {target!r}")
    pred = torch.cat([model.predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    aim = pred if target == "prediction" else y
    rows, label = [], attack
    for e in eps:
        _, adv_pred, label = adversarial_examples(
            model, x, aim, attack, norm, float(e), batch_size, seed
        )
        rows.append(
            [
                float(e),
                unchanged_share(pred, adv_pred),
                float((adv_pred.cpu() == y.cpu()).float().mean()),
            ]
        )
    return AnalysisResult(
        "invariance",
        ["eps", "unchanged", "accuracy"],
        rows,
        summary={"clean_accuracy": float((pred.cpu() == y.cpu()).float().mean())},
        config={
            "attack": label,
            "norm": norm,
            "eps": [float(e) for e in eps],
            "target": target,
            "n": len(x),
            "seed": seed,
        },
    )


def plot_invariance(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    eps = result.column("eps")
    ax.plot(
        eps,
        [100 * v for v in result.column("unchanged")],
        marker="o",
        label="unchanged predictions",
    )
    ax.plot(
        eps,
        [100 * v for v in result.column("accuracy")],
        marker="s",
        linestyle="--",
        label="accuracy",
    )
    ax.set_xlabel(f"eps ({result.config['norm']})")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(f"prediction invariance under {result.config['attack']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
