"""Accuracy under Gaussian noise at inference (dissertation Fig. 5.7; KAP Table 2 protocol).

Clean images, and adversarial examples crafted once without noise, are re-tested with
N(0, sigma^2) noise added to the input (then clipped to [0,1]), to the output of every conv
layer (where KAP's training noise sits, before batch norm), or both. KAP Table 2 found many
adversarial examples are classified correctly again once noise is added.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from advbench.analysis.common import AnalysisResult, batches, pyplot
from advbench.analysis.perturb import adversarial_examples, gaussian_noise
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel

PLACES = ("input", "activations", "both")


@contextlib.contextmanager
def activation_noise(net: nn.Module, sigma: float, generator: torch.Generator) -> Iterator[None]:
    """Add sigma * N(0,1) to every Conv2d output while inside the context."""
    handles = []
    if sigma > 0:
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                handles.append(
                    module.register_forward_hook(
                        lambda m, args, out: (
                            out
                            + sigma
                            * torch.randn(
                                out.shape, generator=generator, device=out.device, dtype=out.dtype
                            )
                        )
                    )
                )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def noisy_accuracy(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    sigma: float,
    place: str,
    draws: int = 1,
    batch_size: int = 128,
    seed: int = 0,
) -> float:
    """Accuracy with noise at `place` (input, activations or both), averaged over `draws` noise draws."""
    if place not in PLACES:
        raise UsageError(f"noise place is one of {', '.join(PLACES)}, not {place!r}")
    if draws < 1:
        raise UsageError(f"--draws must be at least 1, got {draws}")
    if sigma < 0:
        raise UsageError(f"sigma must be >= 0, got {sigma}")
    indices = torch.arange(len(x))
    correct = 0
    for draw in range(draws):
        generator = torch.Generator(device=x.device).manual_seed(seed * 1000 + draw)
        act_sigma = sigma if place in ("activations", "both") else 0.0
        with torch.no_grad(), activation_noise(model.net, act_sigma, generator):
            for part in batches(len(x), batch_size):
                xb = x[part]
                if place in ("input", "both") and sigma > 0:
                    xb = (xb + gaussian_noise(xb, sigma, seed, indices[part], stream=draw)).clamp(
                        0, 1
                    )
                correct += int((model(xb).argmax(1) == y[part]).sum())
    return correct / (len(x) * draws)


def noise_analysis(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3),
    places: Sequence[str] = PLACES,
    attack: str | None = "pgd",
    norm: str = "linf",
    eps: float = 0.1,
    draws: int = 1,
    batch_size: int = 128,
    seed: int = 0,
) -> AnalysisResult:
    sources = {"clean": x}
    config = {
        "sigmas": [float(s) for s in sigmas],
        "places": list(places),
        "draws": draws,
        "n": len(x),
        "seed": seed,
    }
    if attack:
        x_adv, _, label = adversarial_examples(model, x, y, attack, norm, eps, batch_size, seed)
        sources["adversarial"] = x_adv
        config.update({"attack": label, "norm": norm, "eps": eps})
    rows = [
        [
            source,
            place,
            float(s),
            noisy_accuracy(model, images, y, float(s), place, draws, batch_size, seed),
        ]
        for source, images in sources.items()
        for place in places
        for s in sigmas
    ]
    return AnalysisResult("noise", ["images", "noise_at", "sigma", "accuracy"], rows, config=config)


def plot_noise(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for source, style in (("clean", "-"), ("adversarial", "--")):
        for place in result.config["places"]:
            rows = [r for r in result.rows if r[0] == source and r[1] == place]
            if rows:
                ax.plot(
                    [r[2] for r in rows],
                    [100 * r[3] for r in rows],
                    linestyle=style,
                    marker="o",
                    markersize=3,
                    label=f"{source}, noise at {place}",
                )
    ax.set_xlabel("noise sigma")
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    title = "accuracy under Gaussian noise"
    if "attack" in result.config:
        title += f" (adversarial: {result.config['attack']} {result.config['norm']} eps={result.config['eps']:g})"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
