"""The project's error types. Each maps to a one-line CLI message and an exit code."""

from __future__ import annotations

import math


class AdvbenchError(Exception):
    """Base error: the message is shown to the user as one line."""

    exit_code: int = 1


class UsageError(AdvbenchError):
    """Bad command-line input: unknown names, bad epsilons, wrong shapes."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A registry lookup for a name that does not exist."""


class ModelOutputError(UsageError):
    """A model whose outputs cannot be evaluated (NaN/inf, wrong shape): an error, never a result."""


class DataError(AdvbenchError):
    """A dataset the user named or pointed to is missing, unreadable or malformed: bad input, so
    exit 2 (as every file and folder the user gives)."""

    exit_code = 2


class DownloadError(DataError):
    """A requested download failed (offline, wrong checksum): not the user's input, so exit 1."""

    exit_code = 1


class CheckpointError(AdvbenchError):
    """A checkpoint, weights file or model card is missing, corrupt, tampered with or does not fit
    its model: a file the user named (--model, --weights, --zoo), so exit 2."""

    exit_code = 2


class ZooFolderError(CheckpointError, UsageError):
    """A --zoo folder that does not exist or holds no folder for the dataset: a typo, never a
    silent fall-back to the shipped checkpoints."""

    exit_code = 2


class StoreError(AdvbenchError):
    """The result database cannot be used."""


class UnusableDatabaseError(StoreError, UsageError):
    """A --db advbench must not write to: read-only, not a database, another program's or another
    schema's. Bad input, so exit 2; the file is left as it was."""

    exit_code = 2


class UnknownRunError(StoreError, UsageError):
    """A run id (or prefix) that names no run, or more than one, in the database."""

    exit_code = 2


def is_positive_finite(value: float) -> bool:
    return value > 0 and math.isfinite(value)


def require_positive(owner: str, **values: float) -> None:
    """UsageError naming `owner` and the key unless every value is a finite number > 0."""
    for key, value in values.items():
        if not is_positive_finite(value):
            raise UsageError(f"{owner} {key} must be a positive number, got {value}")
