"""Where datasets are looked up: --data-dir, $ADVBENCH_DATA, system packages, the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from advbench.core.errors import DataError


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "advbench"


def search_dirs(
    name: str, data_dir: str | Path | None, system_dirs: tuple[str, ...] = ()
) -> list[Path]:
    """Candidate folders for dataset `name`, most specific first; a DataError (exit 2) if the
    --data-dir given is not a folder (a typo must not fall back to the cache without a word)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        state = "is a file, not a folder" if Path(data_dir).exists() else "does not exist"
        raise DataError(f"the data folder {data_dir} (--data-dir) {state}")
    roots: list[Path] = []
    for root in (data_dir, os.environ.get("ADVBENCH_DATA")):
        if root:
            roots += [Path(root) / name, Path(root)]
    roots += [Path(d) for d in system_dirs]
    roots.append(cache_dir() / name)
    return roots
