"""`advbench certify`: Cohen et al.'s randomized-smoothing certificates, stored per sample and resumable."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from advbench.cli import options, render
from advbench.store import DEFAULT_DB


def certify_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model name (the base classifier)")],
    sigma: Annotated[list[float], typer.Option("--sigma", help="smoothing noise std in [0,1] pixel units (repeatable)")] = [0.25],
    n0: Annotated[int, typer.Option("--n0", help="draws to pick the top class")] = 100,
    n: Annotated[int, typer.Option("--n", help="draws to bound its probability")] = 100_000,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    n_samples: Annotated[int, typer.Option("--n-samples", help="test images to certify (0 = all)")] = 500,
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
    from advbench.engine import certify, spec

    run_spec = spec.CertifySpec(
        model=model, sigmas=tuple(sigma), n0=n0, n=n, alpha=alpha, dataset=dataset, n_samples=None if n_samples == 0 else n_samples,
        seed=seed, weights=str(weights) if weights else None, adaptive_radius=radius if adaptive else None,
    )
    runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray)
    with render.LazyProgress(f"certify {model}") as bar:
        summary = certify.run_certify(run_spec, runtime, progress=bar.update)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    render.console.print(render.certify_table(summary))
