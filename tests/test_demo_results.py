"""The demo's figures that the README and docs/demo-results.md quote are those of the stored demo
run (docs/runs/demo.sqlite.gz), written by scripts/demo_results.py: none is typed by hand."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml
from conftest import REPO, load_script

DB = REPO / "docs" / "runs" / "demo.sqlite.gz"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    db.write_bytes(gzip.decompress(DB.read_bytes()))
    return load_script("demo_results").demo_runs(db)


def test_the_stored_run_is_the_demo_suite_made_from_a_commit(runs: list) -> None:
    suite = yaml.safe_load((REPO / "docs" / "suites" / "demo.yaml").read_text())
    assert [r.model for r in runs] == suite["models"]  # one finished evaluation per model, in order
    (threat,) = suite["threats"]
    for run in runs:
        assert run.n == suite["n"] and run.norm == threat["norm"]
        assert list(run.eps) == [float(e) for e in threat["eps"]]
        assert run.commit and not run.commit.endswith("-dirty"), run.run_id  # can be re-made


def test_readme_quotes_the_stored_demo_run(runs: list) -> None:
    script = load_script("demo_results")
    readme = (REPO / "README.md").read_text()
    assert readme.count(script.BEGIN) == 1 and readme.count(script.END) == 1
    block = readme[readme.index(script.BEGIN) : readme.index(script.END) + len(script.END)]
    assert block == script.readme_block(runs)
    for run in runs:  # the figures themselves, read back from the sentence
        assert f"{run.model} {' / '.join(f'{100 * w:.0f}' for w in run.worst)} %" in block
        assert f"{run.model} {100 * run.clean:.0f} %" in block


def test_demo_results_page_is_the_stored_demo_run(runs: list) -> None:
    page = (REPO / "docs" / "demo-results.md").read_text()
    assert page == load_script("demo_results").page(runs)
    for run in runs:
        assert f"`{run.run_id}`" in page


def test_replace_block_keeps_the_text_around_it(tmp_path: Path) -> None:
    script = load_script("demo_results")
    text = f"before\n{script.BEGIN}\nold figures\n{script.END}\nafter\n"
    assert script.replace_block(text, f"{script.BEGIN}\nnew\n{script.END}") == f"before\n{script.BEGIN}\nnew\n{script.END}\nafter\n"
