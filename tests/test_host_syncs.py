"""Host syncs in the attack loops (issue 39, item 5), counted on the CPU by benchmarks/host_syncs.py's
hook: PGD and APGD read the device once per step (the count of samples leaving), where they read
it two to four times before; the hook counts what it claims and restores torch afterwards."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from advbench.attacks import build_attack
from advbench.core.tensors import partition
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel

REPO = Path(__file__).resolve().parents[1]


def benchmark():
    spec = importlib.util.spec_from_file_location("host_syncs", REPO / "benchmarks" / "host_syncs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_counter_counts_blocking_calls_and_restores_torch() -> None:
    hs = benchmark()
    t, mask = torch.arange(4.0), torch.tensor([True, False, True, False])
    getitem = torch.Tensor.__getitem__
    with hs.SyncCounter().active() as counter:
        bool(t.sum())
        t[mask]
        t[1:3]  # a slice is no sync
        t[torch.tensor([0, 2])]  # nor an integer index
        t.nonzero()
        t.max().item()
        torch.where(mask)
    assert dict(counter.counts) == {"__bool__": 1, "mask[]": 1, "nonzero": 1, "item": 1, "where(cond)": 1}
    assert torch.Tensor.__getitem__ is getitem


def test_pgd_and_apgd_sync_once_per_step() -> None:
    hs = benchmark()
    torch.manual_seed(0)
    model = RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), (1, 4, 4), 10)
    x = torch.rand(32, 1, 4, 4)
    y = model(x).argmax(1)  # all correct at the start
    threat = ThreatModel(Norm.LINF, 0.03)  # some samples break along the way, some never
    for spec in ("pgd:steps=20", "apgd:steps=20"):
        attack = build_attack(spec)[1]
        counter = hs.SyncCounter()
        with hs.counting_steps() as steps, counter.active():
            result = attack(model, x, y, threat, seed=0)
        assert 0 < int(result.success.sum()) < len(x), spec
        # One per step, plus a few per call (the clean pass, the final judgement, the stage split).
        assert counter.total <= steps[0] + 6, (spec, steps[0], dict(counter.counts))


def test_partition_splits_in_order_for_one_sync() -> None:
    hs = benchmark()
    mask = torch.tensor([True, False, True, False, False])
    with hs.SyncCounter().active() as counter:
        rows, keep = partition(mask)
    assert rows.tolist() == [0, 2] and keep.tolist() == [1, 3, 4] and counter.total == 1
    assert [t.tolist() for t in partition(torch.zeros(0, dtype=torch.bool))] == [[], []]
