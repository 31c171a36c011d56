"""The CUDA branches, reached without a GPU (issue 39): `torch.cuda.is_available`, `device_count`,
`mem_get_info` and the memory counters mocked. Device choice (`resolve_device`, `worker_device`,
`work_class`), the batch of noisy copies chosen from free memory (`auto_noise_batch`), the
determinism policy every job runs under, the clock's sync, and a bad `cuda:N` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from advbench.certification import forward
from advbench.core import device as device_module
from advbench.core.device import deterministic, resolve_device, synchronize
from advbench.core.errors import UsageError
from advbench.engine import eval_batch, executors
from advbench.engine.executors import LocalExecutor, work_class, worker_device
from advbench.engine.spec import Runtime
from advbench.models.wrapper import RobustModel

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A machine with two CUDA devices, as far as torch.cuda's queries go (nothing runs there)."""
    state = SimpleNamespace(count=2, synced=[])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state.count)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: state.synced.append(device))
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    return state


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_cuda_when_present_and_cpu_otherwise(cuda: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert resolve_device("auto") == torch.device("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == device_module.CUBLAS_WORKSPACE  # set before cuBLAS starts
    assert resolve_device("CUDA:1") == torch.device("cuda:1") and resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_a_cuda_device_this_machine_lacks_is_a_usage_error(cuda: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"'cuda:2' requested but this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")
    cuda.count = 1
    with pytest.raises(UsageError, match="has 1 CUDA device "):
        resolve_device("cuda:5")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA is not available here"):
        resolve_device("cuda:0")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_a_bad_cuda_device_on_the_command_line_is_exit_2_in_one_line(tmp_path: Path) -> None:
    """Before the fix: torch's own error deep in the run, 'internal error', exit 1."""
    fake = "import torch; torch.cuda.is_available = lambda: True; torch.cuda.device_count = lambda: 1; from advbench.cli.app import main; main()"
    for command in (["eval", "--model", "rn18-nt", "--dataset", "digits", "--n", "2"], ["certify", "--model", "rn18-nt", "--dataset", "digits", "--n", "2"]):
        proc = subprocess.run([sys.executable, "-c", fake, *command, "--device", "cuda:3", "--db", str(tmp_path / "r.sqlite")],
                              capture_output=True, text=True, cwd=REPO, timeout=300)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "'cuda:3' requested but this machine has 1 CUDA device" in lines[0]


def test_a_ray_worker_takes_its_own_gpu(cuda: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_device("cuda:3") == torch.device("cuda")  # Ray hides every GPU but the worker's
    assert worker_device("auto") == torch.device("cuda") and worker_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("gpus, device, expected", [(2.0, "auto", "cuda"), (2.0, "cuda", "cuda"), (2.0, "cpu", "cpu"), (0.0, "auto", "cpu")])
def test_the_key_takes_the_device_class_of_the_workers(monkeypatch: pytest.MonkeyPatch, gpus: float, device: str, expected: str) -> None:
    """A Ray driver resolves its plan on the CPU; the rows come from the workers, which get a GPU
    each where the cluster has GPUs and --device is not cpu."""
    fake_ray = SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"CPU": 8.0, "GPU": gpus})
    monkeypatch.setattr(executors, "_ray", lambda: fake_ray)
    if device == "cuda" and not gpus:
        return
    runtime = Runtime(device=device, ray="local")
    assert work_class(runtime, torch.device("cpu")) == expected
    assert work_class(Runtime(device=device), torch.device("cpu")) == "cpu"  # no Ray: the plan's own device
    assert work_class(Runtime(), torch.device("cuda:1")) == "cuda"


def test_certify_over_ray_on_gpu_workers_takes_fp16_on_a_cpu_driver(digits_zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the driver checked --precision fp16 against its own CPU and refused it always."""
    from advbench.engine.certify import resolve_certify
    from advbench.engine.spec import CertifySpec

    spec = CertifySpec("rn18-nt", dataset="digits", n=4, n0=10, noise_draws=50, precision="fp16")
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        resolve_certify(spec, Runtime(zoo=digits_zoo, device="cpu"))
    monkeypatch.setattr(executors, "_ray", lambda: SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"GPU": 4.0}))
    plan = resolve_certify(spec, Runtime(zoo=digits_zoo, ray="local", tf32=True), torch.device("cpu"))
    assert plan.device == torch.device("cpu") and plan.work_device == "cuda" and plan.tf32
    assert plan.payload()["device"] == "cuda" and plan.payload()["precision"] == "fp16" and plan.payload()["tf32"] is True
    cpu_workers = resolve_certify(spec.__class__(**{**spec.__dict__, "precision": "bf16"}), Runtime(zoo=digits_zoo, ray="local", device="cpu"), torch.device("cpu"))
    assert cpu_workers.work_device == "cpu" and "device" not in cpu_workers.payload()


def tiny_model() -> RobustModel:
    torch.manual_seed(0)
    return RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), (1, 3, 4), 3)


def test_the_noise_batch_comes_from_free_memory_on_cuda(cuda: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe (a real count_votes pass, here on the CPU where the model is) is measured by the
    CUDA memory counters; half the free memory over the bytes per copy, between PROBE and the cap."""
    memory = {"now": 1000, "peak": 1000 + forward.PROBE * 4096}
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: memory["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: memory["peak"])
    probes: list[int] = []
    real = forward.count_votes

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        probes.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(forward, "count_votes", counting)
    gpu = torch.device("cuda:0")
    for free, expected in ((4096 * 2 * 3000, 3000), (4096 * 2 * 100, forward.PROBE), (1 << 40, forward.MAX_NOISE_BATCH)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, free=free: (free, 2 * free))
        assert forward.auto_noise_batch(tiny_model(), (1, 3, 4), gpu) == expected
    assert forward.auto_noise_batch(tiny_model(), (1, 3, 4), gpu, cap=500) == 500
    assert probes == [forward.PROBE] * 4 and gpu in cuda.synced
    assert forward.auto_noise_batch(tiny_model(), (1, 3, 4), torch.device("cpu")) == forward.CPU_NOISE_BATCH


def test_the_evaluation_batch_comes_from_free_memory_on_cuda(cuda: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe forward and backward pass of PROBE images (here on the CPU where the model is),
    measured by the CUDA memory counters: half the free memory over the bytes per image, between
    the CPU's 256 and the cap; the CPU keeps 256."""
    memory = {"now": 1000, "peak": 1000 + eval_batch.PROBE * 4096}
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: memory["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: memory["peak"])
    model, gpu = tiny_model(), torch.device("cuda:0")
    for free, expected in (
        (4096 * 2 * 1000, 1000),
        (4096 * 2 * 10, eval_batch.DEFAULT_BATCH),
        (1 << 40, eval_batch.MAX_EVAL_BATCH),
    ):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, free=free: (free, 2 * free))
        assert eval_batch.auto_eval_batch(model, gpu) == expected
    assert eval_batch.auto_eval_batch(model, gpu, cap=300) == 300 and gpu in cuda.synced
    assert all(p.grad is None for p in model.parameters())  # the probe leaves no parameter gradients behind
    assert eval_batch.auto_eval_batch(model, torch.device("cpu")) == eval_batch.DEFAULT_BATCH == 256


def test_the_determinism_policy_on_cuda_and_its_restore() -> None:
    flags = lambda: (  # noqa: E731
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
    )
    before = flags()
    torch.backends.cudnn.benchmark = True
    try:
        with deterministic(torch.device("cuda:1")):
            assert flags() == (False, False, True, False, True)
            assert torch.is_deterministic_algorithms_warn_only_enabled()
        with deterministic(torch.device("cuda"), tf32=True):
            assert flags()[:2] == (True, True) and flags()[2:] == (True, False, True)
        assert flags() == (*before[:3], True, before[4])
        with deterministic(torch.device("cpu")):
            assert flags() == (*before[:3], True, before[4])  # the CPU's kernels are deterministic already
    finally:
        torch.backends.cudnn.benchmark = before[3]


def test_every_job_runs_under_the_policy_of_its_plans_device() -> None:
    seen: list[tuple[bool, bool]] = []

    def job(plan: Any, shard: int) -> int:
        seen.append((torch.backends.cudnn.allow_tf32, torch.are_deterministic_algorithms_enabled()))
        return shard

    got: list[int] = []
    LocalExecutor().map(job, SimpleNamespace(device=torch.device("cuda"), tf32=False), [1, 2], got.append)
    LocalExecutor().map(job, SimpleNamespace(device=torch.device("cuda"), tf32=True), [3], got.append)
    assert got == [1, 2, 3] and seen == [(False, True), (False, True), (True, True)]
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_clock_waits_for_the_gpu_only_there(cuda: SimpleNamespace) -> None:
    synchronize(torch.device("cpu"))
    synchronize(torch.device("cuda:1"))
    assert cuda.synced == [torch.device("cuda:1")]


def test_no_cuda_refuses_cuda(no_cuda: None) -> None:
    with pytest.raises(UsageError, match="CUDA is not available"):
        resolve_device("cuda")
