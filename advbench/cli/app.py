"""`advbench` commands. Errors from the library become one line on stderr and an exit code."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from advbench.cli import render
from advbench.core.errors import AdvbenchError, UsageError

RAY_HELP = "shard over Ray tasks: local (start Ray on this machine), auto (join the running cluster) or HOST:PORT; needs the optional Ray extra, see docs/scale.md"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark the adversarial robustness of PyTorch image classifiers.")


class LazyProgress:
    """A rich progress bar that appears on the first update, so early errors print alone."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Progress | None = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=render.err_console,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def print(self, text: str) -> None:
        (self.bar.console if self.bar else render.err_console).print(text)

    def __enter__(self) -> "LazyProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("models")
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="wildcard filter, e.g. 'kap-*'")] = "*",
    cost: Annotated[bool, typer.Option("--cost", help="parameters, FLOPs, activation memory and receptive field of each default build (3x32x32, or 1x28x28 for grey models)")] = False,
) -> None:
    """List registered models with the datasets they have checkpoints for."""
    from advbench.models.catalog import model_rows

    if cost:
        from advbench.analysis.cost import cost_rows

        rows = [[name, "x".join(map(str, shape or ())) or "-", *(["-"] * 4 if c is None else
                 [f"{c.params / 1e6:.2f}", f"{c.flops / 1e6:.1f}", f"{c.activation_bytes / 2**20:.2f}", f"{c.receptive_field:g}"]), error]
                for name, shape, c, error in cost_rows(pattern)]
        render.console.print(render.table("model cost of one image, default build (stride paper Figs. 6-7)",
                                          ["name", "input", "params (M)", "MFLOPs", "activations (MiB)", "receptive field (px)", "note"], rows))
        return
    rows = model_rows(pattern)
    render.console.print(render.table("models", ["name", "family", "paper, section", "recipe", "checkpoints", "description"], rows))


@app.command("attacks")
def attacks_cmd(pattern: Annotated[str, typer.Argument(help="wildcard filter")] = "*") -> None:
    """List registered attacks and their threat models."""
    from advbench.attacks.catalog import attack_rows

    render.console.print(render.table("attacks", ["name", "family", "threat models", "defaults", "description"], attack_rows(pattern)))


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
    attack: Annotated[list[str], typer.Option("--attack", "-a", help="attack, optionally with options: pgd:steps=50,restarts=2 (repeatable)")] = ["pgd"],
    eps: Annotated[list[float], typer.Option("--eps", help="budget (repeatable)")] = [0.1],
    norm: Annotated[str, typer.Option(help="linf, l2, l1 or l0")] = "linf",
    dataset: Annotated[str, typer.Option(help="fashion-mnist, cifar10, cifar100, digits, imagefolder:PATH")] = "fashion-mnist",
    weights: Annotated[Optional[Path], typer.Option(help="state dict for an external model given as --model file:PATH.py:NAME")] = None,
    surrogate: Annotated[Optional[str], typer.Option(help="model that transfer attacks craft their examples on")] = None,
    eot: Annotated[Optional[int], typer.Option(help="EOT draws per gradient (default: 20 for models random at inference, else 1; 1 disables)")] = None,
    bpda: Annotated[bool, typer.Option("--bpda/--no-bpda", help="attack non-differentiable parts through their BPDA surrogates")] = True,
    checks: Annotated[bool, typer.Option("--checks/--no-checks", help="gradient-masking checks on the first --check-n samples")] = True,
    check_n: Annotated[int, typer.Option(help="samples for the gradient-masking checks")] = 100,
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    n: Annotated[Optional[int], typer.Option("--n", help="number of samples (default 1000; 0 = all)")] = 1000,
    seed: Annotated[int, typer.Option(help="seed for the subset and the attacks")] = 0,
    balanced: Annotated[bool, typer.Option(help="equal number of samples per class")] = False,
    batch_size: Annotated[int, typer.Option(help="samples per batch (and per commit)")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    data_dir: Annotated[Optional[Path], typer.Option(help="folder holding datasets")] = None,
    zoo: Annotated[Optional[Path], typer.Option(help="extra folder of model cards")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="start a new run even if an identical one exists")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue an identical unfinished run (default); --no-resume is --fresh")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help=RAY_HELP)] = None,
) -> None:
    """Clean and robust accuracy of a model; every per-sample result is stored and the run resumes."""
    from advbench.engine import EvalConfig, run_eval

    config = EvalConfig(
        model=model, attacks=tuple(attack), eps=tuple(eps), norm=norm, dataset=dataset, split=split,
        n=None if n == 0 else n, seed=seed, balanced=balanced, batch_size=batch_size, device=device, db=str(db),
        data_dir=str(data_dir) if data_dir else None, zoo=str(zoo) if zoo else None, fresh=fresh or not resume,
        surrogate=surrogate, eot=eot, bpda=bpda, checks=checks, check_n=check_n, weights=str(weights) if weights else None,
    )
    with LazyProgress(f"{model} x {','.join(attack)}") as bar:
        outcome = run_eval(config, progress=bar.update, ray=ray)
    if outcome.already_finished:
        render.err_console.print(f"run {outcome.summary.run_id} already finished; showing stored results (--fresh to re-run)")
    elif outcome.resumed:
        render.err_console.print(f"resumed run {outcome.summary.run_id}")
    if as_json:
        print(json.dumps(outcome.summary.to_dict(), indent=2))
    else:
        render.console.print(render.summary_table(outcome.summary))
    adaptive = render.adaptation_line(outcome.adaptations)
    if adaptive and not as_json:
        render.console.print(adaptive)
    for warning in outcome.warnings:
        render.err_console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command("certify")
def certify_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model name (the base classifier)")],
    sigma: Annotated[list[float], typer.Option("--sigma", help="smoothing noise std in [0,1] pixel units (repeatable)")] = [0.25],
    n0: Annotated[int, typer.Option("--n0", help="draws to pick the top class")] = 100,
    n: Annotated[int, typer.Option("--n", help="draws to bound its probability")] = 100_000,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    n_samples: Annotated[int, typer.Option("--n-samples", help="test images to certify (0 = all)")] = 500,
    dataset: Annotated[str, typer.Option(help="dataset")] = "fashion-mnist",
    seed: Annotated[int, typer.Option(help="seed for the subset and the noise")] = 0,
    batch_size: Annotated[int, typer.Option(help="noisy copies per forward pass")] = 1000,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    data_dir: Annotated[Optional[Path], typer.Option(help="folder holding datasets")] = None,
    zoo: Annotated[Optional[Path], typer.Option(help="extra folder of model cards")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="start a new run even if an identical one exists")] = False,
    adaptive: Annotated[bool, typer.Option("--adaptive", help="sequential: stop sampling a point once its decision at --radius is settled")] = False,
    radius: Annotated[float, typer.Option(help="with --adaptive: the L2 radius whose certified accuracy is wanted")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help=RAY_HELP)] = None,
) -> None:
    """Certified L2 radii of the Gaussian-smoothed model (Cohen et al. CERTIFY and PREDICT), stored per sample."""
    from advbench.engine.certify import CertifyRunConfig, run_certify

    config = CertifyRunConfig(
        model=model, sigmas=tuple(sigma), n0=n0, n=n, alpha=alpha, n_samples=None if n_samples == 0 else n_samples, dataset=dataset,
        seed=seed, batch_size=batch_size, device=device, db=str(db), data_dir=str(data_dir) if data_dir else None,
        zoo=str(zoo) if zoo else None, fresh=fresh, adaptive_radius=radius if adaptive else None,
    )
    with LazyProgress(f"certify {model}") as bar:
        summary = run_certify(config, progress=bar.update, ray=ray)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    render.console.print(render.certify_table(summary))


@app.command("curve")
def curve_cmd(
    model: Annotated[list[str], typer.Option("--model", "-m", help="model (repeatable: several on one plot)")] = [],
    attack: Annotated[list[str], typer.Option("--attack", "-a", help="attack spec (repeatable)")] = ["pgd"],
    norm: Annotated[str, typer.Option(help="linf, l2, l1 or l0")] = "linf",
    eps: Annotated[str, typer.Option(help="start:stop:step (stop included) or a comma list")] = "0:0.3:0.02",
    run: Annotated[list[str], typer.Option("--run", help="draw from stored run(s) instead of evaluating (repeatable)")] = [],
    dataset: Annotated[str, typer.Option(help="dataset")] = "fashion-mnist",
    n: Annotated[int, typer.Option("--n", help="samples per model")] = 500,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    zoo: Annotated[Optional[Path], typer.Option(help="extra folder of model cards")] = None,
    out: Annotated[Path, typer.Option(help="output path without suffix: writes OUT.csv and OUT.png")] = Path("results/curve"),
) -> None:
    """Accuracy vs eps for one or more models: evaluates (resumably) or reads stored runs; CSV + PNG."""
    from advbench.engine import EvalConfig, run_eval
    from advbench.report.curves import (
        curves_csv,
        curves_from_run,
        parse_eps_range,
        plot_curves,
    )
    from advbench.store import Store

    grid = parse_eps_range(eps)
    if not model and not run:
        raise UsageError("give --model (to evaluate) or --run (to read stored runs)")
    run_ids = list(run)
    for name in model:
        config = EvalConfig(model=name, attacks=tuple(attack), eps=tuple(grid), norm=norm, dataset=dataset, n=n, seed=seed,
                            device=device, db=str(db), zoo=str(zoo) if zoo else None, checks=False)
        with LazyProgress(f"{name} curve") as bar:
            run_ids.append(run_eval(config, progress=bar.update).summary.run_id)
    with Store(db) as store:
        curves = [c for rid in run_ids for c in curves_from_run(store, rid, grid)]
    csv_path, png_path = out.with_suffix(".csv"), out.with_suffix(".png")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(curves_csv(curves))
    plot_curves(curves, png_path, title=f"{dataset}, {norm}")
    render.console.print(render.table("robust accuracy % vs eps", ["curve", *[f"{e:g}" for e in curves[0].eps]],
                                      [[c.label, *[render.pct(a) for a in c.accuracy]] for c in curves]))
    render.console.print(f"wrote {csv_path} and {png_path}")


@app.command("leaderboard")
def leaderboard_cmd(
    dataset: Annotated[Optional[str], typer.Option(help="only runs on this dataset")] = None,
    threat: Annotated[Optional[str], typer.Option(help="only this budget, NORM:EPS (e.g. linf:0.1)")] = None,
    radius: Annotated[list[float], typer.Option("--radius", help="certified accuracy at this L2 radius (repeatable)")] = [],
    fmt: Annotated[str, typer.Option("--format", help="md, csv, json or html")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
) -> None:
    """Models ranked by worst-case robust accuracy, from the stored runs."""
    from advbench.report.leaderboard import (
        build_leaderboard,
        render_csv,
        render_json,
        render_markdown,
    )
    from advbench.store import Store

    renderers = {"md": render_markdown, "csv": render_csv, "json": render_json}
    if fmt not in (*renderers, "html"):
        raise UsageError(f"--format is md, csv, json or html, not {fmt!r}")
    norm, eps = None, None
    if threat:
        norm_text, sep, eps_text = threat.partition(":")
        try:
            norm, eps = norm_text.lower(), float(eps_text)
        except ValueError:
            raise UsageError(f"--threat {threat!r}: write NORM:EPS, e.g. linf:0.1") from None
        if not sep or norm not in ("linf", "l2", "l1", "l0"):
            raise UsageError(f"--threat {threat!r}: write NORM:EPS, e.g. linf:0.1")
    if not db.is_file():
        raise UsageError(f"no result database at {db}")
    with Store(db) as store:
        rows = build_leaderboard(store, dataset, norm, eps, tuple(radius))
        if fmt == "html":
            from advbench.report.html import render_html

            text = render_html(rows, store)
        else:
            text = renderers[fmt](rows)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        render.err_console.print(f"wrote {out} ({len(rows)} rows)")
    else:
        print(text, end="")


@app.command("run")
def run_cmd(
    suite: Annotated[Path, typer.Argument(help="suite YAML: models x attacks x budgets (x certification)")],
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    zoo: Annotated[Optional[Path], typer.Option(help="extra folder of model cards")] = None,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help=RAY_HELP)] = None,
) -> None:
    """Run every cell of a suite; finished cells are skipped, interrupted ones resume."""
    from advbench.engine.suite import load_suite, run_suite

    spec = load_suite(suite)
    results = run_suite(spec, str(db), device, str(zoo) if zoo else None,
                        on_cell=lambda i, total, label: render.err_console.print(f"[{i + 1}/{total}] {label}"), ray=ray)
    render.console.print(render.table(f"suite {spec.name}", ["kind", "model", "setting", "run", "status"],
                                      [[r.kind, r.model, r.setting, r.run_id, "stored" if r.skipped else "done"] for r in results]))


@app.command("check")
def check_cmd(
    baseline: Annotated[Path, typer.Option(help="baseline JSON")] = Path("baseline.json"),
    tolerance: Annotated[float, typer.Option(help="allowed drop in percentage points")] = 1.0,
    stat: Annotated[bool, typer.Option("--stat", help="also fail on a significant drop (one-sided two-proportion z-test, 5%)")] = False,
    update: Annotated[bool, typer.Option("--update", help="write the baseline from the stored results instead of checking")] = False,
    suite: Annotated[Optional[Path], typer.Option(help="run (or resume) this suite first")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="with --update: only this dataset")] = None,
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
) -> None:
    """Regression gate: exit 1 when a robust accuracy fell below the baseline."""
    from advbench.report.regression import (
        compare,
        current_entries,
        read_baseline,
        write_baseline,
    )
    from advbench.store import Store

    if suite:
        from advbench.engine.suite import load_suite, run_suite

        run_suite(load_suite(suite), str(db))
    if not db.is_file():
        raise UsageError(f"no result database at {db}")
    with Store(db) as store:
        if update:
            entries = current_entries(store, dataset)
            write_baseline(baseline, entries)
            render.console.print(f"wrote {baseline} ({len(entries)} entries)")
            return
        results = compare(store, read_baseline(baseline), tolerance, stat)
    rows = [
        [c.entry.model, c.entry.dataset, f"{c.entry.norm} {c.entry.eps:g}", c.entry.attack, render.pct(c.entry.accuracy),
         render.pct(c.current), "-" if c.drop_points is None else f"{c.drop_points:+.2f}", "-" if c.p_value is None else f"{c.p_value:.3g}",
         "[red]REGRESSED[/red]" if c.regressed else "ok"]
        for c in results
    ]
    failed = [c for c in results if c.regressed]
    render.console.print(render.table(f"regression check against {baseline} (tolerance {tolerance:g} points{', z-test' if stat else ''})",
                                      ["model", "dataset", "threat", "attack", "baseline %", "now %", "drop (points)", "p", "status"],
                                      rows))
    if failed:
        render.err_console.print(f"{len(failed)} of {len(results)} baseline entries regressed")
        raise typer.Exit(1)


@app.command("runs")
def runs_cmd(
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    limit: Annotated[int, typer.Option(help="newest N runs")] = 50,
) -> None:
    """List stored runs, newest first."""
    from advbench.store import Store

    if not db.is_file():
        raise UsageError(f"no result database at {db}")
    with Store(db) as store:
        render.console.print(render.runs_table(store.list_runs(limit)))


@app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: Annotated[Path, typer.Option(help="result database")] = Path("results/advbench.sqlite"),
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print one stored run: its provenance and summary."""
    from advbench.store import Store, summarize

    if not db.is_file():
        raise UsageError(f"no result database at {db}")
    with Store(db) as store:
        record = store.get_run(run)
        summary = summarize(store, record.run_id)
    if as_json:
        print(json.dumps({"run": record.__dict__, "summary": summary.to_dict()}, indent=2, default=str))
        return
    info = [
        ("status", record.status), ("created", record.created), ("finished", record.finished), ("model", record.model),
        ("checkpoint sha256", record.checkpoint_sha256), ("dataset", f"{record.dataset} (indices {record.indices_hash})"),
        ("seed", record.seed), ("device", record.device), ("wall seconds", f"{record.wall_seconds:.1f}"),
        ("advbench", record.package_version), ("git commit", record.git_commit),
        ("libraries", ", ".join(f"{k} {v}" for k, v in record.libraries.items())),
        ("attacks", json.dumps(record.config.get("attacks"))),
        ("adaptations", json.dumps(record.config.get("adaptations"))),
        ("masking checks", json.dumps((record.summary or {}).get("checks"))),
        *[("warning", w) for w in record.warnings],
    ]
    render.console.print(render.table(f"run {record.run_id}", ["field", "value"], info))
    render.console.print(render.summary_table(summary))


@app.command("train")
def train_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
    dataset: Annotated[str, typer.Option(help="training dataset")] = "fashion-mnist",
    epochs: Annotated[Optional[int], typer.Option(help="epochs (default: the model's CPU recipe)")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="batch size")] = None,
    lr: Annotated[Optional[float], typer.Option(help="peak learning rate (one-cycle)")] = None,
    width: Annotated[Optional[int], typer.Option(help="base width of the architecture")] = None,
    noise_sigma: Annotated[Optional[float], typer.Option(help="override the training noise sigma (input and activations)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default model_zoo/DATASET)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="folder holding datasets")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the last epoch's training state")] = False,
    max_train: Annotated[Optional[int], typer.Option(help="use only the first N training images")] = None,
    smooth_lambda: Annotated[Optional[float], typer.Option(help="smooth-kernel regularizer weight; negative favours high frequencies")] = None,
    at_eps: Annotated[Optional[float], typer.Option(help="adversarial training budget")] = None,
    at_norm: Annotated[Optional[str], typer.Option(help="adversarial training norm: linf or l2")] = None,
    at_steps: Annotated[Optional[int], typer.Option(help="PGD steps per adversarial training batch")] = None,
    options: Annotated[Optional[list[str]], typer.Option("--set", help="any other training option, KEY=VALUE (see `advbench recipes`)")] = None,
    partial: Annotated[Optional[str], typer.Option(help="partial adversarial training A1N2|N1A2|A2N1|N2A1 (dissertation Ch. 3); needs --cutoff")] = None,
    cutoff: Annotated[Optional[str], typer.Option(help="with --partial: the module that ends the earlier layers")] = None,
) -> None:
    """Train a registered model with its recipe; writes safetensors and a model card."""
    from advbench.core.device import resolve_device
    from advbench.train import config_for, train_model
    from advbench.train.options import parse_options

    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_train=max_train, smooth_lambda=smooth_lambda, at_eps=at_eps, at_norm=at_norm, at_steps=at_steps)
    overrides = {"dataset": dataset, **{k: v for k, v in given.items() if v is not None}, **parse_options(options or [])}
    kwargs = {k: v for k, v in (("width", width), ("noise_sigma", noise_sigma)) if v is not None}
    if kwargs:
        overrides["model_kwargs"] = {**overrides.get("model_kwargs", {}), **kwargs}
    config = config_for(model, **overrides)
    out_dir = out or Path("model_zoo") / dataset
    if partial:
        from advbench.train.partial import train_partial

        if not cutoff:
            raise UsageError("--partial needs --cutoff MODULE (the last module of the earlier layers)")
        out_dir = out or Path("results") / "partial" / f"{model}-{partial}-{cutoff}" / dataset
        with LazyProgress(f"train {model} {partial}") as bar:
            card = train_partial(partial, cutoff, config, out_dir, resolve_device(device), on_batch=bar.update, on_epoch=lambda log: bar.print(render.epoch_line(log)))
        render.console.print(f"wrote {out_dir / card.weights} (stage 1 in {out_dir / 'stage1'})")
        return
    with LazyProgress(f"train {model}") as bar:
        card = train_model(
            config, out_dir, resolve_device(device), str(data_dir) if data_dir else None, resume,
            on_batch=bar.update,
            on_epoch=lambda log: bar.print(render.epoch_line(log)),
        )
    render.console.print(f"wrote {out_dir / card.weights} (sha256 {card.sha256[:16]}) and its card {out_dir / (card.name + '.yaml')}")


@app.command("recipes")
def recipes_cmd() -> None:
    """List the training recipes and the training options they read."""
    from advbench.train import RECIPES
    from advbench.train.options import option_rows

    rows = [[name, "yes" if RECIPES.get(name).adversarial else "", " ".join((RECIPES.get(name).__doc__ or "").split())] for name in RECIPES.names()]
    render.console.print(render.table("training recipes", ["recipe", "adversarial", "what it minimizes"], rows))
    render.console.print(render.table("training options (--set KEY=VALUE)", ["option", "type", "default"], option_rows()))


@app.command("download")
def download_cmd(
    dataset: Annotated[str, typer.Argument(help="fashion-mnist, cifar10 or cifar100")],
    dest: Annotated[Optional[Path], typer.Option(help="target folder (default: the user cache)")] = None,
) -> None:
    """Download a dataset into the cache (only ever on request)."""
    from advbench.data.cifar import LAYOUT, download_cifar
    from advbench.data.fashion_mnist import download_fashion_mnist

    if dataset == "fashion-mnist":
        path = download_fashion_mnist(dest)
    elif dataset in LAYOUT:
        path = download_cifar(dataset, dest)
    else:
        raise UsageError(f"nothing to download for {dataset!r}; use fashion-mnist, cifar10 or cifar100")
    render.console.print(f"{dataset} is in {path}")


# ----------------------------------------------------------------------------- analyze (advbench.analysis)

analyze_app = typer.Typer(no_args_is_help=True, help="The papers' diagnostics; each writes CSV + PNG + a JSON record under results/analysis/NAME/.")
app.add_typer(analyze_app, name="analyze")

AModel = Annotated[str, typer.Option("--model", "-m", help="registered model name")]
ADataset = Annotated[str, typer.Option(help="dataset of the checkpoint and the images")]
AN = Annotated[int, typer.Option("--n", help="number of test images (0 = all)")]
ASeed = Annotated[int, typer.Option(help="seed for the subset, attacks and noise")]
ABatch = Annotated[int, typer.Option(help="samples per batch")]
ADevice = Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")]
AZoo = Annotated[Optional[Path], typer.Option(help="extra folder of model cards")]
AOut = Annotated[Optional[Path], typer.Option(help="output folder (default results/analysis/NAME)")]
AAttack = Annotated[str, typer.Option("--attack", "-a", help="attack spec, e.g. pgd:steps=50")]
ANorm = Annotated[str, typer.Option(help="linf, l2 or l1")]
ALayers = Annotated[str, typer.Option(help="conv, block, all, or comma-separated patterns over module names")]


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _analyze(name: str, model: str | None, dataset: str, n: int, seed: int, batch_size: int, device: str, zoo: Path | None, out: Path | None, **options: object) -> None:
    """Run one analysis and print its table and the files written."""
    from advbench.analysis.runner import AnalysisRun, run_analysis

    run = AnalysisRun(model=model, dataset=dataset, n=None if n == 0 else n, seed=seed, batch_size=batch_size, device=device,
                      zoo=str(zoo) if zoo else None, out=str(out) if out else None)
    result, paths = run_analysis(name, run, **options)
    summary = ", ".join(f"{k} {_fmt(v)}" for k, v in result.summary.items() if not isinstance(v, dict))
    render.console.print(render.table(f"{name}: {model or 'random CNNs'}", result.columns, [[_fmt(v) for v in row] for row in result.rows], caption=summary or None))
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@analyze_app.command("layers")
def analyze_layers(
    model: AModel,
    code: Annotated[str, typer.Option("--partial", help="A1N2, N1A2, A2N1 or N2A1")] = "A1N2",
    cutoff: Annotated[list[str], typer.Option("--cutoff", help="module name ending the earlier layers (repeatable)")] = [],
    eps: Annotated[float, typer.Option(help="Linf budget for training and the PGD evaluation")] = 0.1,
    dataset: ADataset = "fashion-mnist", n: AN = 500, device: ADevice = "auto", out: AOut = None,
    options: Annotated[Optional[list[str]], typer.Option("--set", help="training option KEY=VALUE")] = None,
) -> None:
    """Partial adversarial training swept over cutoffs: clean/PGD accuracy and adversarial loss per cutoff."""
    from advbench.analysis.layers import layer_sweep
    from advbench.core.device import resolve_device
    from advbench.train.options import parse_options

    if not cutoff:
        raise UsageError("give at least one --cutoff (a module name, see the model's named_modules())")
    result, paths = layer_sweep(model, code, cutoff, Path(out or "results/analysis/layers"), resolve_device(device), dataset, n, eps, **parse_options(options or []))
    render.console.print(render.table(f"layers: {model} {code}", result.columns, [[c, *[f"{v:.4f}" for v in rest]] for c, *rest in result.rows]))
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@analyze_app.command("psr")
def analyze_psr(model: AModel, attack: AAttack = "pgd", norm: ANorm = "linf", eps: Annotated[float, typer.Option(help="budget")] = 0.1,
                layers: ALayers = "conv", dataset: ADataset = "fashion-mnist", n: AN = 200, seed: ASeed = 0, batch_size: ABatch = 128,
                device: ADevice = "auto", zoo: AZoo = None, out: AOut = None) -> None:
    """Per-layer perturbation-to-signal ratio (L1, L2, Linf; dB) and normalized activation change under an attack."""
    _analyze("psr", model, dataset, n, seed, batch_size, device, zoo, out, attack=attack, norm=norm, eps=eps, layers=layers)


@analyze_app.command("snr")
def analyze_snr(model: AModel, sigma: Annotated[list[float], typer.Option("--sigma", help="noise std (repeatable)")] = [0.1],
                layers: ALayers = "block", clip: Annotated[bool, typer.Option("--clip/--no-clip", help="clip noisy images to [0,1]")] = True,
                dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: ADevice = "auto",
                zoo: AZoo = None, out: AOut = None) -> None:
    """Block-input SNR in dB under Gaussian noise (dissertation eq. 5.6)."""
    _analyze("snr", model, dataset, n, seed, batch_size, device, zoo, out, sigmas=tuple(sigma), layers=layers, clip=clip)


@analyze_app.command("sparsity")
def analyze_sparsity(model: AModel, layers: ALayers = "block", dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0,
                     batch_size: ABatch = 128, device: ADevice = "auto", zoo: AZoo = None, out: AOut = None) -> None:
    """Normalized Hoyer sparsity of each layer's activations (0 = one-hot, 1 = constant)."""
    _analyze("sparsity", model, dataset, n, seed, batch_size, device, zoo, out, layers=layers)


@analyze_app.command("invariance")
def analyze_invariance(model: AModel, eps: Annotated[list[float], typer.Option("--eps", help="budget (repeatable)")] = [0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255, 10 / 255],
                       attack: AAttack = "pgd", norm: ANorm = "linf",
                       target: Annotated[str, typer.Option(help="attack the clean prediction or the true label")] = "prediction",
                       dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: ADevice = "auto",
                       zoo: AZoo = None, out: AOut = None) -> None:
    """Share of unchanged predictions (right or wrong) under perturbation, per eps."""
    _analyze("invariance", model, dataset, n, seed, batch_size, device, zoo, out, eps=tuple(eps), attack=attack, norm=norm, target=target)


@analyze_app.command("noise")
def analyze_noise(model: AModel, sigma: Annotated[list[float], typer.Option("--sigma", help="noise std (repeatable)")] = [0.0, 0.05, 0.1, 0.2, 0.3],
                  place: Annotated[list[str], typer.Option("--place", help="input, activations or both (repeatable)")] = ["input", "activations", "both"],
                  attack: Annotated[str, typer.Option("--attack", "-a", help="attack for the adversarial images; 'none' skips them")] = "pgd",
                  norm: ANorm = "linf", eps: Annotated[float, typer.Option(help="budget")] = 0.1,
                  draws: Annotated[int, typer.Option(help="noise draws averaged per image")] = 1,
                  dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: ADevice = "auto",
                  zoo: AZoo = None, out: AOut = None) -> None:
    """Accuracy vs Gaussian noise at inference (input / activations), for clean and adversarial images."""
    _analyze("noise", model, dataset, n, seed, batch_size, device, zoo, out, sigmas=tuple(sigma), places=tuple(place),
             attack=None if attack.lower() == "none" else attack, norm=norm, eps=eps, draws=draws)


@analyze_app.command("corruptions")
def analyze_corruptions(model: AModel, corruption: Annotated[str, typer.Option(help="all, or comma-separated names or categories (noise, blur, weather, digital)")] = "all",
                        dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: ADevice = "auto",
                        zoo: AZoo = None, out: AOut = None) -> None:
    """Accuracy under CIFAR-10-C-style corruptions at 5 severities; per-type and mean corruption accuracy."""
    _analyze("corruptions", model, dataset, n, seed, batch_size, device, zoo, out, corruptions=corruption)


@analyze_app.command("kernels")
def analyze_kernels(model: AModel, fft_size: Annotated[int, typer.Option(help="FFT size of the kernel spectra")] = 16,
                    dataset: ADataset = "fashion-mnist", device: ADevice = "auto", zoo: AZoo = None, out: AOut = None) -> None:
    """First-layer kernels and their FFT, filter sparsity ratio and conv singular values."""
    _analyze("kernels", model, dataset, 1, 0, 1, device, zoo, out, fft_size=fft_size)


@analyze_app.command("features")
def analyze_features(size: Annotated[list[int], typer.Option("--size", help="feature size H = W (repeatable)")] = [8, 16, 24, 32],
                     channels: Annotated[str, typer.Option(help="conv output channels, comma-separated")] = "3,16,32,64",
                     init: Annotated[list[str], typer.Option("--init", help="normal, uniform, xavier_normal, xavier_uniform, kaiming_normal (repeatable)")] = ["normal", "uniform", "xavier_normal", "xavier_uniform", "kaiming_normal"],
                     amplitude: Annotated[float, typer.Option(help="input noise U[-a, a]")] = 0.1,
                     perturbations: Annotated[int, typer.Option(help="noise draws per network and size")] = 200,
                     seed: ASeed = 0, out: AOut = None) -> None:
    """Proposition 1 (stride paper): output disturbance vs feature size on random CNNs, average vs max pooling."""
    try:
        chans = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise UsageError(f"--channels {channels!r}: write whole numbers separated by commas, e.g. 3,16,32,64") from None
    _analyze("features", None, "fashion-mnist", 1, seed, 100, "cpu", None, out, sizes=tuple(size), channels=chans, inits=tuple(init),
             amplitude=amplitude, perturbations=perturbations)


@analyze_app.command("deceptive")
def analyze_deceptive(model: AModel, attack: AAttack = "fgsm", norm: ANorm = "linf", eps: Annotated[float, typer.Option(help="budget")] = 0.1,
                      dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: ADevice = "auto",
                      zoo: AZoo = None, out: AOut = None) -> None:
    """The most deceptive adversarial example per class (highest confidence in a wrong class)."""
    _analyze("deceptive", model, dataset, n, seed, batch_size, device, zoo, out, attack=attack, norm=norm, eps=eps)


@analyze_app.command("maximize")
def analyze_maximize(model: AModel, steps: Annotated[int, typer.Option(help="gradient ascent steps")] = 200,
                     lr: Annotated[float, typer.Option(help="RMS change per pixel per step")] = 0.01,
                     dataset: ADataset = "fashion-mnist", seed: ASeed = 0, device: ADevice = "auto", zoo: AZoo = None, out: AOut = None) -> None:
    """Class activation maximization from Gaussian noise, one image per class."""
    _analyze("maximize", model, dataset, 1, seed, 1, device, zoo, out, steps=steps, lr=lr)


@analyze_app.command("cost")
def analyze_cost(model: AModel, dataset: ADataset = "fashion-mnist", zoo: AZoo = None, out: AOut = None) -> None:
    """Receptive field per conv layer (with parameters, FLOPs and activation memory) of a checkpoint."""
    _analyze("cost", model, dataset, 1, 0, 1, "cpu", zoo, out)


def main() -> None:
    """Console entry point: one-line errors, exit codes, no tracebacks unless ADVBENCH_DEBUG=1."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) returns n when not standalone
            sys.exit(code)
    except AdvbenchError as exc:
        render.err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)  # 'advbench[ray]' is not markup
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        render.err_console.print("interrupted; finished batches are stored, run the same command again to resume")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("ADVBENCH_DEBUG"):
            raise
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        render.err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (set ADVBENCH_DEBUG=1 for a traceback)", soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
