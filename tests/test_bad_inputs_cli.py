"""Bad input through the real `advbench` console script (issue 15): one line on stderr, exit 2
(a file that is corrupt or unsafe too, issue 40), never a traceback or an "internal error"."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO
from torch import nn

from advbench.cli.app import INTERRUPTED
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel
from advbench.store import Store

SCRIPT = Path(sys.executable).parent / "advbench"


def advbench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(SCRIPT), *args], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "internal error" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


class Payload:
    """Pickled by reference into a .pt file: unpickling it would import and run this module's
    code, so it must be refused."""


BOOM = """
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("no GPU here")
"""

TINY = """
from torch import nn

def Net():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
"""


MISBEHAVING = """
import torch
from torch import nn

class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

class NaNs(Base):
    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")

class Seven(Base):
    def forward(self, x):
        return self.lin(x.flatten(1))[:, :7]

class ThreeD(Base):
    def forward(self, x):
        return self.lin(x.flatten(1)).unsqueeze(2).repeat(1, 1, 2)

class Pair(Base):
    def forward(self, x):
        return self.lin(x.flatten(1)), x

class Scalar(Base):
    def forward(self, x):
        return self.lin(x.flatten(1)).sum()
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Model files, weights and zoo folders the cases below name as {tmp}/..."""
    (tmp_path / "boom.py").write_text(BOOM)
    (tmp_path / "bad.py").write_text(MISBEHAVING)
    torch.save({"lin." + k: v for k, v in nn.Linear(64, 10).state_dict().items()}, tmp_path / "lin.pt")
    (tmp_path / "tiny.py").write_text(TINY)
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).state_dict(), tmp_path / "tiny.pt")
    torch.save({"0.weight": Payload()}, tmp_path / "code.pt")
    (tmp_path / "otherzoo" / "cifar10").mkdir(parents=True)
    return tmp_path


KAP = ["eval", "--model", "kap-rn18"]
FILE_EVAL = ["eval", "--dataset", "digits", "--n", "8", "--attack", "fgsm", "--no-checks", "--device", "cpu"]


@pytest.mark.parametrize(
    "args,code,needle",
    [
        # The parser's own errors: click's one-line message, exit 2.
        (["eval", "--epss", "0.1"], 2, "No such option: --epss"),
        (["eval", "--modle", "kap-rn18"], 2, "No such option: --modle"),
        ([*KAP, "--eps", "abc"], 2, "Invalid value for '--eps'"),
        ([*KAP, "--seed", "abc"], 2, "Invalid value for '--seed'"),
        (["runs", "--limit", "abc"], 2, "Invalid value for '--limit'"),
        (["show"], 2, "Missing argument"),
        (["analyze", "nosuch"], 2, "No such command 'nosuch'"),
        (["nosuchcmd"], 2, "No such command 'nosuchcmd'"),
        # Values the parser accepts and advbench refuses before any work.
        (["train", "--model", "rn18-nt", "--max-train", "-5", "--out", "{tmp}/out", "--device", "cpu"], 2, "--max-train must be a positive"),
        (["train", "--model", "rn18-nt", "--set", "max_train=0", "--out", "{tmp}/out", "--device", "cpu"], 2, "--max-train must be a positive"),
        ([*KAP, "--check-n", "-5", "--db", "{tmp}/r.sqlite"], 2, "--check-n must be positive"),
        ([*KAP, "--attack", "pgd:steps=1,steps=2", "--db", "{tmp}/r.sqlite"], 2, "'steps' is given twice"),
        ([*KAP, "--norm", "l2", "--eps", "1e9", "--db", "{tmp}/r.sqlite"], 2, "exceeds 28"),
        # Models that misbehave at load time.
        ([*FILE_EVAL, "--model", "file:{tmp}/boom.py:Net", "--weights", "{tmp}/tiny.pt", "--db", "{tmp}/r.sqlite"], 2,
         "boom.py:Net failed: Net() raised ValueError: no GPU here"),
        ([*FILE_EVAL, "--model", "file:{tmp}/tiny.py:Net", "--weights", "{tmp}/code.pt", "--db", "{tmp}/r.sqlite"], 2,
         "refusing to unpickle code ("),
        # Models whose outputs cannot be evaluated: an error naming the model and its output, never an accuracy.
        *[([*FILE_EVAL, "--model", f"file:{{tmp}}/bad.py:{cls}", "--weights", "{tmp}/lin.pt", "--db", "{tmp}/r.sqlite"], 2, needle)
          for cls, needle in [("NaNs", "returns NaN or infinite outputs"), ("Seven", "returns outputs of shape (1, 7)"),
                              ("ThreeD", "returns outputs of shape (1, 10, 2)"), ("Pair", "returns a tuple, not a tensor"),
                              ("Scalar", "returns outputs of shape ()")]],
        (["eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", "{tmp}/nozoo", "--db", "{tmp}/r.sqlite"], 2,
         "nozoo (--zoo) does not exist"),
        (["eval", "--model", "kap-rn18", "--zoo", "{tmp}/otherzoo", "--db", "{tmp}/r.sqlite"], 2,
         "otherzoo (--zoo) has no fashion-mnist/ folder (it has: cifar10)"),
    ],
)
def test_bad_input_is_one_line(args: list[str], code: int, needle: str, files: Path) -> None:
    line = assert_one_line_error(advbench(*(a.replace("{tmp}", str(files)) for a in args)), code, needle)
    assert "weights_only" not in line  # never torch's advice to turn the protection off
    assert not (files / "out").exists()


def test_l2_and_l1_budgets_beyond_the_box_diameter() -> None:
    ThreatModel("l2", 28.0).check_for(784)  # sqrt(784): the diameter itself is allowed
    ThreatModel("l1", 784.0).check_for(784)
    ThreatModel("linf", 1.0).check_for(784)
    with pytest.raises(UsageError, match="L2 eps 1e\\+09 exceeds 28"):
        ThreatModel("l2", 1e9).check_for(784)
    with pytest.raises(UsageError, match="L1 eps 785 exceeds 784"):
        ThreatModel("l1", 785.0).check_for(784)
    with pytest.raises(UsageError, match="L0 eps 65 exceeds 64"):
        ThreatModel("l0", 65.0).check_for(64)


def test_edited_external_model_source_is_a_new_run(files: Path) -> None:
    db = files / "r.sqlite"
    args = [*FILE_EVAL, "--model", f"file:{files}/tiny.py:Net", "--weights", str(files / "tiny.pt"), "--db", str(db), "--json"]
    first = advbench(*args)
    assert first.returncode == 0, first.stderr
    same = advbench(*args)
    assert same.returncode == 0 and "already finished" in same.stderr
    (files / "tiny.py").write_text(TINY.replace("nn.Flatten(), ", "nn.Flatten(),  # edited\n        "))
    edited = advbench(*args)
    assert edited.returncode == 0 and "already finished" not in edited.stderr, edited.stderr
    assert json.loads(edited.stdout)["run_id"] != json.loads(first.stdout)["run_id"]
    with Store(db) as store:
        shas = {r.checkpoint_sha256 for r in store.list_runs()}
    assert len(shas) == 2


def test_zoo_model_identity_is_still_its_weights_hash(digits_zoo: Path) -> None:
    from advbench.models.card import file_sha256, load_model

    _, card = load_model("rn18-nt", "digits", digits_zoo)
    assert card.sha256 == file_sha256(digits_zoo / "digits" / card.weights)


def test_sigint_during_eval_stores_whole_batches_and_says_how_to_resume(tmp_path: Path, digits_zoo: Path) -> None:
    db = tmp_path / "int.sqlite"
    args = ["eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(digits_zoo), "--n", "200", "--device", "cpu",
            "--attack", "pgd:steps=200", "--eps", "0.02", "--batch-size", "8", "--check-n", "16", "--db", str(db)]  # slow enough to interrupt on an idle machine
    # The checked shard (the first 16 samples) is committed whole, then batches of 8.
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    # A shell's background job (e.g. CI started with `cmd &`) inherits SIGINT ignored; a user's Ctrl-C assumes the default.
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, preexec_fn=restore_sigint)
    done, deadline = 0, time.time() + 300
    while time.time() < deadline and proc.poll() is None and done < 16:
        try:
            with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
                done = conn.execute("SELECT COUNT(*) FROM clean").fetchone()[0]
            conn.close()
        except sqlite3.Error:
            done = 0
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == INTERRUPTED
    with Store(db) as store:
        (run,) = store.list_runs()
        stored = len(store.done_samples(run.run_id))
    assert run.status == "running" and 16 <= stored < 200 and stored % 8 == 0


def test_turning_the_checks_on_is_a_new_run(files: Path) -> None:
    """Checks change the evaluation, so a run without them is not the answer to a run with them."""
    db = files / "r.sqlite"
    args = ["eval", "--dataset", "digits", "--n", "8", "--attack", "fgsm", "--device", "cpu", "--model", f"file:{files}/tiny.py:Net",
            "--weights", str(files / "tiny.pt"), "--db", str(db), "--check-n", "8"]
    off = advbench(*args, "--no-checks")
    assert off.returncode == 0, off.stderr
    on = advbench(*args)
    assert on.returncode == 0 and "already finished" not in on.stderr, on.stderr
    again = advbench(*args)
    assert again.returncode == 0 and "already finished" in again.stderr
