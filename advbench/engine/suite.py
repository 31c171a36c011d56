"""Suites: models x attacks x budgets (x certification settings) from YAML, run cell by cell.

Every cell is an ordinary evaluation or certification run, so a suite resumes for free: a
finished cell is found again by its configuration and skipped, an interrupted one continues.
Unknown keys are errors, so a typo never silently shrinks a suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from advbench.core.errors import UsageError
from advbench.engine.certify import run_certify
from advbench.engine.evaluate import run_eval
from advbench.engine.spec import CertifySpec, EvalSpec, Runtime

SUITE_KEYS = {"name", "dataset", "n", "seed", "batch_size", "models", "attacks", "threats", "certify", "eot", "checks"}
THREAT_KEYS = {"norm", "eps", "attacks"}  # attacks: this budget's own list instead of the suite's
CERTIFY_KEYS = {"sigmas", "n0", "n", "alpha", "n_samples", "batch_size"}


@dataclass(frozen=True)
class Suite:
    name: str
    models: tuple[str, ...]
    # (norm, eps values, the attacks for this budget: the suite's list unless the threat names its own)
    threats: tuple[tuple[str, tuple[float, ...], tuple[str, ...]], ...]
    dataset: str = "fashion-mnist"
    n: int | None = 500
    seed: int = 0
    batch_size: int = 256
    eot: int | None = None
    checks: bool = True
    certify: dict[str, Any] = field(default_factory=dict)


def _check_keys(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def load_suite(path: Path) -> Suite:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read suite {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"suite {path} is not a YAML mapping")
    _check_keys(f"suite {path}", data, SUITE_KEYS)
    for key in ("models", "threats"):
        if not data.get(key):
            raise UsageError(f"suite {path}: '{key}' must be a non-empty list")
    threats = []
    for i, t in enumerate(data["threats"]):
        if not isinstance(t, dict):
            raise UsageError(f"suite {path}: threats[{i}] must be a mapping with norm and eps")
        _check_keys(f"suite {path}, threats[{i}]", t, THREAT_KEYS)
        eps = t.get("eps")
        eps = eps if isinstance(eps, list) else [eps]
        attacks = t.get("attacks", data.get("attacks"))
        if not attacks or not isinstance(attacks, list):
            raise UsageError(f"suite {path}: threats[{i}] has no attacks (give the suite's 'attacks' list or the threat's own)")
        try:
            threats.append((str(t["norm"]), tuple(float(e) for e in eps), tuple(str(a) for a in attacks)))
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"suite {path}: threats[{i}] needs a norm and numeric eps") from None
    certify = data.get("certify") or {}
    _check_keys(f"suite {path}, certify", certify, CERTIFY_KEYS)
    return Suite(
        name=str(data.get("name", Path(path).stem)), models=tuple(data["models"]), threats=tuple(threats),
        dataset=data.get("dataset", "fashion-mnist"), n=data.get("n", 500), seed=int(data.get("seed", 0)), batch_size=int(data.get("batch_size", 256)),
        eot=data.get("eot"), checks=bool(data.get("checks", True)), certify=certify,
    )


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
            spec = EvalSpec(model=model, attacks=attacks, eps=eps, norm=norm, dataset=suite.dataset, n=suite.n, seed=suite.seed,
                            eot=suite.eot, checks=suite.checks)
            cells.append(("eval", model, f"{norm} {','.join(f'{e:g}' for e in eps)} {','.join(attacks)}", spec))
        if suite.certify:
            c = suite.certify
            cert = CertifySpec(model=model, sigmas=tuple(c.get("sigmas", [0.25])), n0=c.get("n0", 100), n=c.get("n", 100_000), alpha=c.get("alpha", 0.001),
                               dataset=suite.dataset, n_samples=c.get("n_samples", 500), seed=suite.seed)
            cells.append(("certify", model, f"sigma {','.join(str(s) for s in cert.sigmas)}", cert))
    return cells


def run_suite(suite: Suite, runtime: Runtime = Runtime(), on_cell: Callable[[int, int, str], None] | None = None) -> list[CellResult]:
    """Every cell in turn, with the runtime (device, db, zoo, data dir, Ray...) of the caller.

    The suite's `batch_size` (and its certify section's) apply where the runtime sets none.
    """
    results = []
    cells = suite_cells(suite)
    for i, (kind, model, setting, spec) in enumerate(cells):
        if on_cell:
            on_cell(i, len(cells), f"{kind} {model} {setting}")
        if isinstance(spec, EvalSpec):
            outcome = run_eval(spec, replace(runtime, batch_size=runtime.batch_size or suite.batch_size))
            results.append(CellResult(kind, model, setting, outcome.summary.run_id, outcome.already_finished))
        else:
            summary = run_certify(spec, replace(runtime, batch_size=runtime.batch_size or suite.certify.get("batch_size")))
            results.append(CellResult(kind, model, setting, summary.run_id, False))
    return results
