"""Suites: models x attacks x budgets (x certification settings) from YAML, run cell by cell.

Every cell is an ordinary evaluation or certification run, so a suite resumes for free: a
finished cell is found again by its configuration and skipped, an interrupted one continues.
Unknown keys are errors, so a typo never silently shrinks a suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from advbench.core.errors import UsageError
from advbench.engine.certify import CertifyRunConfig, run_certify
from advbench.engine.evaluate import EvalConfig, run_eval

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


def suite_cells(suite: Suite, db: str, device: str = "auto", zoo: str | None = None) -> list[tuple[str, str, str, Any]]:
    """Every cell as (kind, model, setting label, run config)."""
    cells: list[tuple[str, str, str, Any]] = []
    for model in suite.models:
        for norm, eps, attacks in suite.threats:
            config = EvalConfig(model=model, attacks=attacks, eps=eps, norm=norm, dataset=suite.dataset, n=suite.n, seed=suite.seed,
                                batch_size=suite.batch_size, device=device, db=db, zoo=zoo, eot=suite.eot, checks=suite.checks)
            cells.append(("eval", model, f"{norm} {','.join(f'{e:g}' for e in eps)} {','.join(attacks)}", config))
        if suite.certify:
            c = suite.certify
            config = CertifyRunConfig(model=model, sigmas=tuple(c.get("sigmas", [0.25])), n0=c.get("n0", 100), n=c.get("n", 100_000), alpha=c.get("alpha", 0.001),
                                      dataset=suite.dataset, n_samples=c.get("n_samples", 500), seed=suite.seed, batch_size=c.get("batch_size", 1000),
                                      device=device, db=db, zoo=zoo)
            cells.append(("certify", model, f"sigma {','.join(str(s) for s in config.sigmas)}", config))
    return cells


def run_suite(
    suite: Suite, db: str, device: str = "auto", zoo: str | None = None, on_cell: Callable[[int, int, str], None] | None = None, ray: str | None = None
) -> list[CellResult]:
    """Every cell in turn; with `ray` (a Ray address) each cell's samples are sharded over Ray tasks."""
    cells = suite_cells(suite, db, device, zoo)
    results = []
    for i, (kind, model, setting, config) in enumerate(cells):
        if on_cell:
            on_cell(i, len(cells), f"{kind} {model} {setting}")
        if kind == "eval":
            outcome = run_eval(config, ray=ray)
            results.append(CellResult(kind, model, setting, outcome.summary.run_id, outcome.already_finished))
        else:
            summary = run_certify(config, ray=ray)
            results.append(CellResult(kind, model, setting, summary.run_id, False))
    return results
