"""The commands that only read the store load without torch (../shared/DESIGN.md: store and
report never import torch, so listings, leaderboards and reports answer fast).

Each command runs in a fresh interpreter through the console entry point
(`advbench.cli.app:main`), on a database the repository ships (docs/runs), and the test reads
which modules that interpreter had loaded when the command returned. `advbench report` loads
the engine, and with it torch, only to re-create adversarial example images (`--examples N`,
N > 0, when a stored attack broke a sample); `--examples 0` is its torch-free part.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNS = Path(__file__).resolve().parents[1] / "docs" / "runs"
HEAVY = ("torch", "torchvision")

# Runs the CLI as the `advbench` script does, then writes the heavy modules loaded to argv[1].
PROBE = """
import json, sys
out, sys.argv = sys.argv[1], ["advbench", *sys.argv[2:]]
from advbench.cli.app import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
with open(out, "w") as f:
    json.dump(sorted(m for m in sys.modules if m.split(".")[0] in %r), f)
sys.exit(code)
""" % (HEAVY,)


def unpack(name: str, folder: Path) -> Path:
    db = folder / name.removesuffix(".gz")
    with gzip.open(RUNS / name) as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("torch-free")
    # Two evaluations of one model (small), and the reproductions (evaluations and certifications).
    return {name: unpack(f"{name}.sqlite.gz", folder) for name in ("sc-frontend-scrutiny", "reproductions")}


def advbench(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """(the finished command, the heavy modules it loaded)."""
    loaded = cwd / "loaded.json"
    env = {k: v for k, v in os.environ.items() if k != "ADVBENCH_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(loaded), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"advbench {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc, json.loads(loaded.read_text())


def stored_runs(cwd: Path, db: Path, kind: str) -> list[dict[str, object]]:
    proc, loaded = advbench(cwd, "runs", "--db", str(db), "--limit", "1000", "--format", "json")
    assert not loaded, f"advbench runs loaded {loaded}"
    return [r for r in json.loads(proc.stdout) if r["kind"] == kind]


def test_runs_and_show_load_no_torch(dbs: dict[str, Path], tmp_path: Path) -> None:
    db = dbs["sc-frontend-scrutiny"]
    proc, loaded = advbench(tmp_path, "runs", "--db", str(db))
    assert not loaded and "sc-frontend" in proc.stdout
    run = str(stored_runs(tmp_path, db, "eval")[0]["run_id"])
    for args in (("show", run), ("show", run[:6], "--json")):
        proc, loaded = advbench(tmp_path, *args, "--db", str(db))
        assert not loaded, f"advbench {' '.join(args)} loaded {loaded}"
        assert run in proc.stdout


def test_show_of_a_certification_loads_no_torch(dbs: dict[str, Path], tmp_path: Path) -> None:
    db = dbs["reproductions"]
    run = str(stored_runs(tmp_path, db, "certify")[0]["run_id"])
    proc, loaded = advbench(tmp_path, "show", run, "--db", str(db))
    assert not loaded, f"advbench show (certify run) loaded {loaded}"
    assert "certified accuracy" in proc.stdout


@pytest.mark.parametrize("fmt", ["md", "json", "html", "robustbench"])
def test_leaderboards_load_no_torch(dbs: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("boards" if fmt == "robustbench" else f"board.{fmt}")
    _, loaded = advbench(tmp_path, "leaderboard", "--db", str(dbs["sc-frontend-scrutiny"]), "--format", fmt, "--out", str(out))
    assert not loaded, f"advbench leaderboard --format {fmt} loaded {loaded}"
    assert out.exists()


def test_the_terminal_leaderboard_loads_no_torch(dbs: dict[str, Path], tmp_path: Path) -> None:
    proc, loaded = advbench(tmp_path, "leaderboard", "--db", str(dbs["sc-frontend-scrutiny"]))
    assert not loaded, f"advbench leaderboard (the terminal table) loaded {loaded}"
    assert "sc-frontend" in proc.stdout and "ranked by worst case" in proc.stdout


@pytest.mark.parametrize(("db", "model"), [("sc-frontend-scrutiny", "sc-frontend"), ("reproductions", "kap-rn18")])
def test_a_report_without_example_images_loads_no_torch(dbs: dict[str, Path], tmp_path: Path, db: str, model: str) -> None:
    out = tmp_path / "report.html"
    _, loaded = advbench(tmp_path, "report", model, "--db", str(dbs[db]), "--examples", "0", "--out", str(out))
    assert not loaded, f"advbench report --examples 0 loaded {loaded}"
    assert model in out.read_text()


def test_compare_loads_no_torch(dbs: dict[str, Path], tmp_path: Path) -> None:
    db = dbs["sc-frontend-scrutiny"]  # two evaluations of sc-frontend on the same 200 images
    first, second = (str(r["run_id"]) for r in stored_runs(tmp_path, db, "eval")[:2])
    proc, loaded = advbench(tmp_path, "compare", first, second, "--threat", "linf:0.1", "--db", str(db))
    assert "exact McNemar test" in proc.stdout
    assert not loaded, f"advbench compare loaded {loaded}"
