"""The result database under stress and misuse (issue 15): two processes on one run, read-only
files, files that are not advbench's, databases of another schema, databases of earlier versions.
Bad input is one line and exit 2; a stored row is never lost or changed."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from advbench.core.errors import StoreError, UnknownRunError, UnusableDatabaseError
from advbench.engine.runs import RunLedger, run_meta
from advbench.store import Store
from advbench.store.schema import SCHEMA

DOCS_RUNS = REPO / "docs" / "runs"


def advbench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "advbench", *args], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "internal error" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def eval_args(zoo: Path, db: Path, n: int = 16) -> list[str]:
    return ["eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(zoo), "--n", str(n), "--device", "cpu",
            "--attack", "fgsm", "--attack", "pgd:steps=5", "--eps", "0.05", "--batch-size", "8", "--db", str(db)]


def strip_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def meta() -> dict:
    return run_meta("m", "digits", 4, 0, "h", "s" * 64, "cpu")


# two processes, one run -----------------------------------------------------------------------
def test_two_concurrent_evals_on_one_database_agree_on_one_run(digits_zoo: Path, tmp_path: Path) -> None:
    shared, reference = tmp_path / "shared.sqlite", tmp_path / "reference.sqlite"
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "advbench", *eval_args(digits_zoo, shared, n=96), "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "IntegrityError" not in err
    first, second = (json.loads(out) for out, _ in outs)
    assert first["run_id"] == second["run_id"]
    assert first["per_eps"] == second["per_eps"] and first["clean_accuracy"] == second["clean_accuracy"]
    assert advbench(*eval_args(digits_zoo, reference, n=96)).returncode == 0
    with Store(shared) as a, Store(reference) as b:
        (run,) = a.list_runs()
        (ref,) = b.list_runs()
        assert run.status == "finished" and run.run_id == first["run_id"]
        assert strip_seconds(a.sample_rows(run.run_id)) == strip_seconds(b.sample_rows(ref.run_id))
        assert a.clean_rows(run.run_id) == b.clean_rows(ref.run_id)
        assert len(a.done_samples(run.run_id)) == 96


def test_a_run_created_meanwhile_by_another_process_is_joined(tmp_path: Path) -> None:
    """The race itself, made deterministic: while this ledger computes its new run's config (the
    checks), another connection creates the run; this one must join it, not make a second."""
    db = tmp_path / "r.sqlite"
    with Store(db) as mine, Store(db) as theirs:
        other: list[RunLedger] = []

        def config() -> dict:
            other.append(RunLedger.open(theirs, "key", "eval", False, "cpu", meta(), {"by": "them"}))
            return {"by": "me"}

        ledger = RunLedger.open(mine, "key", "eval", False, "cpu", meta(), config)
        assert ledger.run_id == other[0].run_id and ledger.resumed and not other[0].resumed
        assert ledger.config() == {"by": "them"} and len(mine.list_runs()) == 1
        # Both commit the same batch: the second commit keeps the first's rows, without an error.
        row = {"sample_idx": 3, "attack": "fgsm", "eps": 0.1, "status": "attacked", "label": 1, "clean_pred": 1, "adv_pred": 2,
               "success": 1, "distance": 0.1, "steps": 1, "seconds": 0.5, "min_distance": None,
               "correct_draws": None, "draws": None}  # one pass judged (a deterministic model)
        other[0].commit_batch([(3, 1, 1)], [row])
        ledger.commit_batch([(3, 1, 1)], [{**row, "seconds": 0.7}])
        assert mine.sample_rows(ledger.run_id) == [row] and mine.clean_rows(ledger.run_id) == [(3, 1, 1)]
        # A run the other process finished meanwhile stays finished.
        other[0].finish({"done": True}, [])
        mine.mark_resumed(ledger.run_id, "cuda")
        assert mine.get_run(ledger.run_id).status == "finished"
        assert RunLedger.open(mine, "key", "eval", False, "cpu", meta(), {}).finished


def test_concurrent_certificate_commits_keep_one_row(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    row = {"sample_idx": 0, "sigma": 0.25, "label": 1, "prediction": 1, "radius": 0.3, "p_lower": 0.9, "count_top": 90, "n": 100,
           "predict": 1, "forward_passes": 200, "seconds": 1.0}
    with Store(db) as a, Store(db) as b:
        ledger = RunLedger.open(a, "k", "certify", False, "cpu", meta(), {})
        joined = RunLedger.open(b, "k", "certify", False, "cpu", meta(), {})
        assert joined.run_id == ledger.run_id
        ledger.commit_certificates([row])
        joined.commit_certificates([{**row, "seconds": 2.0}])
        assert a.certificate_rows(ledger.run_id) == [row]


# files that must not be written ---------------------------------------------------------------
def test_read_only_database_is_one_line_exit_2_and_still_readable(digits_zoo: Path, tmp_path: Path) -> None:
    db = tmp_path / "ro.sqlite"
    assert advbench(*eval_args(digits_zoo, db)).returncode == 0
    before = digest(db)
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        # A new run cannot be stored: refused before any work, in one line.
        assert_one_line_error(advbench(*eval_args(digits_zoo, db, n=24)), 2, "read-only")
        # The finished run can still be listed, shown and found again.
        runs = advbench("runs", "--db", str(db))
        assert runs.returncode == 0, runs.stderr
        again = advbench(*eval_args(digits_zoo, db))
        assert again.returncode == 0 and "already finished" in again.stderr
        with Store(db) as store:
            assert store.readonly and len(store.list_runs()) == 1
            with pytest.raises(UnusableDatabaseError, match="read-only"):
                store.finish_run(store.list_runs()[0].run_id, {}, [])
    finally:
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert digest(db) == before


def test_read_only_empty_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    db.touch()
    db.chmod(stat.S_IRUSR)
    with pytest.raises(UnusableDatabaseError, match="read-only") as info:
        Store(db)
    assert info.value.exit_code == 2 and db.read_bytes() == b""


def test_unrelated_sqlite_file_is_refused_untouched(digits_zoo: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before, files = digest(db), sorted(os.listdir(tmp_path))
    assert_one_line_error(advbench(*eval_args(digits_zoo, db)), 2, "not an advbench result database")
    assert_one_line_error(advbench("runs", "--db", str(db)), 2, "not an advbench result database")
    assert digest(db) == before and sorted(os.listdir(tmp_path)) == files
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_database_of_another_schema_is_refused_before_anything_changes(digits_zoo: Path, tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        # advbench's tables, but a `runs` of another layout (a future version, or another tool's).
        conn.executescript(SCHEMA.replace("warnings TEXT\n", "warnings TEXT, owner TEXT NOT NULL\n").replace("config_key", "config_hash"))
    conn.close()
    before = digest(db)
    assert_one_line_error(advbench(*eval_args(digits_zoo, db)), 2, "another schema")
    with pytest.raises(UnusableDatabaseError, match="lacks column.*config_key.*unknown column.*owner"):
        Store(db)
    assert digest(db) == before
    assert db.read_bytes()[18:20] == b"\x01\x01"  # still the rollback journal: not switched to WAL


def test_file_that_is_not_a_database_is_one_line_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_text("these are my notes, not a database\n" * 40)
    before = digest(db)
    assert_one_line_error(advbench("runs", "--db", str(db)), 2, "not a database")
    assert digest(db) == before


def test_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store, pytest.raises(UnknownRunError, match="no run 'nosuch'") as info:
        store.get_run("nosuch")
    assert isinstance(info.value, StoreError) and info.value.exit_code == 2


# earlier versions -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["zoo", "reproductions", "polarizer-surrogates", "sc-frontend-scrutiny"])
def test_shipped_databases_of_earlier_versions_still_read(name: str, tmp_path: Path) -> None:
    db = tmp_path / f"{name}.sqlite"
    db.write_bytes(gzip.decompress((DOCS_RUNS / f"{name}.sqlite.gz").read_bytes()))
    before = digest(db)
    with Store(db) as store:
        runs = store.list_runs(limit=100_000)
        assert runs and all(r.status == "finished" for r in runs)  # no orphaned `running` run is shipped
        # every shipped run can be re-made: made from a commit, with the package as committed
        assert all(r.git_commit and not r.git_commit.endswith("-dirty") for r in runs), [r.run_id for r in runs if not r.git_commit]
        assert store.sample_rows(runs[0].run_id) or store.certificate_rows(runs[0].run_id)
    assert digest(db) == before  # a current database is opened without a write
    listing = advbench("runs", "--db", str(db))
    assert listing.returncode == 0 and runs[0].run_id in listing.stdout


def test_first_version_database_is_upgraded_without_losing_rows(tmp_path: Path) -> None:
    """advbench 0.1 wrote no min_distance column and no certificates table; both are added."""
    db = tmp_path / "v1.sqlite"
    old_schema = SCHEMA.split("CREATE TABLE IF NOT EXISTS certificates")[0]
    old_schema = "\n".join(line for line in old_schema.splitlines() if "min_distance" not in line)
    with sqlite3.connect(db) as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO runs (run_id, config_key, status, created, config) VALUES ('r1', 'k', 'finished', 'then', '{}')")
        conn.execute("INSERT INTO samples (run_id, sample_idx, attack, eps, status, label, clean_pred) VALUES ('r1', 0, 'pgd', 0.1, 'skipped', 1, 1)")
    conn.close()
    with Store(db) as store:
        (row,) = store.sample_rows("r1")
        assert row["attack"] == "pgd" and row["min_distance"] is None
        assert store.certificate_rows("r1") == [] and store.get_run("r1").status == "finished"
