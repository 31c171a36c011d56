"""What advbench knows: `models`, `attacks`, and `download` for the datasets it can fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import listings, options, render
from advbench.cli.listing import ListFormat, print_listing
from advbench.core.errors import UsageError
from advbench.core.paths import output_folder


def models_cmd(
    pattern: Annotated[str, typer.Argument(help="wildcard filter, e.g. 'kap-*'")] = "*",
    cost: Annotated[
        bool,
        typer.Option(
            "--cost",
            help="parameters, FLOPs, activation memory and receptive field of each default build (3x32x32, or 1x28x28 for grey models)",
        ),
    ] = False,
    fmt: options.ListingFormat = ListFormat.TABLE,
) -> None:
    """List registered models with the datasets they have checkpoints for."""
    if cost:
        from advbench.analysis.cost import cost_rows

        print_listing(listings.cost_listing(cost_rows(pattern)), fmt, render.console)
        return
    from advbench.models.catalog import model_records

    print_listing(listings.models_listing(model_records(pattern)), fmt, render.console)


def attacks_cmd(
    pattern: Annotated[str, typer.Argument(help="wildcard filter")] = "*",
    fmt: options.ListingFormat = ListFormat.TABLE,
) -> None:
    """List registered attacks and their threat models."""
    from advbench.attacks.catalog import attack_records

    print_listing(listings.attacks_listing(attack_records(pattern)), fmt, render.console)


def download_cmd(
    dataset: Annotated[str, typer.Argument(help="fashion-mnist, cifar10 or cifar100")],
    dest: Annotated[
        Optional[Path], typer.Option(help="target folder (default: the user cache)")
    ] = None,
) -> None:
    """Download a dataset into the cache (only ever on request)."""
    from advbench.data.cifar import LAYOUT, download_cifar
    from advbench.data.fashion_mnist import download_fashion_mnist

    if dest is not None:
        output_folder(dest, "--dest")
    if dataset == "fashion-mnist":
        path = download_fashion_mnist(dest)
    elif dataset in LAYOUT:
        path = download_cifar(dataset, dest)
    else:
        raise UsageError(
            f"nothing to download for {dataset!r}; use fashion-mnist, cifar10 or cifar100"
        )
    render.console.print(f"{dataset} is in {path}")
