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
    """A dataset is missing, unreadable or malformed."""


class CheckpointError(AdvbenchError):
    """A checkpoint or model card is missing, corrupt or tampered with."""


class StoreError(AdvbenchError):
    """The result database cannot be used."""


def is_positive_finite(value: float) -> bool:
    return value > 0 and math.isfinite(value)


def require_positive(owner: str, **values: float) -> None:
    """UsageError naming `owner` and the key unless every value is a finite number > 0."""
    for key, value in values.items():
        if not is_positive_finite(value):
            raise UsageError(f"{owner} {key} must be a positive number, got {value}")
