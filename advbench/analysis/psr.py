"""Perturbation-to-signal ratio per layer (dissertation eq. 3.1; Figs. 3.12-3.13) and the
normalized change of each layer's activations under attack (KAP Fig. A4).

    PSR_l = ||f_l(x) - f_l(x + e)||_p / ||f_l(x)||_p,  p in {1, 2, inf}

per image; the table holds the mean over images, that mean in dB (20 log10, a ratio of
norms: the negative of an SNR in dB) and the median. The mean L2 PSR is KAP's normalized
change ||y_adv - y_cln|| / ||y_cln||.
"""

from __future__ import annotations

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
from advbench.analysis.perturb import adversarial_examples
from advbench.models.wrapper import RobustModel

NORMS = ("l1", "l2", "linf")


def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den per sample, with 0/0 = 0 (nothing changed) and x/0 = inf."""
    out = num / den.clamp_min(torch.finfo(num.dtype).tiny)
    out = torch.where(
        den == 0,
        torch.where(num == 0, torch.zeros_like(num), torch.full_like(num, float("inf"))),
        out,
    )
    return out


def psr_stats(clean: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample PSR in L1, L2 and Linf of flattened (N, D) activations."""
    diff = other - clean
    return {
        "l1": ratio(diff.abs().sum(1), clean.abs().sum(1)),
        "l2": ratio(diff.norm(dim=1), clean.norm(dim=1)),
        "linf": ratio(diff.abs().amax(1), clean.abs().amax(1)),
    }


def layer_psr(
    model: nn.Module,
    x: torch.Tensor,
    x_pert: torch.Tensor,
    layers: str | list[tuple[str, nn.Module]] = "conv",
    batch_size: int = 128,
) -> dict[str, dict[str, torch.Tensor]]:
    """{"input": ..., layer: {"l1"|"l2"|"linf": per-sample PSR}} for the input and each hooked layer's output."""
    net = getattr(model, "net", model)
    modules = select_layers(net, layers) if isinstance(layers, str) else layers
    stats = {"input": psr_stats(x.flatten(1).float(), x_pert.flatten(1).float())}
    stats.update(paired_stats(model, x, x_pert, modules, psr_stats, batch_size))
    return {k: {n: v.cpu() for n, v in s.items()} for k, s in stats.items()}


def psr_analysis(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str = "pgd",
    norm: str = "linf",
    eps: float = 0.1,
    layers: str = "conv",
    batch_size: int = 128,
    seed: int = 0,
) -> AnalysisResult:
    x_adv, adv_pred, label = adversarial_examples(model, x, y, attack, norm, eps, batch_size, seed)
    stats = layer_psr(model, x, x_adv, layers, batch_size)
    modules = dict(getattr(model, "net", model).named_modules())
    rows = []
    for name, per in stats.items():
        means = {p: float(per[p].mean()) for p in NORMS}
        rows.append(
            [
                name,
                "input" if name == "input" else type(modules[name]).__name__,
                *[means[p] for p in NORMS],
                *[db(means[p]) for p in NORMS],
                float(per["l2"].median()),
            ]
        )
    clean_acc = float((model.predict(x) == y).float().mean())
    return AnalysisResult(
        "psr",
        [
            "layer",
            "type",
            "psr_l1",
            "psr_l2",
            "psr_linf",
            "psr_l1_db",
            "psr_l2_db",
            "psr_linf_db",
            "psr_l2_median",
        ],
        rows,
        summary={
            "clean_accuracy": clean_acc,
            "adversarial_accuracy": float((adv_pred.cpu() == y.cpu()).float().mean()),
            "attack": label,
        },
        config={
            "attack": label,
            "norm": norm,
            "eps": eps,
            "layers": layers,
            "n": len(x),
            "seed": seed,
        },
        arrays={"l2": {k: v["l2"] for k, v in stats.items()}},
    )


def plot_psr(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    names = result.column("layer")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for p in NORMS:
        ax1.plot(
            range(len(names)),
            result.column(f"psr_{p}_db"),
            marker="o",
            markersize=3,
            label=f"L{p[1:]}" if p != "linf" else "Linf",
        )
    ax1.set_ylabel("mean PSR (dB)")
    ax1.set_title(
        f"perturbation-to-signal ratio, {result.config['attack']} {result.config['norm']} eps={result.config['eps']:g}"
    )
    ax1.legend()
    samples = result.arrays.get("l2", {})
    data = (
        [samples[n].clamp(max=1e6).numpy() for n in names]
        if samples
        else [[v] for v in result.column("psr_l2")]
    )
    ax2.boxplot(data, showfliers=False)
    ax2.set_ylabel("||y_adv - y_clean||_2 / ||y_clean||_2")
    ax2.set_title("normalized change of activations")
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(names)) if ax is ax1 else range(1, len(names) + 1))
        ax.set_xticklabels(names, rotation=90, fontsize=6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
