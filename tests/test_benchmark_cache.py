"""benchmarks/certify_efficiency.py's cache of fixed-N certificates (issue 39, item 5): a GPU run
never reads CPU certificates, and no run reads the torch.Generator-noise entries stored before the
counter-based noise."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def benchmark():
    spec = importlib.util.spec_from_file_location("certify_efficiency", REPO / "benchmarks" / "certify_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixed_n_cache_is_keyed_by_device_class_and_noise() -> None:
    key = benchmark().fixed_key
    cpu = key("rn18-nt-noise", "3fe4046307025b5f" + "0" * 48, 0.25, 1917, 100_000, torch.device("cpu"))
    cuda = key("rn18-nt-noise", "3fe4046307025b5f" + "0" * 48, 0.25, 1917, 100_000, torch.device("cuda:1"))
    assert cpu != cuda and cuda == key("rn18-nt-noise", "3fe4046307025b5f" + "0" * 48, 0.25, 1917, 100_000, torch.device("cuda:0"))
    assert cpu.endswith("/noise=counter/cpu") and cuda.endswith("/noise=counter/cuda")
    stored = REPO / "docs" / "runs" / "certify-efficiency-fixed.json"
    if stored.exists():
        old = json.loads(stored.read_text())
        assert "rn18-nt-noise/3fe4046307025b5f/0.25/1917/100000/1000" in old and cpu not in old
