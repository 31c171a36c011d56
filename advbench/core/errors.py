"""The project's error types. Each maps to a one-line CLI message and an exit code."""

from __future__ import annotations


class AdvbenchError(Exception):
    """Base error: the message is shown to the user as one line."""

    exit_code: int = 1


class UsageError(AdvbenchError):
    """Bad command-line input: unknown names, bad epsilons, wrong shapes."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A registry lookup for a name that does not exist."""


class DataError(AdvbenchError):
    """A dataset is missing, unreadable or malformed."""


class CheckpointError(AdvbenchError):
    """A checkpoint or model card is missing, corrupt or tampered with."""


class StoreError(AdvbenchError):
    """The result database cannot be used."""
