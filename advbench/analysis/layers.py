"""`advbench analyze layers`: sweep the cutoff of partial adversarial training (dissertation Ch. 3).

For each cutoff (the last module of the earlier layers) train both stages of the given code
(A1N2, N1A2, A2N1, N2A1; advbench.train.partial), then measure on test images the clean
accuracy, PGD accuracy and the mean adversarial CE loss; one row per cutoff, plotted against it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from advbench.analysis.common import AnalysisResult, pyplot, timestamp, write_outputs
from advbench.attacks import build_attack
from advbench.core.threat import Norm, ThreatModel
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import build_from_card
from advbench.train import config_for, train_partial
from advbench.train.stages import parse_code


def layer_sweep(
    model: str,
    code: str,
    cutoffs: list[str],
    out: Path,
    device: torch.device,
    dataset: str = "fashion-mnist",
    n: int = 500,
    eps: float = 0.1,
    *,
    seed: int = 0,
    data_dir: str | None = None,
    **train_overrides: object,
) -> tuple[AnalysisResult, dict[str, Path]]:
    """One row per cutoff; `seed` picks the test subset, seeds the PGD evaluation and the training."""
    parse_code(code)
    idx = select_indices(dataset_labels(dataset, "test", data_dir), n, seed=seed)
    data = load_dataset(dataset, "test", data_dir, indices=idx)
    x, y = data.images.to(device), data.labels.to(device)
    threat = ThreatModel(Norm.LINF, eps)
    base = config_for(model, dataset=dataset, **{**train_overrides, "seed": seed, "at_eps": eps})
    rows = []
    for cutoff in cutoffs:
        folder = out / f"{model}-{code}-{cutoff}"
        card = train_partial(code, cutoff, base, folder, device, data_dir)
        net = build_from_card(card, folder).to(device)
        result = build_attack("pgd")[1](net, x, y, threat, idx.to(device), seed)
        with torch.no_grad():
            loss = F.cross_entropy(net(result.x_adv), y).item()
            clean = (net.predict(x) == y).float().mean().item()
        rows.append([cutoff, clean, 1 - result.success.float().mean().item(), loss])
    analysis = AnalysisResult(
        "layers",
        ["cutoff", "clean_accuracy", "pgd_accuracy", "adversarial_loss"],
        rows,
        config={"model": model, "code": code, "eps": eps, "n": n, "dataset": dataset, "seed": seed},
    )
    paths = write_outputs(
        analysis, out, f"{model}_{code}_{timestamp()}", plot_layers, {"analysis": "layers"}
    )
    return analysis, paths


def plot_layers(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    cut = result.column("cutoff")
    ax.plot(
        cut, [100 * v for v in result.column("pgd_accuracy")], marker="o", label="PGD accuracy %"
    )
    ax.plot(
        cut,
        [100 * v for v in result.column("clean_accuracy")],
        marker="s",
        label="clean accuracy %",
    )
    ax2 = ax.twinx()
    ax2.plot(
        cut,
        result.column("adversarial_loss"),
        color="grey",
        linestyle="--",
        label="adversarial loss",
    )
    ax.set_xlabel("cutoff (last earlier layer)")
    ax.set_ylabel("%")
    ax2.set_ylabel("adversarial CE loss")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(f"{result.config['model']} {result.config['code']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
