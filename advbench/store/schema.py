"""The result database's tables (`SCHEMA`) and the upgrades that bring an earlier version's
database to them; any other database is refused before anything is written."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from advbench.core.errors import UnusableDatabaseError

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
    pred INTEGER NOT NULL,         -- random models: the label unless the vote decided wrong
    correct_draws INTEGER,         -- random models: the vote's correct draws (NULL: one pass judged)
    draws INTEGER,                 -- random models: the vote's draws
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
    correct_draws INTEGER,         -- random models: the vote at adv point (NULL: one pass judged)
    draws INTEGER,
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

# What earlier versions' databases may lack; opening one (writable) adds it.
OPTIONAL_TABLES = frozenset({"certificates"})
OPTIONAL_COLUMNS = {
    ("samples", "min_distance"): "ALTER TABLE samples ADD COLUMN min_distance REAL",
    **{
        (table, column): f"ALTER TABLE {table} ADD COLUMN {column} INTEGER"
        for table in ("clean", "samples")
        for column in ("correct_draws", "draws")
    },
}

SAMPLE_COLUMNS = (
    "sample_idx",
    "attack",
    "eps",
    "status",
    "label",
    "clean_pred",
    "adv_pred",
    "success",
    "distance",
    "steps",
    "seconds",
    "min_distance",
    "correct_draws",
    "draws",
)


@functools.cache
def expected_columns() -> dict[str, frozenset[str]]:
    """Each table's columns, as SCHEMA defines them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: frozenset(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        conn.close()


def schema_statements() -> list[str]:
    """SCHEMA as single statements, to run inside one transaction (executescript would commit)."""
    statements, buffer = [], ""
    for line in SCHEMA.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


def upgrade_statements(conn: sqlite3.Connection, path: Path) -> list[str]:
    """The statements that bring the database on `conn` to SCHEMA: all of it for an empty
    database, an earlier version's missing columns and tables, nothing for a current one.
    Raises UnusableDatabaseError, before anything is written, for any other database."""
    objects = [
        (kind, name)
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master")
        if not name.startswith("sqlite_")
    ]
    if not objects:
        return schema_statements()
    expected = expected_columns()
    tables = {name for kind, name in objects if kind == "table"}
    foreign = sorted(tables - set(expected)) + sorted(
        f"{kind} {name}" for kind, name in objects if kind in ("view", "trigger")
    )
    if foreign or "runs" not in tables:
        held = ", ".join(foreign) or ", ".join(sorted(tables)) or "no tables"
        raise UnusableDatabaseError(
            f"{path} is not an advbench result database (it holds {held}); refusing to add advbench's tables to it: give a new file as --db"
        )
    problems, upgrades = [], []
    for table, columns in expected.items():
        if table not in tables:
            if table in OPTIONAL_TABLES:
                upgrades.append(next(s for s in schema_statements() if f"EXISTS {table} (" in s))
            else:
                problems.append(f"no table {table}")
            continue
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        upgrades += [
            OPTIONAL_COLUMNS[(table, c)]
            for c in sorted(columns - have)
            if (table, c) in OPTIONAL_COLUMNS
        ]
        lacking = sorted(c for c in columns - have if (table, c) not in OPTIONAL_COLUMNS)
        unknown = sorted(have - columns)
        if lacking:
            problems.append(f"table {table} lacks column(s) {some(lacking)}")
        if unknown:
            problems.append(f"table {table} has unknown column(s) {some(unknown)}")
    if problems:
        raise UnusableDatabaseError(
            f"result database {path} has another schema ({'; '.join(problems)}); it was not written by this advbench version, so it is left untouched"
        )
    if upgrades:
        upgrades.append("CREATE INDEX IF NOT EXISTS runs_by_key ON runs(config_key);")
    return upgrades


def some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
