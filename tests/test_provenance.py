"""What a run records about the code that made it: the commit, and whether the code differed from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from advbench.core.provenance import git_commit


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_commit_is_marked_dirty_only_when_the_package_differs(tmp_path: Path) -> None:
    package, cards = tmp_path / "pkg", tmp_path / "model_zoo"
    package.mkdir(), cards.mkdir()
    (package / "attack.py").write_text("STEPS = 20\n")
    (cards / "model.yaml").write_text("epochs: 4\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(package) == head
    (cards / "model.yaml").write_text("epochs: 8\n")  # a card is identified by its own hashes, not the commit
    assert git_commit(package) == head
    (package / "helper.py").write_text("X = 1\n")  # an untracked module can be imported: dirty
    assert git_commit(package) == f"{head}-dirty"
    (package / "helper.py").unlink()
    (package / "attack.py").write_text("STEPS = 200\n")
    assert git_commit(package) == f"{head}-dirty"


def test_no_commit_outside_a_repository(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
