"""Partial adversarial training's pieces that the loop needs: the stage code and the frozen part.

A code like A1N2 names how the earlier layers (first pair) and the latter layers (second pair)
are trained: A adversarially, N naturally; 1 in the first stage (then frozen), 2 re-initialized
and trained in the second stage. The cutoff is the name of the last module of the earlier part
(as in `named_modules()`). Running both stages is advbench.train.partial, above the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from advbench.core.errors import UsageError

CODE = re.compile(r"^([AN])([12])([AN])([12])$")
METHOD = {"A": "pgd-at", "N": "normal"}  # the recipe of each letter


def parse_code(code: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """'A1N2' -> (('A', 1), ('N', 2)); the two parts must be in different stages."""
    m = CODE.match(code.upper())
    if not m or m.group(2) == m.group(4):
        raise UsageError(
            f"--partial is one of A1N2, N1A2, A2N1, N2A1 (earlier layers first), not {code!r}"
        )
    return (m.group(1), int(m.group(2))), (m.group(3), int(m.group(4)))


def split_modules(net: nn.Module, cutoff: str) -> tuple[list[nn.Module], list[nn.Module]]:
    """Leaf modules with parameters or buffers, in forward-definition order, split after `cutoff`."""
    names = [name for name, _ in net.named_modules() if name]
    if cutoff not in names:
        close = [n for n in names if cutoff in n][:5]
        raise UsageError(
            f"--cutoff {cutoff!r} is not a module of this model{'; close: ' + ', '.join(close) if close else ''}"
        )
    cut_module = dict(net.named_modules())[cutoff]
    inside_cut = {id(m) for m in cut_module.modules()}
    early: list[nn.Module] = []
    late: list[nn.Module] = []
    seen_cut = False
    for name, module in net.named_modules():
        if not name or list(module.children()):
            continue  # containers: their leaves are visited on their own
        if not (list(module.parameters(recurse=False)) or list(module.buffers(recurse=False))):
            continue
        if id(module) in inside_cut:
            early.append(module)
            seen_cut = True
        elif seen_cut:
            late.append(module)
        else:
            early.append(module)
    return early, late


def freeze_and_reset(net: nn.Module, cutoff: str, frozen: str) -> Callable[[], None]:
    """Freeze one side ('early' or 'late'), re-initialize the other; returns the hook that puts
    the frozen side back into eval mode after every `net.train()`."""
    early, late = split_modules(net, cutoff)
    keep, reset = (early, late) if frozen == "early" else (late, early)
    for module in keep:
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
    for module in reset:
        for method in (
            "reset_parameters",
            "reset_running_stats",
        ):  # layers with weights; norms' statistics
            reset_fn = getattr(module, method, None)
            if callable(reset_fn):
                reset_fn()

    def freeze_statistics() -> None:
        for module in keep:
            module.eval()

    return freeze_statistics
