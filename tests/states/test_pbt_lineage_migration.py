"""The migration that adds PBT's lineage (member, round, parent trial) to the trials: a
state written before it upgrades with its trials intact and no lineage, and a trial's
lineage is written and read back with it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tunectl.states import State, TrialRecord, schema
from tunectl.states.schema import MIGRATIONS


def write_pre_lineage_state(path: Path) -> int:
    """A state at the version before the lineage migration, with one trial."""
    version = next(i for i, m in enumerate(MIGRATIONS) if m.__name__ == "_add_pbt_lineage")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(schema.META_DDL)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", 0), ("lineage", "l"), ("serial", 3), ("config_id", "c")],
    )
    for migration in MIGRATIONS[:version]:
        migration(conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.execute(
        "INSERT INTO experiments (name, generation, config, config_hash, status, stop_reason,"
        " created_at) VALUES ('demo', 1, '{}', '', 'running', '', 1.0)"
    )
    conn.execute(
        'INSERT INTO trials (experiment, generation, number, id, params, status, "values",'
        " attempt, task_index, created_at, message, internal, system_attrs)"
        " VALUES ('demo', 1, 0, 'demo-g1-t0', '{}', 'complete', '{}', 0, 0, 1.0, '', '{}', '{}')"
    )
    conn.commit()
    conn.close()
    return version


def test_upgrade_keeps_trials_without_lineage_and_new_trials_keep_theirs(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tunectl.db"
    version = write_pre_lineage_state(path)
    with State.open(path, create=False, config_id="c") as state:
        [old] = state.list_trials("demo")
        assert (old.pbt_member, old.pbt_round, old.parent_trial) == (None, None, None)
        state.add_trial(
            TrialRecord(
                experiment="demo",
                number=1,
                id="demo-g1-t1",
                params={},
                pbt_member=2,
                pbt_round=1,
                parent_trial=0,
            )
        )
    with State.open(path, create=False, config_id="c") as state:
        new = state.list_trials("demo")[1]
        assert (new.pbt_member, new.pbt_round, new.parent_trial) == (2, 1, 0)
    assert path.with_name(f"tunectl.db.schema-v{version}.backup").exists()
