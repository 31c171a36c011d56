"""Files and folders the user names, checked where they enter: one line naming the option, the
path and what is wrong with it (missing, a folder where a file is wanted, empty, unreadable, under
a file), and exit 2, before any work is done.

`input_file` for a file advbench reads, `output_file` and `output_folder` for what it writes.
Torch-free, so the commands that only read results can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from advbench.core.errors import AdvbenchError, UsageError


def input_file(
    path: Path | str, what: str, error: type[AdvbenchError] = UsageError, empty_ok: bool = False
) -> Path:
    """`path` as a Path if it is a readable, non-empty file; else `error` naming `what` and why."""
    path = Path(path).expanduser()
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file")
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from None
    if not first and not empty_ok:
        raise error(f"{what} {path} is empty")
    return path


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of `path` (or `path` itself) that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")  # a relative path whose first part does not exist: it goes into the cwd


def _writable_below(path: Path, option: str) -> None:
    """`path` can be created: its nearest existing ancestor is a writable folder."""
    ancestor = _existing_ancestor(path.parent if path.parent != path else path)
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path} cannot be written: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path} cannot be written: folder {ancestor} is not writable")


def output_file(path: Path | str, option: str) -> Path:
    """`path` as a Path if a file can be written there (not a folder, not under a file)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path} cannot be written: the file is read-only")
    _writable_below(path, option)
    return path


def output_folder(path: Path | str, option: str) -> Path:
    """`path` as a Path if it is a folder, or one can be made there (not a file, not under a file)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path} cannot be written: the folder is not writable")
        return path
    _writable_below(path, option)
    return path
