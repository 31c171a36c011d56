"""The shipped suites are runnable, and docs/reproductions.md's tables are what its shipped runs give."""

import gzip
import importlib.util
import json
import shutil
import sys

import pytest
from conftest import REPO

from advbench.attacks import build_attack
from advbench.engine.suite import load_suite
from advbench.models import MODELS
from advbench.store import Store

SUITES = sorted((REPO / "docs" / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suite_names_registered_models_and_supported_attacks(path) -> None:
    suite = load_suite(path)
    for model in suite.models:
        assert model in MODELS.names(), f"{path.name}: unknown model {model}"
    for norm, eps, attacks in suite.threats:
        assert eps and attacks
        for spec in attacks:
            attack = build_attack(spec)[1]
            assert norm in attack.norms, f"{path.name}: {spec} does not support {norm}"


def _script():
    spec = importlib.util.spec_from_file_location("reproductions", REPO / "scripts" / "reproductions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_reproduction_tables_are_the_shipped_runs(tmp_path) -> None:
    """No number in docs/reproductions.md's tables is typed by hand: rebuilding them from the shipped
    database (docs/runs/reproductions.sqlite.gz) and Foolbox 2 results leaves the document unchanged."""
    db = tmp_path / "reproductions.sqlite"
    with gzip.open(REPO / "docs" / "runs" / "reproductions.sqlite.gz", "rb") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    script = _script()
    with Store(db) as store:
        cells = script.stored_cells(store)
        external = script.external_rows(store)
    assert cells, "the shipped reproduction database holds no finished runs"
    document = (REPO / "docs" / "reproductions.md").read_text()
    rebuilt = document
    foolbox2 = json.loads((REPO / "docs" / "runs" / "foolbox2-table1.json").read_text())
    for name, table in script.build_tables(cells, foolbox2, external).items():
        rebuilt = script.replace_block(rebuilt, name, table)
    assert rebuilt == document
    assert "| not run" not in document  # every table cell was measured
