"""The migration that keeps `max_duration`'s clock in the state (SPEC 6 "Budgets").

A state written before it counted time from an experiment's last (re)start; upgraded, a
finished experiment keeps the time it used (one stopped by max_duration stays stopped) and
a running one keeps counting from its start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tunectl.states import State, schema


def write_version_1_state(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(schema.META_DDL)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", 0), ("lineage", "l"), ("serial", 3), ("config_id", "c")],
    )
    schema.MIGRATIONS[0](conn)
    conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    rows = [
        ("stopped", "stopped", "max_duration", 100.0, 100.0, 160.0),
        ("running", "running", "", 100.0, 200.0, None),
        ("pending", "pending", "", 100.0, None, None),
    ]
    conn.executemany(
        "INSERT INTO experiments (name, generation, config, config_hash, status, stop_reason,"
        " created_at, started_at, finished_at) VALUES (?, 1, '{}', '', ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


def test_upgrade_keeps_the_time_each_experiment_used(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tunectl.db"
    write_version_1_state(path)
    with State.open(path, create=False, config_id="c") as state:
        stopped = state.get_experiment("stopped")
        running = state.get_experiment("running")
        pending = state.get_experiment("pending")
        assert state.serial == 3  # an upgrade changes the schema, not the content
    assert stopped is not None and running is not None and pending is not None
    assert (stopped.elapsed, stopped.clock_since) == (60.0, None)
    assert (running.elapsed, running.clock_since) == (0.0, 200.0)
    assert (pending.elapsed, pending.clock_since) == (0.0, None)
    assert path.with_name("tunectl.db.schema-v1.backup").exists()
