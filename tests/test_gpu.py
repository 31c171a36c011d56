"""On a CUDA GPU (marker `gpu`; skipped with a reason elsewhere; scripts/gpu_check.sh runs them):
small end-to-end evaluations and certifications on CUDA against the same runs on the CPU, within
the tolerances docs/gpu.md states, and what must be exact on one device class.

- Certification: the noise is the same on both (counter-based); the votes differ only where a
  noisy copy's logits tie within float rounding, so each image's count of its top class may move
  by a few of its draws (at most max(2, 1 %) of them here) and the top class stays.
- On CUDA, another --batch-size (and so another kernel per shape) gives the same top classes and
  counts within 1 draw.
- Evaluation: clean predictions agree but for a tie; robust accuracy within 3 of 64 samples
  (an attack's path can fork on one rounding).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.engine.certify import run_certify
from advbench.engine.spec import CertifySpec
from advbench.store import Store

pytestmark = pytest.mark.gpu
CERT = CertifySpec("rn18-nt", dataset="digits", sigmas=(0.25,), n0=50, noise_draws=2000, n=16, alpha=0.01)
EVAL = EvalSpec(model="rn18-nt", dataset="digits", attacks=("fgsm", "pgd:steps=10"), eps=(0.05, 0.1), n=64, checks=False)


def certificates(db: Path, run_id: str) -> dict[int, dict[str, Any]]:
    with Store(db) as store:
        return {r["sample_idx"]: r for r in store.certificate_rows(run_id)}


def test_certificates_on_cuda_match_the_cpu_within_rounding(digits_zoo: Path, tmp_path: Path) -> None:
    cpu = run_certify(CERT, Runtime(db=tmp_path / "cpu.sqlite", zoo=digits_zoo, device="cpu"))
    gpu = run_certify(CERT, Runtime(db=tmp_path / "gpu.sqlite", zoo=digits_zoo, device="cuda"))
    small = run_certify(CERT, Runtime(db=tmp_path / "small.sqlite", zoo=digits_zoo, device="cuda", batch_size=100))
    a, b, c = certificates(tmp_path / "cpu.sqlite", cpu.run_id), certificates(tmp_path / "gpu.sqlite", gpu.run_id), certificates(tmp_path / "small.sqlite", small.run_id)
    assert a.keys() == b.keys() == c.keys() and len(a) == 16
    tolerance = max(2, CERT.noise_draws // 100)
    for i in a:
        assert a[i]["prediction"] == b[i]["prediction"] and abs(a[i]["count_top"] - b[i]["count_top"]) <= tolerance, (i, a[i], b[i])
        assert b[i]["prediction"] == c[i]["prediction"] and abs(b[i]["count_top"] - c[i]["count_top"]) <= 1, (i, b[i], c[i])
    print("cpu vs cuda count_top differences:", sorted(abs(a[i]["count_top"] - b[i]["count_top"]) for i in a))
    print("cuda auto batch vs 100:", sorted(abs(b[i]["count_top"] - c[i]["count_top"]) for i in a))


def test_the_key_keeps_cuda_and_cpu_runs_apart(digits_zoo: Path, tmp_path: Path) -> None:
    db = tmp_path / "both.sqlite"
    cpu = run_certify(CERT, Runtime(db=db, zoo=digits_zoo, device="cpu"))
    gpu = run_certify(CERT, Runtime(db=db, zoo=digits_zoo, device="cuda"))
    tf32 = run_certify(CERT, Runtime(db=db, zoo=digits_zoo, device="cuda", tf32=True))
    assert len({cpu.run_id, gpu.run_id, tf32.run_id}) == 3  # none returned another's results as "finished"
    with Store(db) as store:
        keys = {r.run_id: r.config["run_key"] for r in store.list_runs()}
    assert "device" not in keys[cpu.run_id] and keys[gpu.run_id]["device"] == "cuda" and keys[tf32.run_id]["tf32"] is True


def test_fp16_certifies_on_cuda(digits_zoo: Path, tmp_path: Path) -> None:
    spec = dataclasses.replace(CERT, precision="fp16", noise_draws=500)
    summary = run_certify(spec, Runtime(db=tmp_path / "fp16.sqlite", zoo=digits_zoo, device="cuda"))
    assert summary.n == 16


def test_an_evaluation_on_cuda_matches_the_cpu_within_the_tolerance(digits_zoo: Path, tmp_path: Path) -> None:
    cpu = run_eval(EVAL, Runtime(db=tmp_path / "cpu.sqlite", zoo=digits_zoo, device="cpu"))
    gpu = run_eval(EVAL, Runtime(db=tmp_path / "gpu.sqlite", zoo=digits_zoo, device="cuda"))
    with Store(tmp_path / "cpu.sqlite") as a, Store(tmp_path / "gpu.sqlite") as b:
        clean_a, clean_b = a.clean_rows(cpu.summary.run_id), b.clean_rows(gpu.summary.run_id)
    assert len(clean_a) == len(clean_b) == 64
    assert sum(x != y for x, y in zip(clean_a, clean_b)) <= 1
    for e_cpu, e_gpu in zip(cpu.summary.per_eps, gpu.summary.per_eps):
        assert abs(e_cpu.worst_case - e_gpu.worst_case) <= 3 / 64, (e_cpu, e_gpu)


def test_a_deterministic_model_passes_the_determinism_probe_on_cuda(digits_model: Any, digits_data: Any) -> None:
    """Two batchings on the GPU, with TF32 off (the policy) and on (`--tf32`)."""
    from advbench.attacks.model_checks import determinism_check
    from advbench.core.device import deterministic

    model = digits_model.to("cuda")
    x = digits_data[0][:100].to("cuda")
    try:
        for tf32 in (False, True):
            with deterministic(torch.device("cuda"), tf32):
                assert determinism_check(model, x).passed
    finally:
        digits_model.to("cpu")  # a session fixture: the other tests want it on the CPU


def test_a_device_this_machine_lacks_is_a_usage_error() -> None:
    from advbench.core.device import resolve_device
    from advbench.core.errors import UsageError

    with pytest.raises(UsageError, match=f"has {torch.cuda.device_count()} CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
