"""The run ledger: one lifecycle for evaluations, certifications and suite cells.

open (find the run by its key, or create it; resume an unfinished one) -> commit batches as they
finish (each in one transaction, so a kill loses at most the batch in flight) -> finish with the
summary. The store stays a plain SQLite layer; this module decides what a run is.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from advbench.core.provenance import git_commit, library_versions
from advbench.core.version import __version__
from advbench.store import Store


def config_key(payload: dict[str, Any]) -> str:
    """A run's identity: the hash of everything that determines its results."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def run_meta(
    model: str, dataset: str, n_samples: int, seed: int, indices_hash: str, sha256: str, device: str
) -> dict[str, Any]:
    """Provenance stored with every run."""
    return {
        "model": model,
        "dataset": dataset,
        "n_samples": n_samples,
        "seed": seed,
        "indices_hash": indices_hash,
        "checkpoint_sha256": sha256,
        "device": device,
        "package_version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
    }


ProgressFn = Callable[[int, int], None]


@dataclass
class Tally:
    """Work committed so far out of `total`, reported to `progress` on every change."""

    total: int
    done: int
    progress: ProgressFn | None = None

    def __post_init__(self) -> None:
        self.add(0)

    def add(self, count: int) -> None:
        self.done += count
        if self.progress:
            self.progress(self.done, self.total)


@dataclass
class RunLedger:
    """An open run: `resumed` when it existed before, `finished` when it needs no more work."""

    store: Store
    run_id: str
    resumed: bool
    finished: bool
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    @classmethod
    def open(
        cls,
        store: Store,
        key: str,
        kind: str,
        fresh: bool,
        device: str,
        meta: dict[str, Any],
        config: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> "RunLedger":
        """Find the run with `key` (unless `fresh`) or create it with `meta` and `config` (a
        callable is called only when the run is created: work done once per run, e.g. checks).

        Two processes opening one key at once agree on one run: the run is created under the
        database's write lock after a second look for it, and the one that finds it resumes it
        (their batches' rows are identical, so either may commit a sample first). A read-only
        database serves finished runs only, and refuses before `config` is computed."""
        run_id = None if fresh else store.find_run(key)
        if run_id is not None and store.get_run(run_id).status == "finished":
            return cls(store, run_id, True, True)
        store.require_writable()
        if run_id is None:
            new_id = uuid.uuid4().hex[:12]
            run_id, created = store.create_run(
                new_id,
                key,
                meta,
                config() if callable(config) else config,
                kind=kind,
                reuse=not fresh,
            )
            if created:
                return cls(store, run_id, False, False)
            if (
                store.get_run(run_id).status == "finished"
            ):  # another process created and finished it meanwhile
                return cls(store, run_id, True, True)
        store.mark_resumed(run_id, device)
        return cls(store, run_id, True, False)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.store.add_wall_time(self.run_id, now - self._clock)
        self._clock = now

    def restart_clock(self) -> None:
        self._clock = time.perf_counter()

    def done_samples(self) -> set[int]:
        return self.store.done_samples(self.run_id)

    def done_certificates(self) -> set[tuple[int, float]]:
        return {(r["sample_idx"], r["sigma"]) for r in self.store.certificate_rows(self.run_id)}

    def commit_batch(
        self,
        clean_rows: Iterable[tuple[Any, ...]],
        rows: Iterable[dict[str, Any]],
        config: dict[str, Any] | None = None,
    ) -> None:
        """One batch's rows, with `config`'s keys set in the run's config, in one transaction."""
        self.store.write_batch(self.run_id, clean_rows, rows, config)
        self._tick()

    def config(self) -> dict[str, Any]:
        return self.store.get_run(self.run_id).config

    def commit_certificates(self, rows: list[dict[str, Any]]) -> None:
        self.store.write_certificates(self.run_id, rows)
        self._tick()

    def finish(self, summary: dict[str, Any], warnings: list[str]) -> None:
        self.store.finish_run(self.run_id, summary, warnings)
        self.finished = True
