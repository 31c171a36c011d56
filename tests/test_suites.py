"""The shipped suites are runnable, and docs/notes/reproductions.md's tables are what its shipped runs give."""

import gzip
import shutil

import pytest
from conftest import REPO, load_script

from advbench.attacks import build_attack
from advbench.core.threat import ThreatModel
from advbench.engine.suite import load_suite
from advbench.models import MODELS
from advbench.store import Store

SUITES = sorted((REPO / "docs" / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suite_names_registered_models_and_supported_attacks(path) -> None:
    suite = load_suite(path)
    for model in suite.models:
        assert model in MODELS.names(), f"{path.name}: unknown model {model}"
    dims = {"fashion-mnist": 28 * 28, "cifar10": 3 * 32 * 32}[suite.dataset]
    for norm, eps, attacks in suite.threats:
        assert eps and attacks
        for e in eps:  # `advbench run` refuses a budget above the [0,1] box's diameter
            ThreatModel(norm, e).check_for(dims)
        for spec in attacks:
            attack = build_attack(spec)[1]
            assert norm in attack.norms, f"{path.name}: {spec} does not support {norm}"


def test_reproduction_tables_are_the_shipped_runs(tmp_path) -> None:
    """No number in docs/notes/reproductions.md's tables is typed by hand: rebuilding them from the shipped
    database (docs/runs/reproductions.sqlite.gz, Foolbox 2's runs included) leaves the document unchanged."""
    db = tmp_path / "reproductions.sqlite"
    with gzip.open(REPO / "docs" / "runs" / "reproductions.sqlite.gz", "rb") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    script = load_script("reproductions")
    with Store(db) as store:
        cells = script.stored_cells(store)
        external = script.external_rows(store)
        curves = script.certified_curves(store)
        fig4 = script.fig4_runs(store)
        appb = script.appb_curves(store, cells, script.SMOOTH_MODELS)
        lambda_models = tuple(m for m, _ in script.LAMBDA_MODELS)
        appb_lambda = script.appb_curves(store, cells, lambda_models, skip=(script.CW,))
    assert set(appb) == {(m, norm) for m in script.SMOOTH_MODELS for norm in script.APPB_NORMS}, "App. B needs every norm's cells of Table 1's models"
    assert set(appb_lambda) == {(m, norm) for m in lambda_models for norm in script.APPB_NORMS}, "the lambda grid needs every norm's cells"
    assert cells, "the shipped reproduction database holds no finished runs"
    assert {c.model for c in curves} == set(script.FIG6_MODELS), "KAP Fig. 6 needs a certification of both models"
    assert set(fig4) == {m for panel in script.FIG4_PANELS.values() for m, _ in panel}, "KAP Fig. 4 needs every panel's model"
    document = (REPO / "docs" / "notes" / "reproductions.md").read_text()
    rebuilt = document
    tables = script.build_tables(cells, external, curves, fig4, appb, appb_lambda, script.card_default_evals())
    assert "foolbox2" in tables, "the Foolbox 2 cross-check is stored as runs"
    for name, table in tables.items():
        rebuilt = script.replace_block(rebuilt, name, table)
    assert rebuilt == document
    assert "| not run" not in document  # every table cell was measured


def test_make_demo_runs_the_demo_suite_on_shipped_checkpoints_with_existing_commands() -> None:
    """`make demo` is only run by hand (minutes): check its wiring here instead, without running it."""
    import re
    import subprocess

    from advbench.cli.app import app

    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/demo.sh" in recipe
    script = (REPO / "scripts" / "demo.sh").read_text()
    subprocess.run(["bash", "-n", str(REPO / "scripts" / "demo.sh")], check=True)
    assert "docs/suites/demo.yaml" in script
    suite = load_suite(REPO / "docs" / "suites" / "demo.yaml")
    assert suite.checks and suite.dataset == "fashion-mnist"
    for model in suite.models:  # shipped, so the demo never trains or downloads a model
        assert (REPO / "model_zoo" / "fashion-mnist" / f"{model}.safetensors").is_file(), model
    commands = {c.name for c in app.registered_commands}
    used = set(re.findall(r'"\$ADVBENCH" ([a-z]+)', script))
    assert {"run", "curve", "report", "leaderboard"} <= used and used <= commands, used - commands
    reported = re.findall(r'"\$ADVBENCH" report ([a-z0-9-]+)', script)
    assert reported and set(reported) <= set(suite.models)
