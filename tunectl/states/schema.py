"""The state's tables, and the migrations that build and upgrade them.

A state file records its `schema_version` in `meta`. Version 0 is a file with only the
`meta` table; `MIGRATIONS[n]` turns version n into n + 1, so a new state and an upgraded
one are built by the same code. Migrations are frozen SQL: once released, a migration never
changes (a library's DDL generator could change under it), and a change to the schema is a
new migration appended to the list.

Status columns have no CHECK constraints on purpose: SQLite cannot alter a constraint
without rebuilding the table, and the store validates statuses before writing.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunectl.states import files

Migration = Callable[[sqlite3.Connection], None]

META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)"

_V1 = """
CREATE TABLE experiments (
    name TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE trials (
    experiment TEXT NOT NULL REFERENCES experiments(name) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    number INTEGER NOT NULL,
    id TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    value REAL,
    "values" TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    task_index INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    model_uri TEXT,
    message TEXT NOT NULL,
    last_step INTEGER,
    internal TEXT NOT NULL,
    system_attrs TEXT NOT NULL,
    PRIMARY KEY (experiment, generation, number)
) WITHOUT ROWID;
CREATE INDEX trials_by_status ON trials (experiment, generation, status);
CREATE TABLE tasks (
    key TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    generation INTEGER NOT NULL,
    trial_number INTEGER NOT NULL,
    task_index INTEGER NOT NULL,
    task_name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    provider TEXT NOT NULL,
    handle_id TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    log_cursor INTEGER NOT NULL,
    file_cursors TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    finished_at REAL,
    message TEXT NOT NULL,
    FOREIGN KEY (experiment, generation, trial_number)
        REFERENCES trials(experiment, generation, number) ON DELETE CASCADE
);
CREATE INDEX tasks_by_trial ON tasks (experiment, generation, trial_number, task_index, attempt);
CREATE INDEX tasks_active ON tasks (status) WHERE status IN ('submitting', 'pending', 'running');
CREATE TABLE metrics (
    experiment TEXT NOT NULL,
    generation INTEGER NOT NULL,
    trial_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    step INTEGER,
    value REAL,  -- SQLite stores NaN as NULL, which the store reads back as NaN
    ts REAL NOT NULL,
    FOREIGN KEY (experiment, generation, trial_number)
        REFERENCES trials(experiment, generation, number) ON DELETE CASCADE
);
CREATE INDEX metrics_by_trial ON metrics (experiment, generation, trial_number);
CREATE TABLE outputs (
    name TEXT PRIMARY KEY,
    value_json TEXT NOT NULL,
    sensitive INTEGER NOT NULL
);
"""


def _v0_to_v1(conn: sqlite3.Connection) -> None:
    # Not executescript(): it commits the open transaction first.
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


# Version 2: identity. `last_generation` is the lineage's generation counter: it only
# grows, so a destroyed (or `state rm`-ed) and recreated experiment never reuses a
# generation, hence never a task key or a model path. Generations up to
# `legacy_generation` were made by a release that derived model paths without the lineage;
# they keep that layout (their running trials were given those paths). `tasks.host` is the
# host a host-local task runs on; `model_objects` lists what each trial stored, the only
# objects destroy and `keep` delete.
_V2 = """
ALTER TABLE tasks ADD COLUMN host TEXT;
CREATE TABLE model_objects (
    experiment TEXT NOT NULL,
    generation INTEGER NOT NULL,
    trial_number INTEGER NOT NULL,
    location TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (experiment, generation, trial_number, location),
    FOREIGN KEY (experiment, generation, trial_number)
        REFERENCES trials(experiment, generation, number) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO meta (key, value)
    VALUES ('last_generation', (SELECT coalesce(max(generation), 0) FROM experiments));
INSERT INTO meta (key, value)
    VALUES ('legacy_generation', (SELECT coalesce(max(generation), 0) FROM experiments));
"""


def _run(script: str) -> Migration:
    def migration(conn: sqlite3.Connection) -> None:
        # Not executescript(): it commits the open transaction first.
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)

    return migration


def _add_experiment_clock(conn: sqlite3.Connection) -> None:
    """`max_duration` counted across applies (SPEC 6 "Budgets")."""
    conn.execute("ALTER TABLE experiments ADD COLUMN elapsed REAL NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE experiments ADD COLUMN clock_since REAL")
    # Until now the clock ran from the last (re)start: a finished experiment used the time
    # from then to its end (so one stopped by max_duration stays stopped), and a running
    # one has used its time since then.
    conn.execute(
        "UPDATE experiments SET elapsed = max(0, finished_at - started_at) "
        "WHERE status != 'running' AND finished_at IS NOT NULL AND started_at IS NOT NULL"
    )
    conn.execute("UPDATE experiments SET clock_since = started_at WHERE status = 'running'")


# Several objectives: a trial's values, one per objective (a JSON list; empty for a
# single objective, whose value stays in `value`).
_TRIAL_OBJECTIVE_VALUES = (
    "ALTER TABLE trials ADD COLUMN objective_values TEXT NOT NULL DEFAULT '[]'"
)


# Population based training: each trial's member, round and parent trial (the lineage
# that makes a restarted apply run each member of each round exactly once). NULL for
# trials of other algorithms.
def _add_pbt_lineage(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE trials ADD COLUMN pbt_member INTEGER")
    conn.execute("ALTER TABLE trials ADD COLUMN pbt_round INTEGER")
    conn.execute("ALTER TABLE trials ADD COLUMN parent_trial INTEGER")


MIGRATIONS: list[Migration] = [
    _v0_to_v1,
    _run(_V2),
    _add_experiment_clock,
    _run(_TRIAL_OBJECTIVE_VALUES),
    _add_pbt_lineage,
]

# Tables a state of the current version must have, to tell our files from others.
TABLES = frozenset(
    {"meta", "experiments", "trials", "tasks", "metrics", "outputs", "model_objects"}
)


def current_version() -> int:
    """The schema version this code writes: one per migration."""
    return len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, version: int) -> int:
    """Apply the migrations from `version` to the current one, in the caller's transaction.

    Returns the new version. The caller owns the transaction, so a failing migration
    leaves the state as it was.
    """
    for number in range(version, current_version()):
        MIGRATIONS[number](conn)
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
        (current_version(),),
    )
    return current_version()


def build(conn: sqlite3.Connection, config_id: str | None) -> None:
    """A new state: meta at version 0, then every migration."""
    conn.execute(META_DDL)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("schema_version", 0),
            ("lineage", str(uuid.uuid4())),
            ("serial", 0),
            ("config_id", config_id),
            ("salt", secrets.token_hex(32)),
        ],
    )
    migrate(conn, 0)


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The meta table, after checking the file is a state this code can read."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise files.load_failed(path, "it is a SQLite database but not a tunectl state")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta["schema_version"])
        str(meta["lineage"]), int(meta["serial"])
    except sqlite3.DatabaseError as exc:
        raise files.load_failed(path, f"SQLite reports {str(exc)!r}") from None
    except (KeyError, TypeError, ValueError):
        reason = "its meta table lacks the schema version, lineage or serial"
        raise files.load_failed(path, reason) from None
    if version > current_version():
        raise files.unsupported_version(path, version)
    if version == current_version() and not TABLES <= tables:
        missing = ", ".join(sorted(TABLES - tables))
        raise files.load_failed(path, f"tables are missing ({missing})")
    return meta


def upgrade(conn: sqlite3.Connection, path: Path, backup: Path) -> None:
    """Migrate an open older state to the current version in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded the state since we read the version.
        current = int(
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )
        if current < current_version():
            migrate(conn, current)
        conn.execute("COMMIT")
    except Exception as exc:
        conn.execute("ROLLBACK")
        raise files.upgrade_failed(path, backup, exc) from exc
