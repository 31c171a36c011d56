"""The CLI as users meet it: real processes, exit codes, one-line errors, no tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def advbench(*args: str, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "COLUMNS": "200", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "advbench", *args], capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["eval", "--model", "kap-rn19"], 2, "did you mean kap-rn18"),
        (["eval", "--model", "kap-rn18", "--attack", "pgdd"], 2, "did you mean pgd"),
        (["eval", "--model", "kap-rn18", "--eps", "-0.1"], 2, "eps must be"),
        (["eval", "--model", "kap-rn18", "--eps", "1.5"], 2, "exceeds 1"),
        (["eval", "--model", "kap-rn18", "--norm", "l3"], 2, "unknown norm"),
        (["eval", "--model", "kap-rn18", "--attack", "pgd:steps=x"], 2, "not a valid int"),
        (["eval", "--model", "kap-rn18", "--dataset", "cifar1"], 2, "unknown dataset"),
        (["eval", "--model", "kap-rn18", "--device", "tpu"], 2, "unknown device"),
        (["eval", "--model", "kap-rn18", "--n", "-5"], 2, "--n must be positive"),
        (["certify", "--model", "rn18-nt", "--n", "-5"], 2, "--n must be positive"),
        (["certify", "--model", "rn18-nt", "--noise-draws", "0"], 2, "--noise-draws must be positive"),
        (["certify", "--model", "rn18-nt", "--n-samples", "20"], 2, "--n-samples is now --n (the images"),
        (["show", "nosuchrun"], 2, "no result database"),
    ],
)
def test_bad_input_exits_with_one_line(args: list[str], code: int, needle: str, tmp_path: Path) -> None:
    assert_one_line_error(advbench(*args, "--db", str(tmp_path / "x.sqlite")) if args[0] == "show" else advbench(*args, "--db", str(tmp_path / "x.sqlite")), code, needle)


def test_missing_dataset(tmp_path: Path, digits_zoo: Path) -> None:
    proc = advbench(
        "eval", "--model", "rn18-nt", "--dataset", "cifar10", "--zoo", str(digits_zoo), "--data-dir", str(tmp_path), "--db", str(tmp_path / "x.sqlite"),
        env_extra={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    # The model has no cifar10 checkpoint and the --zoo no cifar10/ folder: the card lookup fails
    # first, clearly, as bad input (a --zoo typo must not fall back to the shipped checkpoints).
    assert_one_line_error(proc, 2, "no cifar10 checkpoint")


def test_missing_data_files(tmp_path: Path, digits_zoo: Path) -> None:
    import shutil

    zoo = tmp_path / "zoo"
    shutil.copytree(digits_zoo / "digits", zoo / "cifar10")  # a card exists, the data does not
    card = zoo / "cifar10" / "rn18-nt.yaml"
    card.write_text(card.read_text().replace("dataset: digits", "dataset: cifar10"))
    (tmp_path / "data").mkdir()
    proc = advbench(
        "eval", "--model", "rn18-nt", "--dataset", "cifar10", "--zoo", str(zoo), "--data-dir", str(tmp_path / "data"),
        "--db", str(tmp_path / "x.sqlite"), env_extra={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert_one_line_error(proc, 2, "cifar10 not found")  # data the user must provide: bad input (issue 40)


def test_tampered_checkpoint(tmp_path: Path, digits_zoo: Path) -> None:
    import shutil

    zoo = tmp_path / "zoo"
    shutil.copytree(digits_zoo, zoo)
    weights = zoo / "digits" / "rn18-nt.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[100] ^= 1
    weights.write_bytes(bytes(raw))
    proc = advbench("eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(zoo), "--db", str(tmp_path / "x.sqlite"))
    assert_one_line_error(proc, 2, "sha256")  # a file in the user's --zoo: bad input (issue 40)


def test_models_and_attacks_tables() -> None:
    models = advbench("models")
    assert models.returncode == 0
    for name in ("kap-rn18", "rn18-nt", "rn18-nt-noise"):
        assert name in models.stdout
    assert "fashion-mnist" in models.stdout  # shipped checkpoints are listed
    attacks = advbench("attacks")
    assert attacks.returncode == 0 and "pgd" in attacks.stdout and "fgsm" in attacks.stdout and "linf, l2" in attacks.stdout


def test_eval_json_runs_and_show(tmp_path: Path, digits_zoo: Path) -> None:
    db = str(tmp_path / "r.sqlite")
    common = ["--model", "rn18-nt", "--dataset", "digits", "--zoo", str(digits_zoo), "--db", db, "--n", "64", "--device", "cpu"]
    proc = advbench("eval", *common, "--attack", "fgsm", "--attack", "pgd:steps=5", "--eps", "0.05", "--eps", "0.1", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n"] == 64 and [e["eps"] for e in summary["per_eps"]] == [0.05, 0.1]
    # Square-500 breaks what FGSM and PGD-5 leave, so the checks add Square-5000: robust_after has it too.
    assert set(summary["per_eps"][0]["robust_after"]) >= {"fgsm", "pgd:steps=5"}
    table = advbench("eval", *common, "--attack", "fgsm", "--attack", "pgd:steps=5", "--eps", "0.05", "--eps", "0.1")
    assert table.returncode == 0 and "already finished" in table.stderr and "worst case" in table.stdout
    runs = advbench("runs", "--db", db)
    assert runs.returncode == 0 and summary["run_id"] in runs.stdout
    show = advbench("show", summary["run_id"][:6], "--db", db)
    assert show.returncode == 0 and "weights sha256" in show.stdout and "worst case" in show.stdout


def test_eval_shipped_kap_model_on_fashion_mnist(tmp_path: Path) -> None:
    proc = advbench("eval", "--model", "kap-rn18", "--attack", "pgd:steps=3", "--n", "32", "--db", str(tmp_path / "r.sqlite"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["dataset"] == "fashion-mnist" and summary["n"] == 32
    assert 0.0 <= summary["per_eps"][0]["worst_case"] <= summary["clean_accuracy"]


def test_killed_eval_resumes_to_identical_rows(tmp_path: Path, digits_zoo: Path) -> None:
    """SIGKILL mid-run loses at most the batch in flight; the same command then finishes it."""
    import os
    import signal
    import sqlite3
    import time

    from advbench.store import Store

    args = ["eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(digits_zoo), "--n", "200", "--device", "cpu",
            "--attack", "pgd:steps=20", "--eps", "0.02", "--batch-size", "8", "--check-n", "16"]  # the checked shard: 16 samples, whole
    killed_db, reference_db = tmp_path / "killed.sqlite", tmp_path / "reference.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "advbench", *args, "--db", str(killed_db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if killed_db.exists():
            try:
                with sqlite3.connect(killed_db) as conn:
                    done = conn.execute("SELECT COUNT(*) FROM clean").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
        if done >= 16:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(killed_db) as store:
        (run,) = store.list_runs()
        stored = len(store.done_samples(run.run_id))
    assert run.status == "running" and 16 <= stored < 200 and stored % 8 == 0  # whole batches only
    assert advbench(*args, "--db", str(killed_db)).returncode == 0
    assert advbench(*args, "--db", str(reference_db)).returncode == 0
    with Store(killed_db) as a, Store(reference_db) as b:
        ra, rb = a.list_runs()[0], b.list_runs()[0]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert ra.status == "finished" and ra.run_id == run.run_id
        assert strip(a.sample_rows(ra.run_id)) == strip(b.sample_rows(rb.run_id))
        assert a.clean_rows(ra.run_id) == b.clean_rows(rb.run_id)
