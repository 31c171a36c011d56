"""The result database. Every batch is committed in one transaction, so a killed run loses
at most the batch in flight, and a run is found again by the hash of its configuration.

A database is inspected read-only before anything is written: a file that is not advbench's (or
is of another schema) is refused untouched, a read-only one can be read but not written, and an
earlier version's is upgraded in place (added columns and tables only). Several processes may
share one database: a run is found or created under one write lock, so they agree on its id,
and rows are deterministic per sample, so a row another process committed first is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from advbench.core.errors import StoreError, UnknownRunError, UnusableDatabaseError
from advbench.store.schema import SAMPLE_COLUMNS, schema_statements, upgrade_statements

DEFAULT_DB = Path("results") / "advbench.sqlite"

BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's transaction


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    created: str
    finished: str | None
    model: str
    dataset: str
    n_samples: int
    seed: int
    indices_hash: str
    checkpoint_sha256: str
    device: str
    wall_seconds: float
    package_version: str
    git_commit: str | None
    libraries: dict[str, str]
    config: dict[str, Any]
    summary: dict[str, Any] | None
    warnings: list[str]
    kind: str = "eval"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _writable(path: Path) -> bool:
    """False for a file without write permission (even for root, who could write it anyway: the
    user marked it read-only) or in a folder where SQLite cannot create its journal."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return bool(mode & 0o222) and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _database_error(path: Path, exc: sqlite3.Error, doing: str) -> StoreError:
    """A one-line error for an SQLite failure: the user's file (exit 2) or the machine (exit 1)."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith("SQLITE_READONLY") or "readonly" in str(exc):
        return UnusableDatabaseError(
            f"result database {path} is read-only; make it writable or give another --db"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc):
        return StoreError(
            f"result database {path} stayed locked by another process for {BUSY_TIMEOUT_S:g} s while {doing}; try again"
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_CANTOPEN")) or (
        isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
    ):
        return UnusableDatabaseError(f"cannot use result database {path}: {exc}")
    return StoreError(f"cannot use result database {path} ({doing}): {exc}")


class Store:
    """The result database at `path` (created when absent). `readonly` when the file is
    write-protected: runs can be listed and shown, and any write is a one-line error."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.readonly = False
        try:
            self.conn = self._open()
        except sqlite3.Error as exc:
            raise _database_error(self.path, exc, "opening it") from None

    def _open(self) -> sqlite3.Connection:
        if self.path.exists() and not self.path.is_file():
            raise UnusableDatabaseError(f"result database {self.path} is not a file")
        upgrades = schema_statements()
        exists = self.path.exists()
        if exists and self.path.stat().st_size > 0:
            # Look before touching: a read-only connection changes nothing, not even the journal mode.
            probe = self._connect_readonly()
            try:
                upgrades = upgrade_statements(probe, self.path)
            finally:
                probe.close()
        if exists and not _writable(self.path):
            if upgrades:
                raise UnusableDatabaseError(
                    f"result database {self.path} is read-only and needs advbench's tables first; make it writable or give another --db"
                )
            self.readonly = True
            return self._connect_readonly()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnusableDatabaseError(
                f"cannot create result database {self.path}: {exc.strerror or exc}"
            ) from None
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            if upgrades:
                conn.execute(
                    "PRAGMA journal_mode=WAL"
                )  # persistent: set once, by whoever creates the tables
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in upgrade_statements(
                        conn, self.path
                    ):  # again under the lock: another process may have done it
                        conn.execute(statement)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        return sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S
        )

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, its SQLite errors as one-line errors."""
        self.require_writable()
        try:
            with self.conn:
                yield self.conn
        except sqlite3.Error as exc:
            raise _database_error(self.path, exc, doing) from None

    def require_writable(self) -> None:
        if self.readonly:
            raise UnusableDatabaseError(
                f"result database {self.path} is read-only; make it writable or give another --db"
            )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs ----------------------------------------------------------------------------------
    def find_run(self, config_key: str) -> str | None:
        """The newest run with this configuration, finished or not."""
        row = self.conn.execute(
            "SELECT run_id FROM runs WHERE config_key = ? ORDER BY created DESC, rowid DESC LIMIT 1",
            (config_key,),
        ).fetchone()
        return row[0] if row else None

    def create_run(
        self,
        run_id: str,
        config_key: str,
        meta: dict[str, Any],
        config: dict[str, Any],
        kind: str = "eval",
        reuse: bool = False,
    ) -> tuple[str, bool]:
        """Insert run `run_id` -> (run_id, True). With `reuse`, under the same write lock, first
        look for a run with `config_key` that another process created meanwhile -> (its id, False),
        so processes started at once on one database agree on one run."""
        with self._writing("creating a run") as conn:
            conn.execute("BEGIN IMMEDIATE")
            if reuse:
                existing = self.find_run(config_key)
                if existing is not None:
                    return existing, False
            conn.execute(
                "INSERT INTO runs (run_id, config_key, kind, status, created, model, dataset, n_samples, seed, indices_hash,"
                " checkpoint_sha256, device, package_version, git_commit, libraries, config)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    config_key,
                    kind,
                    _now(),
                    meta["model"],
                    meta["dataset"],
                    meta["n_samples"],
                    meta["seed"],
                    meta["indices_hash"],
                    meta["checkpoint_sha256"],
                    meta["device"],
                    meta["package_version"],
                    meta.get("git_commit"),
                    json.dumps(meta.get("libraries", {})),
                    json.dumps(config, sort_keys=True),
                ),
            )
        return run_id, True

    def mark_resumed(self, run_id: str, device: str) -> None:
        """Running again (on `device`); a run another process finished meanwhile stays finished."""
        with self._writing("resuming a run") as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', device = ? WHERE run_id = ? AND status != 'finished'",
                (device, run_id),
            )

    def add_wall_time(self, run_id: str, seconds: float) -> None:
        with self._writing("recording wall time") as conn:
            conn.execute(
                "UPDATE runs SET wall_seconds = wall_seconds + ? WHERE run_id = ?",
                (seconds, run_id),
            )

    def finish_run(self, run_id: str, summary: dict[str, Any], warnings: list[str]) -> None:
        with self._writing("finishing a run") as conn:
            conn.execute(
                "UPDATE runs SET status = 'finished', finished = ?, summary = ?, warnings = ? WHERE run_id = ?",
                (_now(), json.dumps(summary), json.dumps(warnings), run_id),
            )

    def get_run(self, run_id: str) -> RunRecord:
        rows = self.conn.execute(
            "SELECT * FROM runs WHERE run_id LIKE ?", (run_id + "%",)
        ).fetchall()
        if not rows:
            raise UnknownRunError(f"no run {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise UnknownRunError(f"run id prefix {run_id!r} is ambiguous in {self.path}")
        return self._record(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.conn.execute(
            "SELECT * FROM runs ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._record(r) for r in rows]

    def _record(self, row: tuple) -> RunRecord:
        cols = [d[0] for d in self.conn.execute("SELECT * FROM runs LIMIT 0").description]
        d = dict(zip(cols, row))
        return RunRecord(
            run_id=d["run_id"],
            status=d["status"],
            created=d["created"],
            finished=d["finished"],
            model=d["model"],
            dataset=d["dataset"],
            n_samples=d["n_samples"],
            seed=d["seed"],
            indices_hash=d["indices_hash"],
            checkpoint_sha256=d["checkpoint_sha256"],
            device=d["device"],
            wall_seconds=d["wall_seconds"],
            package_version=d["package_version"],
            git_commit=d["git_commit"],
            libraries=json.loads(d["libraries"] or "{}"),
            config=json.loads(d["config"]),
            summary=json.loads(d["summary"]) if d["summary"] else None,
            warnings=json.loads(d["warnings"] or "[]"),
            kind=d.get("kind") or "eval",
        )

    # samples -------------------------------------------------------------------------------
    def done_samples(self, run_id: str) -> set[int]:
        """Samples whose whole batch was committed (clean row and every attack row)."""
        return {
            r[0]
            for r in self.conn.execute("SELECT sample_idx FROM clean WHERE run_id = ?", (run_id,))
        }

    def write_batch(
        self,
        run_id: str,
        clean_rows: Iterable[tuple[Any, ...]],
        sample_rows: Iterable[dict[str, Any]],
        config: dict[str, Any] | None = None,
    ) -> None:
        """Commit one batch's clean predictions and attack rows atomically (with `config`'s keys set in the run's config).

        A clean row is (sample, label, prediction) or, for a random model's vote, (sample, label,
        prediction, correct draws, draws)."""
        placeholders = ", ".join("?" * (len(SAMPLE_COLUMNS) + 1))
        # OR IGNORE: rows are deterministic per sample, so a row another process running the same
        # run committed first is this one (up to its timing), and is kept.
        with self._writing("storing a batch") as conn:
            if config:
                stored = json.loads(
                    conn.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()[
                        0
                    ]
                )
                conn.execute(
                    "UPDATE runs SET config = ? WHERE run_id = ?",
                    (json.dumps({**stored, **config}, sort_keys=True), run_id),
                )
            conn.executemany(
                "INSERT OR IGNORE INTO clean (run_id, sample_idx, label, pred, correct_draws, draws) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, *r, *(None,) * (5 - len(r))) for r in clean_rows],
            )
            conn.executemany(
                f"INSERT OR IGNORE INTO samples (run_id, {', '.join(SAMPLE_COLUMNS)}) VALUES ({placeholders})",
                [(run_id, *(row.get(c) for c in SAMPLE_COLUMNS)) for row in sample_rows],
            )

    def clean_rows(self, run_id: str) -> list[tuple[int, int, int]]:
        return self.conn.execute(
            "SELECT sample_idx, label, pred FROM clean WHERE run_id = ? ORDER BY sample_idx",
            (run_id,),
        ).fetchall()

    def clean_votes(self, run_id: str) -> dict[int, tuple[int, int]]:
        """Random models: each sample's clean vote (correct draws, draws); empty for one-pass runs."""
        return {
            idx: (hits, draws)
            for idx, hits, draws in self.conn.execute(
                "SELECT sample_idx, correct_draws, draws FROM clean WHERE run_id = ? AND draws IS NOT NULL",
                (run_id,),
            )
        }

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples WHERE run_id = ? ORDER BY eps, sample_idx, attack",
            (run_id,),
        )
        return [dict(zip(SAMPLE_COLUMNS, r)) for r in cur.fetchall()]

    # certificates --------------------------------------------------------------------------
    CERTIFICATE_COLUMNS = (
        "sample_idx",
        "sigma",
        "label",
        "prediction",
        "radius",
        "p_lower",
        "count_top",
        "n",
        "predict",
        "forward_passes",
        "seconds",
    )

    def write_certificates(self, run_id: str, rows: Iterable[dict[str, Any]]) -> None:
        cols = self.CERTIFICATE_COLUMNS
        with self._writing("storing certificates") as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO certificates (run_id, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))})",
                [(run_id, *(row[c] for c in cols)) for row in rows],
            )

    def certificate_rows(self, run_id: str) -> list[dict[str, Any]]:
        cols = self.CERTIFICATE_COLUMNS
        cur = self.conn.execute(
            f"SELECT {', '.join(cols)} FROM certificates WHERE run_id = ? ORDER BY sigma, sample_idx",
            (run_id,),
        )
        return [dict(zip(cols, r)) for r in cur.fetchall()]
