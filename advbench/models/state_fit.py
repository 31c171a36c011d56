"""Loading a state dict into a network, with one line that says what does not fit.

torch's own error starts with "Error(s) in loading state_dict for ResNet:" and puts the cause on
the lines after it (size mismatches, missing and unexpected keys, lists of hundreds of names);
`load_fitting` keeps the cause, on one bounded line, in a CheckpointError (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from advbench.core.errors import CheckpointError

_SIZE = re.compile(r"torch\.Size\(\[([^\]]*)\]\)")
_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape \((.*)\) from checkpoint, "
    r"the shape in current model is \((.*)\)"
)
_KEYS = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)")
MAX_KEYS = 3  # key names quoted per kind; the rest are counted
MAX_CAUSES = 2  # causes quoted (a width mismatch is one per layer); the rest are counted


def load_fitting(net: nn.Module, state: Mapping[str, object], what: str) -> None:
    """`net.load_state_dict(state, strict=True)`; a CheckpointError "`what`: CAUSE" (e.g. what =
    "weights file W does not fit MODEL") if the keys or shapes differ or a value is no tensor."""
    bad = next(((k, v) for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{what}: {bad[0]!r} holds {type(bad[1]).__name__}, not a tensor")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{what}: {misfit(str(exc))}") from None


def misfit(message: str) -> str:
    """torch's load_state_dict error as one line: its causes, key lists cut to a few names."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith("Error(s) in loading")] or lines[:1]
    parts = [
        _short(piece.strip())
        for cause in causes
        for piece in re.split(r"(?<=\.)\s+(?=(?:Missing|Unexpected) key)", cause)
        if piece.strip()
    ]
    more = f" (and {len(parts) - MAX_CAUSES} more)" if len(parts) > MAX_CAUSES else ""
    return "; ".join(parts[:MAX_CAUSES])[:600] + more


def _short(cause: str) -> str:
    cause = _SIZE.sub(lambda m: f"({m.group(1)})", cause).removesuffix(".")
    keys = _KEYS.match(cause)
    if keys:
        names = re.findall(r'"([^"]*)"', keys.group(2))
        more = f" and {len(names) - MAX_KEYS} more" if len(names) > MAX_KEYS else ""
        return f"{keys.group(1).lower()} key(s) {', '.join(names[:MAX_KEYS])}{more} ({len(names)} in all)"
    size = _MISMATCH.match(cause)
    if size:
        name, file, model = size.groups()
        return f"{name} has shape ({file}) in the file, ({model}) in the model"
    return cause
