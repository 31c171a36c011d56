"""Suites: models x attacks x budgets (x certification settings) from YAML, run cell by cell.

Every cell is an ordinary evaluation or certification run, so a suite resumes for free: a
finished cell is found again by its configuration and skipped, an interrupted one continues.
The file's typed schema (every key checked, unknown keys refused) is `engine/suite_schema.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from advbench.core.threat import ThreatModel, parse_norm
from advbench.data.registry import check_dataset_spec
from advbench.engine.attack_plan import validate_attacks
from advbench.engine.certify import run_certify
from advbench.engine.evaluate import run_eval
from advbench.engine.spec import CertifySpec, EvalSpec, Runtime
from advbench.engine.suite_schema import CertifySettings, Suite, SuiteThreat
from advbench.models.external import is_external
from advbench.models.registry import MODELS

__all__ = [
    "CellResult",
    "CertifySettings",
    "Suite",
    "SuiteThreat",
    "check_cells",
    "load_suite",
    "run_suite",
    "suite_cells",
]


def load_suite(path: Path | str) -> Suite:
    """The suite in a YAML file, its every key checked (`Suite.from_yaml`); UsageError otherwise."""
    return Suite.from_yaml(path)


@dataclass
class CellResult:
    kind: str  # eval | certify
    model: str
    setting: str
    run_id: str
    skipped: bool  # already finished before this call


def suite_cells(suite: Suite) -> list[tuple[str, str, str, EvalSpec | CertifySpec]]:
    """Every cell as (kind, model, setting label, spec)."""
    cells: list[tuple[str, str, str, EvalSpec | CertifySpec]] = []
    for model in suite.models:
        for norm, eps, attacks in suite.threats:
            spec = EvalSpec(
                model=model,
                attacks=attacks,
                eps=eps,
                norm=norm,
                dataset=suite.dataset,
                n=suite.n,
                seed=suite.seed,
                eot=suite.eot,
                checks=suite.checks,
                check_n=suite.check_n,
            )
            cells.append(
                (
                    "eval",
                    model,
                    f"{norm} {','.join(f'{e:g}' for e in eps)} {','.join(attacks)}",
                    spec,
                )
            )
        if suite.certify:
            c = suite.certify
            cert = CertifySpec(
                model=model,
                sigmas=c.sigmas,
                n0=c.n0,
                noise_draws=c.noise_draws,
                alpha=c.alpha,
                dataset=suite.dataset,
                n=c.n,
                seed=suite.seed,
                sequential=c.sequential,
                radii=c.radii,
                resolution=c.resolution,
                precision=c.precision,
            )
            cells.append(("certify", model, f"sigma {','.join(str(s) for s in cert.sigmas)}", cert))
    return cells


def check_cells(suite: Suite, cells: list[tuple[str, str, str, EvalSpec | CertifySpec]]) -> None:
    """The names of every cell checked before the first one runs: the dataset, each model, each
    attack with its options and norm. A typo in the last model fails now, not after the cells
    before it have run."""
    check_dataset_spec(suite.dataset)
    for model in suite.models:
        if not is_external(model):
            MODELS.get(model)
    for _, _, _, spec in cells:
        if isinstance(spec, EvalSpec):
            threats = [ThreatModel(parse_norm(spec.norm), e) for e in spec.eps]
            validate_attacks(spec.attacks, threats, spec.surrogate)


def run_suite(
    suite: Suite,
    runtime: Runtime = Runtime(),
    on_cell: Callable[[int, int, str], None] | None = None,
) -> list[CellResult]:
    """Every cell in turn, with the runtime (device, db, zoo, data dir, Ray...) of the caller.

    The suite's `batch_size` (and its certify section's) apply where the runtime sets none.
    """
    results = []
    cells = suite_cells(suite)
    check_cells(suite, cells)
    for i, (kind, model, setting, spec) in enumerate(cells):
        if on_cell:
            on_cell(i, len(cells), f"{kind} {model} {setting}")
        if isinstance(spec, EvalSpec):
            outcome = run_eval(
                spec, replace(runtime, batch_size=runtime.batch_size or suite.batch_size)
            )
            results.append(
                CellResult(kind, model, setting, outcome.summary.run_id, outcome.already_finished)
            )
        else:
            summary = run_certify(
                spec,
                replace(
                    runtime,
                    batch_size=runtime.batch_size
                    or (suite.certify.batch_size if suite.certify else None),
                ),
            )
            results.append(CellResult(kind, model, setting, summary.run_id, False))
    return results
