"""`advbench certify`: Cohen et al.'s randomized-smoothing certificates, stored per sample and resumable."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Optional

import typer

from advbench.cli import options, render
from advbench.core.errors import UsageError
from advbench.store import DEFAULT_DB


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def certify_cmd(
    model: Annotated[
        str, typer.Option("--model", "-m", help="registered model name (the base classifier)")
    ],
    sigma: Annotated[
        list[float],
        typer.Option("--sigma", help="smoothing noise std in [0,1] pixel units (repeatable)"),
    ] = [0.25],
    n: Annotated[int, typer.Option("--n", help="test images to certify (0 = all)")] = 500,
    n0: Annotated[int, typer.Option("--n0", help="noise draws to pick the top class")] = 100,
    noise_draws: Annotated[
        int,
        typer.Option(
            "--noise-draws",
            help="noise draws to bound its probability (Cohen et al.'s n; with --sequential the most an image may use)",
        ),
    ] = 100_000,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    n_samples: Annotated[
        Optional[int], typer.Option("--n-samples", hidden=True, help="renamed: --n")
    ] = None,
    dataset: Annotated[str, typer.Option(help="dataset")] = "fashion-mnist",
    weights: options.Weights = None,
    seed: Annotated[int, typer.Option(min=0, help="seed for the subset and the noise")] = 0,
    batch_size: options.CertifyBatch = None,
    device: options.Device = "auto",
    db: options.Db = DEFAULT_DB,
    data_dir: options.DataDir = None,
    zoo: options.Zoo = None,
    fresh: options.Fresh = False,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive",
            help="sequential: stop sampling a point once its decision at --radius is settled",
        ),
    ] = False,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="stop each image's sampling once its answer at every --radius (none: the whole curve, to --resolution) is settled; anytime-valid at --alpha",
        ),
    ] = False,
    radius: Annotated[
        list[float],
        typer.Option(
            "--radius",
            help="with --sequential: L2 radius to decide (repeatable); with --adaptive: its one radius (default 0.5)",
        ),
    ] = [],
    resolution: Annotated[
        float,
        typer.Option(
            help="with --sequential and no --radius: stop once an image's certified radius is known to this L2 width"
        ),
    ] = 0.01,
    precision: Annotated[
        Precision,
        typer.Option(
            case_sensitive=False,
            help="forward passes in fp32, or autocast to bf16/fp16 (certificates always come from integer counts; fp16 needs CUDA)",
        ),
    ] = Precision.fp32,
    as_json: options.AsJson = False,
    ray: options.Ray = None,
    tf32: options.TF32 = False,
) -> None:
    """Certified L2 radii of the Gaussian-smoothed model (Cohen et al. CERTIFY and PREDICT), stored per sample."""
    if n_samples is not None:  # an old command line: --n there meant the noise draws, so say both
        raise UsageError(
            "--n-samples is now --n (the images, as in every command); Cohen's noise draws, once --n, are --noise-draws"
        )
    from advbench.engine import certify, spec

    if adaptive and len(radius) > 1:
        raise UsageError("--adaptive decides one --radius; for several use --sequential")
    run_spec = spec.CertifySpec(
        model=model,
        sigmas=tuple(sigma),
        n0=n0,
        noise_draws=noise_draws,
        alpha=alpha,
        dataset=dataset,
        n=None if n == 0 else n,
        seed=seed,
        weights=str(weights) if weights else None,
        adaptive_radius=(radius[0] if radius else 0.5) if adaptive else None,
        sequential=sequential,
        radii=tuple(radius) if not adaptive else (),
        resolution=resolution,
        precision=precision.value,
    )
    runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray, tf32=tf32)
    with render.LazyProgress(f"certify {model}") as bar:
        summary = certify.run_certify(run_spec, runtime, progress=bar.update)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    render.show(render.certify_table(summary))
