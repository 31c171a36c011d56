"""Executors: run a job over shards of work and hand each result back as it finishes.

One protocol, `Executor`: `map(job, plan, shards, on_result)`, where `job(plan, shard)` is a
module-level function, and `close()`. `LocalExecutor` runs the shards in this process on the
driver's plan. `RayExecutor`
shards over Ray (processes, GPUs, machines): each worker is a Ray actor that resolves the plan
once (the model loaded and its checkpoint hash-checked once per worker, not per batch), then
runs shard after shard; Ray schedules, places and retries (a dead worker is restarted and its
shard re-run). The caller stays the only writer to SQLite and commits each result on arrival,
so a crash loses only the shards in flight. Ray is optional: `pip install 'advbench[ray]'`.

Both run every job inside the determinism policy (`core.device.deterministic`) for the plan's
device, so every stored result comes from the same settings, locally or on a worker.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Protocol, Sequence

import torch

from advbench.core.device import deterministic, device_class, resolve_device
from advbench.core.errors import AdvbenchError, CheckpointError, UsageError
from advbench.engine.spec import Runtime

Job = Callable[[Any, Any], Any]  # (plan, shard) -> result


def run_job(job: Job, plan: Any, shard: Any) -> Any:
    """`job(plan, shard)` under the determinism policy of the plan's device (TF32 as it allows)."""
    with deterministic(getattr(plan, "device", None), getattr(plan, "tf32", False)):
        return job(plan, shard)


OBJECTS_RUN_LOCALLY = "--ray shards runs of named models; a plan built from objects runs locally"


class Executor(Protocol):
    """Runs `job` on `plan` over shards; each result goes to `on_result` as it arrives."""

    driver_device: (
        torch.device | None
    )  # where the driver's plan is resolved (None: the runtime's device)
    certify_shard: (
        int  # images per certification shard: each is minutes of work, so locally one commit each
    )

    def accepts(self, plan: Any) -> None:
        """Raise a `UsageError` for a plan this executor cannot run (before any run is stored)."""

    def label(self, plan: Any) -> str:
        """The device a run is recorded as running on."""

    def map(
        self, job: Job, plan: Any, shards: Sequence[Any], on_result: Callable[[Any], None]
    ) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Shards in order, in this process, on the driver's plan."""

    driver_device: torch.device | None = None
    certify_shard = 1

    def accepts(self, plan: Any) -> None:
        return None

    def label(self, plan: Any) -> str:
        return str(plan.device)

    def map(
        self, job: Job, plan: Any, shards: Sequence[Any], on_result: Callable[[Any], None]
    ) -> None:
        for shard in shards:
            on_result(run_job(job, plan, shard))

    def close(self) -> None:
        return None

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


RAY_MISSING = "Ray is not installed: pip install 'advbench[ray]'"
MAX_RETRIES = 3  # a task whose worker or node dies is re-run this many times


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
    quiet = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }  # worker logs: /tmp/ray/session_latest/logs
    try:
        if address == "local":
            ray.init(
                address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet
            )  # never an existing one
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
    _task_options(
        _ray(), device
    )  # --device cuda on a cluster without GPUs fails here, before a run is created


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
            raise UsageError(
                "--ray auto: no running Ray cluster found on this machine; start one with `ray start --head`"
            ) from None
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address!r}: give local, auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(
            f"--ray {address}: no Ray cluster answers at {target} ({exc.strerror or exc}); is `ray start --head` running there?"
        ) from None


def _task_options(ray: Any, device: str) -> dict[str, Any]:
    """One GPU per task where the cluster has GPUs (and --device is not cpu), else one CPU."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if device.lower().startswith("cuda") and not gpus:
        raise UsageError(
            f"device {device!r} requested but the Ray cluster has no GPUs; use --device auto or cpu"
        )
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


def worker_device(name: str) -> torch.device:
    """Ray hides all GPUs but the worker's own, so `cuda:N` from the driver means the worker's GPU."""
    return torch.device("cpu") if name.lower() == "cpu" else resolve_device("auto")


def work_class(runtime: Runtime, device: torch.device) -> str:
    """The device class ('cpu' or 'cuda') a run's rows are computed on, for its key: the plan's
    device, or under Ray the workers' (a GPU each where the cluster has GPUs and --device is not
    cpu), which a driver resolving its plan on the CPU does not share."""
    if runtime.ray is None or device.type == "cuda":
        return device_class(device)
    ray = _ray()
    if not ray.is_initialized():
        return device_class(device)
    return "cuda" if "num_gpus" in _task_options(ray, runtime.device) else "cpu"


def portable(runtime: Runtime) -> Runtime:
    """The runtime a worker needs: folders made absolute, $ADVBENCH_ZOO made explicit (nodes share paths)."""
    zoo = runtime.zoo or os.environ.get("ADVBENCH_ZOO")
    return replace(
        runtime,
        zoo=Path(zoo).resolve() if zoo else None,
        data_dir=runtime.data_dir.resolve() if runtime.data_dir else None,
    )


def same_checkpoint(sha256: str, expected: str, name: str) -> None:
    if sha256 != expected:
        raise CheckpointError(
            f"a Ray worker found a different checkpoint for {name!r} (sha256 {sha256[:12]}, driver {expected[:12]}); every node needs the same model zoo"
        )


class _PlanWorker:
    """A Ray actor holding one plan for its whole life."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.plan = build()

    def run(self, job: Job, shard: Any) -> Any:
        return run_job(job, self.plan, shard)


class RayExecutor:
    """Shards over Ray actors, each keeping the plan its `plan.rebuild()` makes (once per worker).
    The driver only validates, so its plan stays on the CPU."""

    def __init__(self, address: str, device: str, workers: int | None = None) -> None:
        require(address, device)
        self.device, self.workers = device, workers
        self.driver_device: torch.device | None = torch.device("cpu")
        self.certify_shard = 8  # images per task: fewer round trips
        self.actors: list[Any] = []
        self.build: Callable[[], Any] | None = None

    def accepts(self, plan: Any) -> None:
        if getattr(plan, "rebuild", None) is None:
            raise UsageError(OBJECTS_RUN_LOCALLY)

    def label(self, plan: Any) -> str:
        return "ray"

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _pool(self, wanted: int) -> list[Any]:
        ray = _ray()
        options = _task_options(ray, self.device)
        slots = int(ray.cluster_resources().get("GPU" if "num_gpus" in options else "CPU", 1)) or 1
        size = max(1, min(wanted, self.workers or slots))
        actor = ray.remote(_PlanWorker).options(
            **{k: v for k, v in options.items() if k != "max_retries"},
            max_restarts=MAX_RETRIES,
            max_task_retries=MAX_RETRIES,
        )
        while len(self.actors) < size:
            self.actors.append(actor.remote(self.build))
        return self.actors[:size]

    def map(
        self, job: Job, plan: Any, shards: Sequence[Any], on_result: Callable[[Any], None]
    ) -> None:
        if not shards:
            return
        self.accepts(plan)
        if self.build is not plan.rebuild:  # workers keep one plan; another plan needs new workers
            self.close()
            self.build = plan.rebuild
        ray = _ray()
        actors = self._pool(len(shards))
        todo = list(shards)
        pending: dict[Any, Any] = {}
        try:
            for actor in actors:
                if todo:
                    pending[actor.run.remote(job, todo.pop(0))] = actor
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    actor = pending.pop(ref)
                    if todo:
                        pending[actor.run.remote(job, todo.pop(0))] = actor
                    on_result(_get(ray, ref))
        except BaseException:
            for (
                ref
            ) in pending:  # interrupted or failed: stop the rest; the store keeps what finished
                try:
                    ray.cancel(ref, force=False)
                except Exception:  # noqa: BLE001 - a finished task cannot be cancelled; nothing to do
                    pass
            self.close()
            raise

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []


def executor_for(runtime: Runtime) -> LocalExecutor | RayExecutor:
    """Local unless the runtime names a Ray address (the one place that asks)."""
    return LocalExecutor() if runtime.ray is None else RayExecutor(runtime.ray, runtime.device)
