"""Host syncs per attack step: how often an attack's inner loop waits for the device.

On a GPU every `.item()`, `bool(tensor)`, `.tolist()`, `.cpu()` and every operation whose output
size depends on the data (`nonzero`, boolean-mask indexing, `unique`) stalls the host until the
device has finished. On CPU nothing stalls, but the same calls happen, so they can be counted
here with a hook that wraps those entry points (`SyncCounter`). A "step" is one batched gradient
computation (a call of `losses.value_and_grad`, whatever its EOT draws) or one Square query:
syncs per step is the count over the whole attack call (final vote and bookkeeping included)
divided by those steps.

Each case runs twice: under the CPU schedule (finished rows leave every step; a sync is free
here) and under the CUDA schedule (`core.device.steps_between_syncs` patched to return
`ASYNC_STEPS_BETWEEN_SYNCS`: finished rows ride along masked and leave every few steps). The
second run's results must equal the first's bit for bit.

Cases: PGD-20, APGD-CE-50, `auto` and Square (300 queries) on madry-cnn-at (the first 64
Fashion-MNIST test images, Linf 0.1), and PGD-5 with 2 EOT draws on the random pni-w (16 images).
`--compare REV` runs the same cases on the code of git revision REV (a temporary worktree) in the
same invocation and prints both. Results (x_adv, success, steps) are compared too: they must be
equal.
Run: python benchmarks/host_syncs.py [--compare REV] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]

# Tensor methods that block until the device is done (their result lives on the host).
BLOCKING_METHODS = (
    "item",
    "tolist",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "cpu",
    "numpy",
)
# Operations whose output shape depends on the data: the host must read a count first.
DATA_DEPENDENT = ("nonzero", "unique", "unique_consecutive", "masked_select")


def _is_mask(index: object) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class SyncCounter:
    """Counts calls that would sync a CUDA device, by name, while active (outermost calls only)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._depth = 0

    def _wrap(
        self, name: str, fn: Callable[..., Any], counts: Callable[..., bool] | None = None
    ) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0 and (counts is None or counts(*args, **kwargs)):
                self.counts[name] += 1
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1

        return wrapped

    @contextlib.contextmanager
    def active(self) -> Iterator[SyncCounter]:
        saved: list[tuple[object, str, object]] = []

        def patch(
            owner: object, attr: str, label: str, counts: Callable[..., bool] | None = None
        ) -> None:
            original = getattr(owner, attr)
            saved.append((owner, attr, original))
            setattr(owner, attr, self._wrap(label, original, counts))

        for name in BLOCKING_METHODS:
            patch(torch.Tensor, name, name)
        for name in DATA_DEPENDENT:
            patch(torch.Tensor, name, name)
            patch(torch, name, name)
        patch(torch.Tensor, "__getitem__", "mask[]", lambda _t, index: _is_mask(index))
        patch(torch.Tensor, "__setitem__", "mask[]=", lambda _t, index, _v: _is_mask(index))
        # torch.where(cond) with one argument is nonzero in disguise.
        patch(torch, "where", "where(cond)", lambda *a, **k: len(a) + len(k) == 1)
        try:
            yield self
        finally:
            for owner, attr, original in reversed(saved):
                setattr(owner, attr, original)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@contextlib.contextmanager
def counting_steps() -> Iterator[list[int]]:
    """Counts batched steps: calls of `value_and_grad` (wherever imported) and Square's queries
    (calls of its `_propose`, one per query of the still-running rows)."""
    import advbench.attacks.apgd as apgd
    import advbench.attacks.blackbox as blackbox
    import advbench.attacks.losses as losses

    calls = [0]
    original = losses.value_and_grad
    propose = blackbox.Square._propose

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    def counted_query(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return propose(*args, **kwargs)

    owners = [m for m in (losses, apgd) if getattr(m, "value_and_grad", None) is original]
    for m in owners:
        m.value_and_grad = counted  # type: ignore[attr-defined]
    blackbox.Square._propose = counted_query  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        for m in owners:
            m.value_and_grad = original  # type: ignore[attr-defined]
        blackbox.Square._propose = propose  # type: ignore[method-assign]


@contextlib.contextmanager
def async_schedule() -> Iterator[bool]:
    """The attack loops' CUDA schedule on this CPU: finished rows dropped every
    `ASYNC_STEPS_BETWEEN_SYNCS` steps instead of every step. Yields False (and changes nothing)
    on code that predates the schedule."""
    import advbench.core.device as device_policy

    original = getattr(device_policy, "steps_between_syncs", None)
    if original is None:
        yield False
        return
    device_policy.steps_between_syncs = lambda device: device_policy.ASYNC_STEPS_BETWEEN_SYNCS  # type: ignore[attr-defined]
    try:
        yield True
    finally:
        device_policy.steps_between_syncs = original  # type: ignore[attr-defined]


CASES = (
    # (label, model, images, attack spec, EOT draws or None for the default view)
    ("PGD-20", "madry-cnn-at", 64, "pgd:steps=20", None),
    ("APGD-CE-50", "madry-cnn-at", 64, "apgd:steps=50", None),
    ("auto", "madry-cnn-at", 64, "auto", None),
    ("Square-300", "madry-cnn-at", 64, "square:n_queries=300", None),
    ("PGD-5, EOT 2 (random model)", "pni-w", 16, "pgd:steps=5", 2),
)


def digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def measure() -> list[dict[str, Any]]:
    """Every case on the advbench importable here (this tree, or a worktree via PYTHONPATH)."""
    import advbench
    from advbench.attacks import build_attack
    from advbench.core.threat import Norm, ThreatModel
    from advbench.data import load_dataset
    from advbench.models.card import load_model

    torch.set_num_threads(1)
    rows = []
    for label, name, n, spec, eot in CASES:
        model, _ = load_model(name, "fashion-mnist")
        model.eval()
        model.reseed(0)
        data = load_dataset("fashion-mnist", "test", indices=torch.arange(n))
        x, y, idx = data.images, data.labels, torch.arange(n)
        attack = build_attack(spec)[1]
        view = attack.view(model, eot_draws=eot)
        counter = SyncCounter()
        with counting_steps() as steps, counter.active():
            result = attack(view, x, y, ThreatModel(Norm.LINF, 0.1), idx, seed=0)
        row = {
            "case": label,
            "syncs": counter.total,
            "steps": steps[0],
            "per_step": round(counter.total / max(steps[0], 1), 2),
            "by_call": dict(counter.counts.most_common()),
            "robust": int((~result.success).sum()),
            "result": digest(result.x_adv, result.success, result.steps),
            "advbench": str(Path(advbench.__file__).resolve().parents[1]),
        }
        counter = SyncCounter()
        with async_schedule() as scheduled, counting_steps() as steps, counter.active():
            if scheduled:
                model.reseed(0)
                result = attack(view, x, y, ThreatModel(Norm.LINF, 0.1), idx, seed=0)
        if scheduled:
            row["async"] = {
                "syncs": counter.total,
                "steps": steps[0],
                "per_step": round(counter.total / max(steps[0], 1), 2),
                "by_call": dict(counter.counts.most_common()),
                "result_equal": digest(result.x_adv, result.success, result.steps) == row["result"],
            }
        rows.append(row)
    return rows


def measure_at(rev: str) -> list[dict[str, Any]]:
    """`measure` on the code of `rev`, in a temporary worktree, in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "ADVBENCH_ZOO": str(REPO / "model_zoo")}
            out = subprocess.run(
                [sys.executable, __file__, "--measure-only"],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False
            )
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare", metavar="REV", help="also measure git revision REV (e.g. HEAD~1)"
    )
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure()))
        return
    now = measure()
    before = measure_at(args.compare) if args.compare else None
    for i, row in enumerate(now):
        line = f"{row['case']:32s} steps {row['steps']:4d}  syncs {row['syncs']:5d}  per step {row['per_step']:6.2f}"
        if before is not None:
            old = before[i]
            same = "equal" if old["result"] == row["result"] else "DIFFERENT"
            line += f"  | {args.compare}: syncs {old['syncs']:5d}, per step {old['per_step']:6.2f}  results {same}"
        print(line)
        print(f"{'':32s} {row['by_call']}")
        if "async" in row:
            a = row["async"]
            same = "equal" if a["result_equal"] else "DIFFERENT"
            print(
                f"{'  CUDA schedule':32s} steps {a['steps']:4d}  syncs {a['syncs']:5d}  per step {a['per_step']:6.2f}  results {same}  {a['by_call']}"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"now": now, "before": before, "compare": args.compare}, indent=1)
        )


if __name__ == "__main__":
    main()
