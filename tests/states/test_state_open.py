"""Opening a state: creation, identity, damaged files, schema versions, configurations."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from tunectl.diags import DiagnosticError
from tunectl.states import ExperimentRecord, State, TrialRecord, schema


def only_error(exc: pytest.ExceptionInfo[DiagnosticError]) -> tuple[str, str]:
    [diag] = exc.value.diags
    assert diag.severity == "error"
    return diag.summary, diag.detail


def make_state(path: Path, trials: int = 0) -> None:
    with State.open(path, create=True, config_id="cfg-1") as st, st.transaction():
        st.put_experiment(ExperimentRecord("mnist"))
        for n in range(trials):
            st.add_trial(TrialRecord("mnist", n, f"id-{n}", {"lr": n, "pad": "x" * 200}))


def test_create_sets_identity_and_serial(db_path: Path) -> None:
    with State.open(db_path, create=True, config_id="cfg-1") as st:
        assert st.path == db_path
        assert st.serial == 0
        assert st.config_id == "cfg-1"
        lineage = st.lineage
        assert len(lineage) == 36
    with State.open(db_path, create=False) as st:
        assert st.lineage == lineage
        assert st.serial == 0
        assert st.config_id == "cfg-1"
    db = sqlite_utils.Database(db_path)
    assert set(db.table_names()) == set(schema.TABLES)
    assert db.journal_mode == "wal"
    assert db.table("meta").get("schema_version")["value"] == schema.current_version()
    db.close()
    # Creation leaves no temporary files behind.
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["tunectl.db"]


def test_missing_state_without_create(db_path: Path) -> None:
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False)
    summary, detail = only_error(exc)
    assert summary == "No state"
    assert "tunectl init" in detail and "tunectl apply" in detail
    assert not db_path.exists()


def test_creating_over_existing_state_keeps_it(db_path: Path) -> None:
    make_state(db_path, trials=2)
    with State.open(db_path, create=True, config_id="cfg-1") as st:
        assert len(st.list_trials("mnist")) == 2


def corrupt_cases(path: Path) -> dict[str, bytes]:
    make_state(path, trials=300)
    good = path.read_bytes()
    assert len(good) > 8 * 4096
    page1 = bytearray(good)
    page1[100:4096] = os.urandom(3996)
    return {
        "random bytes": os.urandom(50_000),
        "empty file": b"",
        "text": b"this is not a database\n",
        "truncated": good[: len(good) // 2],
        "truncated header": good[:60],
        "garbled schema page": bytes(page1),
    }


@pytest.mark.parametrize(
    "case",
    ["random bytes", "empty file", "text", "truncated", "truncated header", "garbled schema page"],
)
@pytest.mark.parametrize("create", [False, True])
def test_corrupt_file_is_refused_and_untouched(tmp_path: Path, case: str, create: bool) -> None:
    path = tmp_path / "tunectl.db"
    content = corrupt_cases(tmp_path / "source.db")[case]
    path.write_bytes(content)
    with pytest.raises(DiagnosticError) as exc:
        State.open(path, create=create)
    summary, detail = only_error(exc)
    assert summary == "Failed to load state"
    assert str(path) in detail and "corrupt" in detail
    assert "no backup" in detail.lower()
    assert path.read_bytes() == content


def test_corrupt_file_points_at_backup(db_path: Path) -> None:
    make_state(db_path)
    with State.open(db_path, create=False) as st:
        backup = st.backup()
    db_path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False)
    _, detail = only_error(exc)
    assert str(backup) in detail
    assert backup.name == "tunectl.db.backup"


def test_sqlite_file_that_is_not_a_state(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db = sqlite_utils.Database(db_path)
    db.table("people").insert({"name": "ada"})
    db.close()
    content = db_path.read_bytes()
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=True)
    summary, detail = only_error(exc)
    assert summary == "Failed to load state"
    assert "not a tunectl state" in detail
    assert db_path.read_bytes() == content


def test_state_missing_tables_is_corrupt(db_path: Path) -> None:
    make_state(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TABLE outputs")
    conn.commit()
    conn.close()
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False)
    assert "tables are missing (outputs)" in only_error(exc)[1]


def test_unreadable_path(db_path: Path) -> None:
    db_path.mkdir(parents=True)  # a directory where the state file should be
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=True)
    summary, detail = only_error(exc)
    assert summary == "Failed to load state"
    assert "could not be read" in detail


def set_schema_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.commit()
    conn.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    make_state(db_path)
    newer = schema.current_version() + 1
    set_schema_version(db_path, newer)
    content = db_path.read_bytes()
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False)
    assert only_error(exc) == (
        "Unsupported state version",
        f"This state was written by a newer tunectl (schema {newer}); upgrade tunectl.",
    )
    assert db_path.read_bytes() == content


def write_version_0_state(path: Path) -> None:
    """A state as the first tunectl release would have left it before any table existed:
    the oldest schema there is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", 0), ("lineage", "old-lineage"), ("serial", 7), ("config_id", "c")],
    )
    conn.commit()
    conn.close()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_old_schema_is_migrated_after_a_backup(db_path: Path) -> None:
    write_version_0_state(db_path)
    old = dump(db_path)
    with State.open(db_path, create=False, config_id="c") as st:
        assert st.lineage == "old-lineage"
        assert st.serial == 7  # an upgrade changes the schema, not the content
        st.put_experiment(ExperimentRecord("mnist"))
        assert st.serial == 8
    backup = db_path.with_name("tunectl.db.schema-v0.backup")
    assert dump(backup) == old
    db = sqlite_utils.Database(db_path)
    assert db.table("meta").get("schema_version")["value"] == schema.current_version()
    assert set(schema.TABLES) <= set(db.table_names())
    db.close()


def test_migrations_run_in_order(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_state(db_path)
    base = schema.current_version()

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE notes (text TEXT)")

    def fill_notes(conn: sqlite3.Connection) -> None:  # fails unless add_notes ran first
        conn.execute("INSERT INTO notes VALUES ('migrated')")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_notes, fill_notes])
    with State.open(db_path, create=False) as st:
        assert st.serial == 1
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT text FROM notes").fetchall() == [("migrated",)]
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (base + 2,)
    conn.close()
    assert db_path.with_name(f"tunectl.db.schema-v{base}.backup").exists()


def test_failing_migration_leaves_state_as_it_was(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_state(db_path)
    base = schema.current_version()

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE notes (text TEXT)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_notes, broken])
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False)
    summary, detail = only_error(exc)
    assert summary == "Failed to upgrade state"
    assert f"schema-v{base}.backup" in detail
    db = sqlite_utils.Database(db_path)
    assert "notes" not in db.table_names()
    assert db.table("meta").get("schema_version")["value"] == base
    db.close()


def test_config_id_mismatch(db_path: Path) -> None:
    make_state(db_path)
    with pytest.raises(DiagnosticError) as exc:
        State.open(db_path, create=False, config_id="cfg-2")
    summary, detail = only_error(exc)
    assert summary == "State belongs to another configuration"
    assert "'cfg-1'" in detail and "'cfg-2'" in detail
    assert "its own state path" in detail and "backend key" in detail
    # Without a configuration (e.g. `tunectl show` of a path) any state opens.
    State.open(db_path, create=False).close()


def test_state_without_config_id_is_claimed(db_path: Path) -> None:
    State.open(db_path, create=True).close()
    with State.open(db_path, create=False, config_id="cfg-9") as st:
        assert st.config_id == "cfg-9"
        assert st.serial == 0
    with State.open(db_path, create=False) as st:
        assert st.config_id == "cfg-9"


def test_backup_is_a_readable_copy(db_path: Path) -> None:
    make_state(db_path, trials=3)
    with State.open(db_path, create=False) as st:
        backup = st.backup()
        st.put_experiment(ExperimentRecord("cifar"))  # after the copy: not in it
        lineage, serial = st.lineage, st.serial
    assert backup == db_path.with_name("tunectl.db.backup")
    with State.open(backup, create=False, config_id="cfg-1") as copy:
        assert copy.lineage == lineage
        assert copy.serial == serial - 1
        assert [e.name for e in copy.list_experiments()] == ["mnist"]
        assert len(copy.list_trials("mnist")) == 3


def test_backup_refused_inside_transaction(state: State) -> None:
    with state.transaction(), pytest.raises(RuntimeError):
        state.backup()


def test_open_state_alias(db_path: Path) -> None:
    from tunectl.states import open_state

    with open_state(db_path, create=True) as st:
        assert isinstance(st, State)


def test_damage_found_after_opening_is_a_diagnostic(db_path: Path) -> None:
    make_state(db_path, trials=300)
    conn = sqlite3.connect(db_path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()[0]
    conn.close()
    content = bytearray(db_path.read_bytes())
    content[(root - 1) * page_size : root * page_size] = os.urandom(page_size)
    db_path.write_bytes(bytes(content))
    with State.open(db_path, create=False) as st:  # the header and schema are intact
        with pytest.raises(DiagnosticError) as exc:
            st.list_trials("mnist")
        summary, detail = only_error(exc)
        assert summary == "Failed to load state"
        assert "malformed" in detail
    assert db_path.read_bytes() == bytes(content)


def test_state_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    with pytest.raises(DiagnosticError) as exc:
        State.open(tmp_path / "state" / "tunectl.db", create=True)
    summary, detail = only_error(exc)
    assert summary == "Failed to create state"
    assert str(tmp_path / "state" / "tunectl.db") in detail
