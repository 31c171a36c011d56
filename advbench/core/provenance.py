"""What a stored run records about the software that produced it."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "numpy", "foolbox", "pyautoattack", "safetensors", "scikit-learn")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git(where: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(package_dir: Path | None = None) -> str | None:
    """The commit the package runs from, with "-dirty" appended when the package's files differ
    from it (untracked modules included): a run made from uncommitted code must not look
    re-makeable from its commit. Only the package counts (checkpoints and cards are identified
    by their own sha256)."""
    where = package_dir or Path(__file__).resolve().parents[1]
    head = _git(where, "rev-parse", "HEAD")
    if not head:
        return None
    changed = _git(where, "status", "--porcelain", "--", ".")
    return f"{head}-dirty" if changed else head
