"""Shard evaluations and certifications over Ray tasks: processes, GPUs, machines.

Ray schedules, places and retries; advbench only cuts the work into shards. The driver (the
process that runs `advbench ... --ray ADDRESS`) does everything the single-process engine does
before and after the loop -- validation, finding or creating the run, resume bookkeeping,
summaries -- and stays the only writer to SQLite. Each shard is one Ray task that loads the
model itself (its checkpoint hash must equal the driver's), loads its samples, runs exactly
the code the single-process loop runs on them and returns the rows; the driver commits each
shard the moment it arrives, so a crash loses only the shards in flight and the same command
resumes.

Shards are the single-process batches (`--batch-size` samples of the todo list, in order), and
every random draw depends on (seed, sample index) only, so a sharded run stores the same
per-sample rows as an unsharded one. Ray is optional: `pip install 'advbench[ray]'`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from advbench.core.device import resolve_device
from advbench.core.errors import AdvbenchError, CheckpointError, UsageError
from advbench.store import Store

RAY_MISSING = "Ray is not installed: pip install 'advbench[ray]'"
MAX_RETRIES = 3  # a task whose worker or node dies is re-run this many times
CERTIFY_SHARD = 8  # samples per certification task (each is n0 + n forward passes per sigma)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def connect(address: str) -> None:
    """Join (or start) the Ray instance named by `address`; a no-op when this process already has one.

    `local` starts a private instance on this machine with all its cores; `auto` joins the
    cluster a `ray start` on this machine belongs to; anything else is a cluster address
    (HOST:PORT, or ray://HOST:10001 for Ray Client).
    """
    ray = _ray()
    if ray.is_initialized():
        return
    address = address.strip()
    if not address:
        raise UsageError("--ray needs an address: local, auto, HOST:PORT or ray://HOST:PORT")
    _probe(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}  # worker logs: /tmp/ray/session_latest/logs
    try:
        if address == "local":
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet)  # never an existing one
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot connect to Ray at {address!r}: {first}") from None


def require(address: str, device: str) -> None:
    """Fail fast, before anything heavy: Ray importable, `device` a name workers can use, the cluster reachable.

    CUDA is not checked here: the driver may have no GPU while the cluster has.
    """
    _ray()
    if not device.lower().startswith("cuda"):
        resolve_device(device)
    connect(address)
    _task_options(_ray(), device)  # --device cuda on a cluster without GPUs fails here, before a run is created


def _probe(address: str) -> None:
    """A clear error within seconds when nothing listens at a cluster address (ray.init would retry for minutes)."""
    target = address.removeprefix("ray://")
    if address == "local":
        return
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die
        except ImportError:  # Ray moved it: let ray.init find the cluster
            return
        try:
            target = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError:
            raise UsageError("--ray auto: no running Ray cluster found on this machine; start one with `ray start --head`") from None
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address!r}: give local, auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(f"--ray {address}: no Ray cluster answers at {target} ({exc.strerror or exc}); is `ray start --head` running there?") from None


def _worker_device(name: str) -> torch.device:
    # Ray hides all GPUs but the task's own, so `cuda:N` from the driver means the task's GPU.
    return torch.device("cpu") if name.lower() == "cpu" else resolve_device("auto")


def _portable(config: Any) -> Any:
    """The config a worker needs: folders made absolute, $ADVBENCH_ZOO made explicit (nodes share paths)."""
    zoo = config.zoo or os.environ.get("ADVBENCH_ZOO")
    return replace(
        config,
        zoo=str(Path(zoo).resolve()) if zoo else None,
        data_dir=str(Path(config.data_dir).resolve()) if config.data_dir else None,
    )


def _same_checkpoint(sha256: str, expected: str, name: str) -> None:
    if sha256 != expected:
        raise CheckpointError(
            f"a Ray worker found a different checkpoint for {name!r} (sha256 {sha256[:12]}, driver {expected[:12]}); every node needs the same model zoo"
        )


def _task_options(ray: Any, device: str) -> dict[str, Any]:
    """One GPU per task where the cluster has GPUs (and --device is not cpu), else one CPU."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if device.lower().startswith("cuda") and not gpus:
        raise UsageError(f"device {device!r} requested but the Ray cluster has no GPUs; use --device auto or cpu")
    resource = {"num_gpus": 1} if gpus and device.lower() != "cpu" else {"num_cpus": 1}
    return {**resource, "max_retries": MAX_RETRIES}


def _get(ray: Any, ref: Any) -> Any:
    """A task's result; an advbench error raised in a worker comes back as itself (one-line CLI message)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, AdvbenchError):
            raise cause from None
        raise


def _run_tasks(fn: Callable[..., Any], jobs: list[tuple[Any, ...]], device: str, on_result: Callable[[Any], None], extra: list[Any] | None = None) -> list[Any]:
    """Submit `fn(*job)` per job; hand each result to `on_result` as soon as it finishes.

    `extra` are already submitted refs to wait for too; their results are returned in order.
    """
    ray = _ray()
    remote = ray.remote(fn).options(**_task_options(ray, device))
    pending = {remote.remote(*job): None for job in jobs}
    extra = extra or []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                del pending[ref]
                on_result(_get(ray, ref))
        return [_get(ray, ref) for ref in extra]
    except BaseException:
        for ref in [*pending, *extra]:  # interrupted or failed: stop the rest; the store keeps what finished
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a finished task cannot be cancelled; nothing to do
                pass
        raise


# evaluation -----------------------------------------------------------------------------------
def _eval_shard(config: Any, sha256: str, indices: list[int]) -> tuple[list[tuple[int, int, int]], list[dict[str, Any]]]:
    """One batch of an evaluation, in a Ray worker: the single-process loop's body."""
    from advbench.data.registry import load_dataset
    from advbench.engine.evaluate import (
        _evaluate_batch,
        _load_attacked_model,
        _prepare_attacks,
    )

    device = _worker_device(config.device)
    threats, attacks = _prepare_attacks(config)
    model, card, _ = _load_attacked_model(config, attacks, device)
    _same_checkpoint(card.sha256, sha256, config.model)
    idx = torch.tensor(indices, dtype=torch.int64)
    data = load_dataset(config.dataset, config.split, config.data_dir, idx)
    return _evaluate_batch(model, data.images.to(device), data.labels.to(device), idx, threats, attacks, config.seed)


def _eval_checks(config: Any, sha256: str, indices: list[int]) -> Any:
    """The gradient-masking checks, in a Ray worker."""
    from advbench.engine.evaluate import _masking_checks, _prepare_attacks
    from advbench.models.card import load_model

    device = _worker_device(config.device)
    threats, _ = _prepare_attacks(config)
    model, card = load_model(config.model, config.dataset, config.zoo, config.weights)
    _same_checkpoint(card.sha256, sha256, config.model)
    return _masking_checks(model.to(device), config, torch.tensor(indices, dtype=torch.int64), threats, device)


def eval_sharded(
    config: Any, sha256: str, indices: torch.Tensor, todo: torch.Tensor, store: Store, run_id: str,
    progress: Callable[[int, int], None] | None, done: int,
) -> Any:
    """Evaluate the `todo` samples as one Ray task per batch, committing each as it arrives.

    The masking checks (when on) run as one more task beside the shards; their report is returned.
    """
    ray = _ray()
    portable = _portable(config)
    jobs = [(portable, sha256, todo[s : s + config.batch_size].tolist()) for s in range(0, len(todo), config.batch_size)]
    checks = []
    if config.checks:
        checks_remote = ray.remote(_eval_checks).options(**_task_options(ray, config.device))
        checks = [checks_remote.remote(portable, sha256, indices[: config.check_n].tolist())]
    state = {"finished": done, "clock": time.perf_counter()}

    def commit(result: tuple[list[tuple[int, int, int]], list[dict[str, Any]]]) -> None:
        clean_rows, rows = result
        store.write_batch(run_id, clean_rows, rows)
        now = time.perf_counter()
        store.add_wall_time(run_id, now - state["clock"])
        state["clock"] = now
        state["finished"] += len(clean_rows)
        if progress:
            progress(state["finished"], len(indices))

    reports = _run_tasks(_eval_shard, jobs, config.device, commit, checks)
    return reports[0] if reports else None


# certification --------------------------------------------------------------------------------
def _certify_shard(config: Any, sha256: str, work: list[tuple[int, list[float]]]) -> list[dict[str, Any]]:
    """Certificates for a few samples (each at its still-missing sigmas), in a Ray worker."""
    from advbench.certify.cohen import CertifyConfig
    from advbench.data.registry import load_dataset
    from advbench.engine.certify import certificate_row
    from advbench.models.card import load_model

    device = _worker_device(config.device)
    model, card = load_model(config.model, config.dataset, config.zoo)
    _same_checkpoint(card.sha256, sha256, config.model)
    model.to(device)
    data = load_dataset(config.dataset, config.split, config.data_dir, torch.tensor([i for i, _ in work], dtype=torch.int64))
    images = data.images.to(device)
    rows = []
    for pos, (index, sigmas) in enumerate(work):
        for sigma in sigmas:
            setting = CertifyConfig(sigma, config.n0, config.n, config.alpha, config.batch_size)
            rows.append(certificate_row(model, images[pos], int(data.labels[pos]), index, setting, config))
    return rows


def certify_sharded(
    config: Any, sha256: str, indices: torch.Tensor, sigmas: list[float], done: set[tuple[int, float]], store: Store, run_id: str,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Certify every (sample, sigma) not in `done`, `CERTIFY_SHARD` samples per Ray task, committing each shard as it arrives."""
    work = [(index, [s for s in sigmas if (index, s) not in done]) for index in indices.tolist()]
    work = [w for w in work if w[1]]
    portable = _portable(config)
    jobs = [(portable, sha256, work[s : s + CERTIFY_SHARD]) for s in range(0, len(work), CERTIFY_SHARD)]
    state = {"finished": len(done), "clock": time.perf_counter()}
    total = len(indices) * len(sigmas)

    def commit(rows: list[dict[str, Any]]) -> None:
        store.write_certificates(run_id, rows)
        now = time.perf_counter()
        store.add_wall_time(run_id, now - state["clock"])
        state["clock"] = now
        state["finished"] += len(rows)
        if progress:
            progress(state["finished"], total)

    _run_tasks(_certify_shard, jobs, config.device, commit)
