"""Where datasets are looked up: --data-dir, $ADVBENCH_DATA, system packages, the user cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "advbench"


def search_dirs(
    name: str, data_dir: str | Path | None, system_dirs: tuple[str, ...] = ()
) -> list[Path]:
    """Candidate folders for dataset `name`, most specific first."""
    roots: list[Path] = []
    for root in (data_dir, os.environ.get("ADVBENCH_DATA")):
        if root:
            roots += [Path(root) / name, Path(root)]
    roots += [Path(d) for d in system_dirs]
    roots.append(cache_dir() / name)
    return roots
