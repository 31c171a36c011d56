"""Commands that evaluate models under attack: `eval`, `curve`, `run` (a suite) and `check` (the CI gate).

Each turns its options into an `EvalSpec` (or a suite) and the shared `Runtime`, calls one
library function and renders what it returns. Engine modules are imported inside the commands
(they load torch) and their functions looked up on the module at call time, so tests can patch them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import options, render
from advbench.core.errors import UsageError
from advbench.core.paths import output_file
from advbench.core.threat import Norm
from advbench.store import DEFAULT_DB

AttackList = Annotated[
    list[str],
    typer.Option(
        "--attack",
        "-a",
        help="attack, optionally with options: pgd:steps=50,restarts=2 (repeatable)",
    ),
]


def eval_cmd(
    model: options.Model,
    attack: AttackList = ["auto"],
    eps: Annotated[list[float], typer.Option("--eps", help="budget (repeatable)")] = [0.1],
    norm: options.NormOption = Norm.LINF,
    dataset: options.Dataset = "fashion-mnist",
    weights: options.Weights = None,
    surrogate: Annotated[
        Optional[str], typer.Option(help="model that transfer attacks craft their examples on")
    ] = None,
    eot: Annotated[
        Optional[int],
        typer.Option(
            help="EOT draws per gradient (default: 20 for models random at inference, else 1; 1 disables)"
        ),
    ] = None,
    bpda: Annotated[
        bool,
        typer.Option(
            "--bpda/--no-bpda", help="attack non-differentiable parts through their BPDA surrogates"
        ),
    ] = True,
    checks: Annotated[
        bool,
        typer.Option(
            "--checks/--no-checks", help="gradient-masking checks on the first --check-n samples"
        ),
    ] = True,
    check_n: Annotated[int, typer.Option(help="samples for the gradient-masking checks")] = 100,
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    n: Annotated[
        Optional[int], typer.Option("--n", help="number of samples (default 1000; 0 = all)")
    ] = 1000,
    seed: options.Seed = 0,
    balanced: Annotated[bool, typer.Option(help="equal number of samples per class")] = False,
    batch_size: options.EvalBatch = None,
    device: options.Device = "auto",
    db: options.Db = DEFAULT_DB,
    data_dir: options.DataDir = None,
    zoo: options.Zoo = None,
    fresh: options.Fresh = False,
    resume: options.Resume = True,
    as_json: options.AsJson = False,
    ray: options.Ray = None,
    tf32: options.TF32 = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="exit 1 when the evaluation's verdict is unreliable")
    ] = False,
) -> None:
    """Clean and robust accuracy of a model; every per-sample result is stored and the run resumes."""
    from advbench.engine import evaluate, spec

    run_spec = spec.EvalSpec(
        model=model,
        attacks=tuple(attack),
        eps=tuple(eps),
        norm=norm.value,
        dataset=dataset,
        split=split,
        n=None if n == 0 else n,
        seed=seed,
        balanced=balanced,
        weights=str(weights) if weights else None,
        surrogate=surrogate,
        eot=eot,
        bpda=bpda,
        checks=checks,
        check_n=check_n,
    )
    runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, resume, ray, tf32)
    with render.LazyProgress(f"{model} x {','.join(attack)}") as bar:
        outcome = evaluate.run_eval(run_spec, runtime, progress=bar.update)
    if outcome.already_finished:
        render.err_console.print(
            f"run {outcome.summary.run_id} already finished; showing stored results (--fresh to re-run)"
        )
    elif outcome.resumed:
        render.err_console.print(f"resumed run {outcome.summary.run_id}")
    if as_json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        render.show(render.summary_table(outcome.summary))
        adaptive = render.adaptation_line(outcome.adaptations)
        if adaptive:
            render.console.print(adaptive)
        for line in render.escalation_lines(outcome.escalation, outcome.verdict):
            render.console.print(line)
    render.warnings(outcome.warnings)
    if strict and outcome.verdict == "unreliable":
        render.err_console.print(
            "the evaluation is unreliable (a check still fails after escalation); --strict makes that an error"
        )
        raise typer.Exit(1)


def curve_cmd(
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="model (repeatable: several on one plot)")
    ] = [],
    attack: Annotated[
        list[str], typer.Option("--attack", "-a", help="attack spec (repeatable)")
    ] = ["auto"],
    norm: options.NormOption = Norm.LINF,
    eps: Annotated[
        str, typer.Option(help="start:stop:step (stop included) or a comma list")
    ] = "0:0.3:0.02",
    run: Annotated[
        list[str],
        typer.Option("--run", help="draw from stored run(s) instead of evaluating (repeatable)"),
    ] = [],
    dataset: Annotated[str, typer.Option(help="dataset")] = "fashion-mnist",
    n: Annotated[int, typer.Option("--n", help="samples per model")] = 500,
    seed: Annotated[int, typer.Option(min=0, help="seed")] = 0,
    device: options.Device = "auto",
    db: options.Db = DEFAULT_DB,
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    batch_size: options.EvalBatch = None,
    fresh: options.Fresh = False,
    ray: options.Ray = None,
    out: Annotated[
        Path, typer.Option(help="output path without suffix: writes OUT.csv and OUT.png")
    ] = Path("results/curve"),
) -> None:
    """Accuracy vs eps for one or more models: evaluates (resumably) or reads stored runs; CSV + PNG."""
    from advbench.report import curves

    grid = curves.parse_eps_range(eps)
    if not model and not run:
        raise UsageError("give --model (to evaluate) or --run (to read stored runs)")
    for suffix in (".csv", ".png"):  # before any evaluation: both files can be written
        output_file(out.with_suffix(suffix), "--out")
    run_ids = list(run)
    if model:
        from advbench.engine import curve

        runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray)
        with render.LazyProgress() as bars:
            run_ids += curve.evaluate_curves(
                model,
                attack,
                norm.value,
                grid,
                dataset,
                n,
                seed,
                runtime,
                progress_for=lambda name: bars.task(f"{name} curve"),
            )
    drawn, csv_path, png_path = curves.write_curves(
        db, run_ids, grid, out, title=f"{dataset}, {norm.value}"
    )
    render.show(render.curves_table(drawn))
    render.console.print(f"wrote {csv_path} and {png_path}")


def run_cmd(
    suite: Annotated[
        Path, typer.Argument(help="suite YAML: models x attacks x budgets (x certification)")
    ],
    db: options.Db = DEFAULT_DB,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    batch_size: options.SuiteBatch = None,
    fresh: options.Fresh = False,
    ray: options.Ray = None,
) -> None:
    """Run every cell of a suite; finished cells are skipped, interrupted ones resume."""
    from advbench.engine.suite_schema import Suite

    loaded = Suite.from_yaml(suite)  # every key checked before anything (torch included) loads
    runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray)
    from advbench.engine import suite as suites

    results = suites.run_suite(loaded, runtime, on_cell=render.cell_line)
    render.show(render.suite_table(loaded.name, results))


def check_cmd(
    baseline: Annotated[Path, typer.Option(help="baseline JSON")] = Path("baseline.json"),
    tolerance: Annotated[float, typer.Option(help="allowed drop in percentage points")] = 1.0,
    stat: Annotated[
        bool,
        typer.Option(
            "--stat", help="also fail on a significant drop (one-sided two-proportion z-test, 5%)"
        ),
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="write the baseline from the stored results instead of checking"
        ),
    ] = False,
    suite: Annotated[Optional[Path], typer.Option(help="run (or resume) this suite first")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="with --update: only this dataset")] = None,
    db: options.Db = DEFAULT_DB,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    batch_size: options.SuiteBatch = None,
    fresh: options.Fresh = False,
    ray: options.Ray = None,
    allow_unreliable: Annotated[
        bool,
        typer.Option(
            "--allow-unreliable",
            help="do not fail on results whose evaluation verdict is unreliable",
        ),
    ] = False,
) -> None:
    """Regression gate: exit 1 when a robust accuracy fell below the baseline or its evaluation is unreliable."""
    from advbench.report import regression
    from advbench.store import Store

    # Every input is checked before the suite runs: a bad tolerance or baseline never costs an evaluation.
    regression.check_tolerance(tolerance)
    if dataset is not None and not update:
        raise UsageError(
            "--dataset applies only with --update (the check compares every baseline entry)"
        )
    if update:
        output_file(baseline, "--baseline")
    expected = None if update else regression.read_baseline(baseline)
    if suite:
        from advbench.engine.suite_schema import Suite

        loaded = Suite.from_yaml(suite)
        runtime = options.runtime(device, db, zoo, data_dir, batch_size, fresh, ray=ray)
        from advbench.engine import suite as suites

        suites.run_suite(loaded, runtime, on_cell=render.cell_line)
    with Store(options.require_db(db)) as store:
        if expected is None:
            entries = regression.update_baseline(store, baseline, dataset)
            render.console.print(f"wrote {baseline} ({len(entries)} entries)")
            return
        results = regression.compare(store, expected, tolerance, stat)
    render.show(
        render.regression_table(
            results,
            f"regression check against {baseline} (tolerance {tolerance:g} points{', z-test' if stat else ''})",
        )
    )
    missing = [c for c in results if c.missing]
    failed = [c for c in results if c.regressed and not c.missing]
    unreliable = [c for c in results if c.unreliable and not allow_unreliable]
    if missing:
        render.err_console.print(
            f"{len(missing)} of {len(results)} baseline entries have no stored result (first: {missing[0].entry.label})"
        )
    if failed:
        render.err_console.print(f"{len(failed)} of {len(results)} baseline entries regressed")
    if unreliable:
        render.err_console.print(
            f"{len(unreliable)} of {len(results)} baseline entries come from an unreliable evaluation (--allow-unreliable to accept)"
        )
    if missing or failed or unreliable:
        raise typer.Exit(1)
