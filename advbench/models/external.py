"""Bring your own model: `--model file:PATH.py:NAME --weights W`.

NAME is a class or factory in the Python file PATH.py, called without arguments; W is its
state dict, read with `torch.load(weights_only=True)` (never unpickling arbitrary objects) or
from safetensors. The model must take [0,1] images of the dataset's shape (normalization
inside it, as in AutoAttack's example ResNet18) and return logits. The run records one sha256
of the weights and of PATH.py's source together (`external_sha256`), so editing either is a new run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from advbench.core.errors import CheckpointError, UsageError
from advbench.core.paths import input_file

PREFIX = "file:"


def is_external(name: str) -> bool:
    return name.startswith(PREFIX)


def external_source(spec: str) -> tuple[Path, str]:
    """(PATH.py, NAME) of `file:PATH.py:NAME`; the file must exist."""
    path_text, sep, attr = spec[len(PREFIX) :].rpartition(":")
    if not sep or not path_text or not attr:
        raise UsageError(f"write an external model as file:PATH.py:NAME, got {spec!r}")
    return input_file(path_text, "external model file"), attr


def external_sha256(spec: str, weights_sha256: str) -> str:
    """The identity of an external model: its weights' sha256 and its source file's bytes, so a
    run of an edited model is a new run (the source's own imports are not followed)."""
    path, attr = external_source(spec)
    digest = hashlib.sha256(b"advbench external model\0")
    digest.update(f"{attr}\0{weights_sha256}\0".encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


def build_external(spec: str) -> nn.Module:
    """Import PATH.py and call NAME() from `file:PATH.py:NAME`."""
    path, attr = external_source(spec)
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
    try:
        net = factory()
    except Exception as exc:  # noqa: BLE001 - the user's constructor: report it in one line
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UsageError(
            f"building external model {path}:{attr} failed: {attr}() raised {type(exc).__name__}"
            + (f": {detail}" if detail else "")
        ) from None
    if not isinstance(net, nn.Module):
        raise UsageError(f"{path}:{attr}() returned {type(net).__name__}, not a torch.nn.Module")
    return net


def load_state(weights: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or from a torch file loaded with weights_only=True; a
    CheckpointError (exit 2) naming the file and what is wrong with it otherwise."""
    weights = input_file(weights, "weights file", CheckpointError)
    with open(weights, "rb") as handle:
        head = handle.read(16)
    try:
        if weights.suffix == ".safetensors" or _looks_like_safetensors(head):
            from safetensors.torch import load_file

            return load_file(str(weights))
        with (
            warnings.catch_warnings()
        ):  # e.g. "Detected pickle protocol 4": the error below says it in one line
            warnings.simplefilter("ignore")
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        pickled = head.startswith((b"PK", b"\x80")) or "Unsupported global" in str(exc)
        message = (
            _unpickle_refusal(weights, str(exc)) if pickled else _unreadable(weights, head, exc)
        )
        raise CheckpointError(message) from None
    except Exception as exc:  # noqa: BLE001 - corrupt or unsafe files: one line, no traceback
        raise CheckpointError(_unreadable(weights, head, exc)) from None
    for key in ("state_dict", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(
            f"weights file {weights} holds {type(state).__name__}, not a state dict; save one with torch.save(model.state_dict(), PATH)"
        )
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def _looks_like_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then the JSON header."""
    return len(head) > 8 and head[8:9] == b"{"


def _unreadable(weights: Path, head: bytes, exc: Exception) -> str:
    """One line for a weights file neither torch nor safetensors can read."""
    detail = _first_line(exc)
    if weights.suffix == ".safetensors" or _looks_like_safetensors(head):
        return f"weights file {weights} is not valid safetensors (truncated or corrupt?): {detail}"
    if head.startswith(b"PK"):  # torch.save writes a zip archive
        if not zipfile.is_zipfile(weights):
            return f"weights file {weights} is truncated or corrupt: its zip archive is incomplete ({detail})"
        return f"weights file {weights} is a zip archive but not a torch checkpoint (torch.save)"
    return f"weights file {weights} is neither a torch checkpoint (torch.save) nor safetensors"


def _first_line(exc: Exception) -> str:
    """The exception's first line without torch's advice after it ("This is an internal ...")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text.split(". ")[0].removesuffix(".")[:200]


def _unpickle_refusal(weights: Path, message: str) -> str:
    """Our one line for torch's weights_only refusal, whose text advises turning the protection off."""
    code = re.search(r"Unsupported global: GLOBAL (\S+?)(?: was|$)", message, re.MULTILINE)
    if code:
        return f"cannot read weights {weights} safely: refusing to unpickle code ({code.group(1)}) from {weights}; save a state dict of tensors or use safetensors"
    after = message.partition("WeightsUnpickler error:")[2]
    detail = next(
        (
            line.strip()
            for line in re.sub(r"\x1b\[[0-9;]*m", "", after).splitlines()
            if line.strip()
        ),
        "",
    )
    why = f" ({detail[:120]})" if detail else ""
    return f"cannot read weights {weights} safely: it is not a state dict of tensors{why}; save one with torch.save(model.state_dict(), PATH) or use safetensors"
