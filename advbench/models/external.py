"""Bring your own model: `--model file:PATH.py:NAME --weights W`.

NAME is a class or factory in the Python file PATH.py, called without arguments; W is its
state dict, read with `torch.load(weights_only=True)` (never unpickling arbitrary objects) or
from safetensors. The model must take [0,1] images of the dataset's shape (normalization
inside it, as in AutoAttack's example ResNet18) and return logits. The run records the
weights' sha256 like a zoo card's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from advbench.core.errors import CheckpointError, UsageError

PREFIX = "file:"


def is_external(name: str) -> bool:
    return name.startswith(PREFIX)


def build_external(spec: str) -> nn.Module:
    """Import PATH.py and call NAME() from `file:PATH.py:NAME`."""
    path_text, sep, attr = spec[len(PREFIX) :].rpartition(":")
    if not sep or not path_text or not attr:
        raise UsageError(f"write an external model as file:PATH.py:NAME, got {spec!r}")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UsageError(f"external model file {path} does not exist")
    module_name = f"advbench_external_{abs(hash(path.resolve()))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise UsageError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: report it in one line
        raise UsageError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{path} has no class or function {attr!r}")
    net = factory()
    if not isinstance(net, nn.Module):
        raise UsageError(f"{path}:{attr}() returned {type(net).__name__}, not a torch.nn.Module")
    return net


def load_state(weights: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or from a torch file loaded with weights_only=True."""
    if not weights.is_file():
        raise CheckpointError(f"weights file {weights} does not exist")
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights))
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or unsafe files: one line, no traceback
        raise CheckpointError(f"cannot read weights {weights} safely: {str(exc).splitlines()[0][:200]}") from None
    for key in ("state_dict", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}
