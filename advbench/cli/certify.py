"""`advbench certify`: Cohen et al.'s randomized-smoothing certificates, stored per sample and resumable."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from advbench.cli import options, render
from advbench.core.errors import UsageError
from advbench.store import DEFAULT_DB


def certify_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model name (the base classifier)")],
    sigma: Annotated[list[float], typer.Option("--sigma", help="smoothing noise std in [0,1] pixel units (repeatable)")] = [0.25],
    n: Annotated[int, typer.Option("--n", help="test images to certify (0 = all)")] = 500,
    n0: Annotated[int, typer.Option("--n0", help="noise draws to pick the top class")] = 100,
    noise_draws: Annotated[int, typer.Option("--noise-draws", help="noise draws to bound its probability (Cohen et al.'s n)")] = 100_000,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    n_samples: Annotated[Optional[int], typer.Option("--n-samples", hidden=True, help="renamed: --n")] = None,
    dataset: Annotated[str, typer.Option(help="dataset")] = "fashion-mnist",
    weights: options.Weights = None,
    seed: Annotated[int, typer.Option(help="seed for the subset and the noise")] = 0,
    batch_size: options.CertifyBatch = None,
    device: options.Device = "auto",
    db: options.Db = DEFAULT_DB,
    data_dir: options.DataDir = None,
    zoo: options.Zoo = None,
    fresh: options.Fresh = False,
    adaptive: Annotated[bool, typer.Option("--adaptive", help="sequential: stop sampling a point once its decision at --radius is settled")] = False,
    radius: Annotated[float, typer.Option(help="with --adaptive: the L2 radius whose certified accuracy is wanted")] = 0.5,
    as_json: options.AsJson = False,
    ray: options.Ray = None,
) -> None:
    """Certified L2 radii of the Gaussian-smoothed model (Cohen et al. CERTIFY and PREDICT), stored per sample."""
    if n_samples is not None:  # an old command line: --n there meant the noise draws, so say both
        raise UsageError("--n-samples is now --n (the images, as in every command); Cohen's noise draws, once --n, are --noise-draws")
    from advbench.engine import certify, spec

    run_spec = spec.CertifySpec(
        model=model, sigmas=tuple(sigma), n0=n0, noise_draws=noise_draws, alpha=alpha, dataset=dataset, n=None if n == 0 else n,
        seed=seed, weights=str(weights) if weights else None, adaptive_radius=radius if adaptive else None,
    )
    runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray)
    with render.LazyProgress(f"certify {model}") as bar:
        summary = certify.run_certify(run_spec, runtime, progress=bar.update)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    render.console.print(render.certify_table(summary))
