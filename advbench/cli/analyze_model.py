"""`advbench analyze` commands on a checkpoint's weights and features: kernels, features,
deceptive examples, activation maximization, cost (registered by `analyze`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import options
from advbench.cli.analyze_common import (
    AN,
    AAttack,
    ABatch,
    ABudget,
    ADataset,
    AModel,
    ANorm,
    AOut,
    ASeed,
    run_analysis,
)
from advbench.core.errors import UsageError


def analyze_kernels(
    model: AModel,
    fft_size: Annotated[int, typer.Option(help="FFT size of the kernel spectra")] = 16,
    dataset: ADataset = "fashion-mnist",
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    out: AOut = None,
) -> None:
    """First-layer kernels and their FFT, filter sparsity ratio and conv singular values."""
    run_analysis("kernels", model, dataset, 1, 0, 1, device, zoo, out, fft_size=fft_size)


def analyze_features(
    size: Annotated[list[int], typer.Option("--size", help="feature size H = W (repeatable)")] = [
        8,
        16,
        24,
        32,
    ],
    channels: Annotated[
        str, typer.Option(help="conv output channels, comma-separated")
    ] = "3,16,32,64",
    init: Annotated[
        list[str],
        typer.Option(
            "--init",
            help="normal, uniform, xavier_normal, xavier_uniform, kaiming_normal (repeatable)",
        ),
    ] = ["normal", "uniform", "xavier_normal", "xavier_uniform", "kaiming_normal"],
    amplitude: Annotated[float, typer.Option(help="input noise U[-a, a]")] = 0.1,
    perturbations: Annotated[int, typer.Option(help="noise draws per network and size")] = 200,
    seed: ASeed = 0,
    out: AOut = None,
) -> None:
    """Proposition 1 (stride paper): output disturbance vs feature size on random CNNs, average vs max pooling."""
    try:
        chans = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise UsageError(
            f"--channels {channels!r}: write whole numbers separated by commas, e.g. 3,16,32,64"
        ) from None
    run_analysis(
        "features",
        None,
        "fashion-mnist",
        1,
        seed,
        100,
        "cpu",
        None,
        out,
        sizes=tuple(size),
        channels=chans,
        inits=tuple(init),
        amplitude=amplitude,
        perturbations=perturbations,
    )


def analyze_deceptive(
    model: AModel,
    attack: AAttack = "fgsm",
    norm: ANorm = "linf",
    eps: ABudget = 0.1,
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """The most deceptive adversarial example per class (highest confidence in a wrong class)."""
    run_analysis(
        "deceptive",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        attack=attack,
        norm=norm,
        eps=eps,
    )


def analyze_maximize(
    model: AModel,
    steps: Annotated[int, typer.Option(help="gradient ascent steps")] = 200,
    lr: Annotated[float, typer.Option(help="RMS change per pixel per step")] = 0.01,
    dataset: ADataset = "fashion-mnist",
    seed: ASeed = 0,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="folder holding datasets (for the class names)")
    ] = None,
    out: AOut = None,
) -> None:
    """Class activation maximization from Gaussian noise, one image per class."""
    run_analysis(
        "maximize", model, dataset, 1, seed, 1, device, zoo, out, data_dir, steps=steps, lr=lr
    )


def analyze_cost(
    model: AModel, dataset: ADataset = "fashion-mnist", zoo: options.Zoo = None, out: AOut = None
) -> None:
    """Receptive field per conv layer (with parameters, FLOPs and activation memory) of a checkpoint."""
    run_analysis("cost", model, dataset, 1, 0, 1, "cpu", zoo, out)
