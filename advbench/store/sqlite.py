"""The result database. Every batch is committed in one transaction, so a killed run loses
at most the batch in flight, and a run is found again by the hash of its configuration."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from advbench.core.errors import StoreError

DEFAULT_DB = Path("results") / "advbench.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config_key TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'eval',
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT,
    model TEXT, dataset TEXT, n_samples INTEGER, seed INTEGER,
    indices_hash TEXT, checkpoint_sha256 TEXT, device TEXT,
    wall_seconds REAL NOT NULL DEFAULT 0,
    package_version TEXT, git_commit TEXT,
    libraries TEXT, config TEXT NOT NULL, summary TEXT, warnings TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs(config_key);
CREATE TABLE IF NOT EXISTS clean (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    sample_idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    pred INTEGER NOT NULL,
    PRIMARY KEY (run_id, sample_idx)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    sample_idx INTEGER NOT NULL,
    attack TEXT NOT NULL,
    eps REAL NOT NULL,
    status TEXT NOT NULL,          -- attacked | misclassified (clean) | skipped (broken earlier)
    label INTEGER NOT NULL,
    clean_pred INTEGER NOT NULL,
    adv_pred INTEGER,
    success INTEGER,
    distance REAL,
    steps INTEGER,
    seconds REAL,
    min_distance REAL,             -- minimum-norm attacks: the smallest adversarial norm found (NULL: none)
    PRIMARY KEY (run_id, sample_idx, attack, eps)
);
CREATE TABLE IF NOT EXISTS certificates (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    sample_idx INTEGER NOT NULL,
    sigma REAL NOT NULL,
    label INTEGER NOT NULL,
    prediction INTEGER NOT NULL,   -- CERTIFY's class, -1 = abstain
    radius REAL NOT NULL,
    p_lower REAL NOT NULL,
    count_top INTEGER NOT NULL,
    n INTEGER NOT NULL,
    predict INTEGER NOT NULL,      -- PREDICT's class, -1 = abstain
    forward_passes INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, sample_idx, sigma)
);
"""

SAMPLE_COLUMNS = ("sample_idx", "attack", "eps", "status", "label", "clean_pred", "adv_pred", "success", "distance", "steps", "seconds", "min_distance")


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


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use result database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        """Databases written by older versions lack later columns; add them (nothing is lost)."""
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(samples)")}
        if "min_distance" not in columns:
            with self.conn:
                self.conn.execute("ALTER TABLE samples ADD COLUMN min_distance REAL")

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
            "SELECT run_id FROM runs WHERE config_key = ? ORDER BY created DESC, rowid DESC LIMIT 1", (config_key,)
        ).fetchone()
        return row[0] if row else None

    def create_run(self, run_id: str, config_key: str, meta: dict[str, Any], config: dict[str, Any], kind: str = "eval") -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (run_id, config_key, kind, status, created, model, dataset, n_samples, seed, indices_hash,"
                " checkpoint_sha256, device, package_version, git_commit, libraries, config)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, config_key, kind, _now(), meta["model"], meta["dataset"], meta["n_samples"], meta["seed"],
                    meta["indices_hash"], meta["checkpoint_sha256"], meta["device"], meta["package_version"],
                    meta.get("git_commit"), json.dumps(meta.get("libraries", {})), json.dumps(config, sort_keys=True),
                ),
            )

    def mark_resumed(self, run_id: str, device: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status = 'running', device = ? WHERE run_id = ?", (device, run_id))

    def add_wall_time(self, run_id: str, seconds: float) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET wall_seconds = wall_seconds + ? WHERE run_id = ?", (seconds, run_id))

    def finish_run(self, run_id: str, summary: dict[str, Any], warnings: list[str]) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = 'finished', finished = ?, summary = ?, warnings = ? WHERE run_id = ?",
                (_now(), json.dumps(summary), json.dumps(warnings), run_id),
            )

    def get_run(self, run_id: str) -> RunRecord:
        rows = self.conn.execute("SELECT * FROM runs WHERE run_id LIKE ?", (run_id + "%",)).fetchall()
        if not rows:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"run id prefix {run_id!r} is ambiguous in {self.path}")
        return self._record(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
        return [self._record(r) for r in rows]

    def _record(self, row: tuple) -> RunRecord:
        cols = [d[0] for d in self.conn.execute("SELECT * FROM runs LIMIT 0").description]
        d = dict(zip(cols, row))
        return RunRecord(
            run_id=d["run_id"], status=d["status"], created=d["created"], finished=d["finished"], model=d["model"],
            dataset=d["dataset"], n_samples=d["n_samples"], seed=d["seed"], indices_hash=d["indices_hash"],
            checkpoint_sha256=d["checkpoint_sha256"], device=d["device"], wall_seconds=d["wall_seconds"],
            package_version=d["package_version"], git_commit=d["git_commit"], libraries=json.loads(d["libraries"] or "{}"),
            config=json.loads(d["config"]), summary=json.loads(d["summary"]) if d["summary"] else None,
            warnings=json.loads(d["warnings"] or "[]"), kind=d.get("kind") or "eval",
        )

    # samples -------------------------------------------------------------------------------
    def done_samples(self, run_id: str) -> set[int]:
        """Samples whose whole batch was committed (clean row and every attack row)."""
        return {r[0] for r in self.conn.execute("SELECT sample_idx FROM clean WHERE run_id = ?", (run_id,))}

    def write_batch(self, run_id: str, clean_rows: Iterable[tuple[int, int, int]], sample_rows: Iterable[dict[str, Any]]) -> None:
        """Commit one batch's clean predictions and attack rows atomically."""
        placeholders = ", ".join("?" * (len(SAMPLE_COLUMNS) + 1))
        with self.conn:
            self.conn.executemany("INSERT INTO clean (run_id, sample_idx, label, pred) VALUES (?, ?, ?, ?)", [(run_id, *r) for r in clean_rows])
            self.conn.executemany(
                f"INSERT INTO samples (run_id, {', '.join(SAMPLE_COLUMNS)}) VALUES ({placeholders})",
                [(run_id, *(row.get(c) for c in SAMPLE_COLUMNS)) for row in sample_rows],
            )

    def clean_rows(self, run_id: str) -> list[tuple[int, int, int]]:
        return self.conn.execute("SELECT sample_idx, label, pred FROM clean WHERE run_id = ? ORDER BY sample_idx", (run_id,)).fetchall()

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples WHERE run_id = ? ORDER BY eps, sample_idx, attack", (run_id,)
        )
        return [dict(zip(SAMPLE_COLUMNS, r)) for r in cur.fetchall()]

    # certificates --------------------------------------------------------------------------
    CERTIFICATE_COLUMNS = ("sample_idx", "sigma", "label", "prediction", "radius", "p_lower", "count_top", "n", "predict", "forward_passes", "seconds")

    def write_certificates(self, run_id: str, rows: Iterable[dict[str, Any]]) -> None:
        cols = self.CERTIFICATE_COLUMNS
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO certificates (run_id, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))})",
                [(run_id, *(row[c] for c in cols)) for row in rows],
            )

    def certificate_rows(self, run_id: str) -> list[dict[str, Any]]:
        cols = self.CERTIFICATE_COLUMNS
        cur = self.conn.execute(f"SELECT {', '.join(cols)} FROM certificates WHERE run_id = ? ORDER BY sigma, sample_idx", (run_id,))
        return [dict(zip(cols, r)) for r in cur.fetchall()]
