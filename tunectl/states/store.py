"""`State`: the SQLite state file, read and written through a small API of plain records.

Contract:

* Every committed transaction that changed anything adds exactly 1 to `serial`; nested
  `transaction()` blocks join the outer one (a failing inner block is rolled back alone).
  A write call outside `transaction()` is a transaction of its own.
* `lineage` is set when the state is created and never changes; `config_id` ties the state
  to one configuration directory.
* Opening never writes to a file that fails its checks (see `files.py`); a state written by
  an older tunectl is copied to `<path>.schema-v<N>.backup` and then upgraded in one
  transaction.
* Missing rows: `get_*` return None; `update_*` raise `LookupError`; adding a row that
  exists raises `ValueError`. Those are bugs of the caller, not diagnostics.
* Not thread-safe: use a `State` from the thread that opened it.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tunectl.states import files, forget, schema
from tunectl.states.records import (
    ExperimentRecord,
    MetricRecord,
    ModelObjectRecord,
    TaskRecord,
    TrialRecord,
)
from tunectl.states.rows import RowCodec, check_member, dump_json, quote
from tunectl.status import (
    ACTIVE_TASK_STATUSES,
    ExperimentStatus,
    TaskRecordStatus,
    TrialStatus,
)

_EXPERIMENTS = RowCodec(
    "experiments",
    ExperimentRecord,
    json_fields=["config"],
    enum_fields={"status": ExperimentStatus},
)
_TRIALS = RowCodec(
    "trials",
    TrialRecord,
    json_fields=["params", "values", "internal", "system_attrs", "objective_values"],
    enum_fields={"status": TrialStatus},
)
_TASKS = RowCodec(
    "tasks", TaskRecord, json_fields=["file_cursors"], enum_fields={"status": TaskRecordStatus}
)
_METRICS = RowCodec("metrics", MetricRecord, nan_fields=["value"])
_MODEL_OBJECTS = RowCodec("model_objects", ModelObjectRecord)

# Rows are found by these; updates may not change them. (update_trial's own parameters
# already take a trial's.)
_TASK_IDENTITY = frozenset({"key", "experiment", "trial_number", "generation"})

# `generation = ?` where None means the experiment's current generation.
_GENERATION = "generation = coalesce(?, (SELECT generation FROM experiments WHERE name = ?))"

# Spelled out so that SQLite can use the partial index `tasks_active`.
_ACTIVE = "(" + ", ".join(f"'{s}'" for s in ACTIVE_TASK_STATUSES) + ")"
_ENDED = "(" + ", ".join(f"'{s.value}'" for s in TrialStatus if s.ended) + ")"
_COMPLETE = TrialStatus.COMPLETE.value

_UPSERT_EXPERIMENT = (
    _EXPERIMENTS.insert
    + " ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{quote(f)} = excluded.{quote(f)}" for f in _EXPERIMENTS.fields if f != "name")
)


@files.reports_damage
class State:
    """An open state file. Create with `State.open`; close with `close()` (or `with`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, Any]) -> None:
        self._path = path
        self._conn = conn
        self._lineage = str(meta["lineage"])
        self._config_id = meta.get("config_id")
        self._depth = 0  # nesting of transaction()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool, config_id: str | None = None) -> State:
        """Open the state at `path`, creating it when missing and `create` is true.

        Raises `DiagnosticError`: "No state", "Failed to load state", "Unsupported state
        version", "State belongs to another configuration", "Failed to upgrade state".
        """
        path = Path(path)
        if not path.exists():
            if not create:
                raise files.no_state(path)
            files.create(path, lambda conn: schema.build(conn, config_id))
        files.check_file(path)
        try:
            files.make_private(path)  # a state from an older release is 0644
            conn = files.connect(path)
        except sqlite3.DatabaseError as exc:
            raise files.load_failed(path, f"SQLite reports {str(exc)!r}") from None
        try:
            meta = schema.read_meta(conn, path)
            version = int(meta["schema_version"])
            if version < schema.current_version():
                # Copied first, so the backup is the file exactly as the older tunectl left it.
                backup = path.with_name(f"{path.name}.schema-v{version}.backup")
                files.copy(conn, backup)
                files.configure(conn)
                schema.upgrade(conn, path, backup)
            else:
                files.configure(conn)
            stored = meta.get("config_id")
            if config_id is not None and stored and stored != config_id:
                raise files.other_configuration(path, stored, config_id)
            state = cls(path, conn, meta)
            if config_id is not None and not stored:
                state._claim(config_id)
            return state
        except BaseException:
            conn.close()
            raise

    def _claim(self, config_id: str) -> None:
        # A state created without a configuration (e.g. restored by hand) is claimed by the
        # first configuration that opens it. Meta is not content: the serial stays.
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('config_id', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (config_id,),
        )
        self._config_id = config_id

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def lineage(self) -> str:
        return self._lineage

    @property
    def config_id(self) -> str | None:
        return self._config_id

    @property
    def salt(self) -> bytes:
        """The key of the HMACs that stand for sensitive values in the stored configuration
        and in plan files (`tunectl.config.sensitive`): random, made once per state and kept
        in it, so a plan file alone gives no way to test guesses of a secret. A state made
        before salts existed gets one on first use (meta, not content: the serial stays)."""
        return self._secret("salt")

    @property
    def serial(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
        return int(row[0])

    def plan_key(self) -> bytes:
        """The key that signs this state's plan files (`tunectl.plans.planfile`).

        Random, made on first use and kept in the meta table, written nowhere else: a plan
        file can be signed only by someone who can read the state. Making it changes no
        content, so the serial stays. (A key of its own, not the salt: one key, one use.)
        """
        return self._secret("plan_key")

    def _secret(self, name: str) -> bytes:
        """The random 32-byte value kept in meta under `name`, made on first use."""
        select = "SELECT value FROM meta WHERE key = ?"
        row = self._conn.execute(select, (name,)).fetchone()
        if row is None:
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (name, secrets.token_hex(32)),
            )
            row = self._conn.execute(select, (name,)).fetchone()
        return bytes.fromhex(str(row[0]))

    # -- transactions and backups ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all or none are kept, and the serial goes up once if any changed."""
        conn = self._conn
        if self._depth:
            savepoint = f"tunectl_{self._depth}"
            conn.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                raise
            else:
                conn.execute(f"RELEASE {savepoint}")
            finally:
                self._depth -= 1
            return
        # IMMEDIATE takes the write lock now, so the transaction cannot fail half-way
        # because another connection wrote first.
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        # Changes undone by a rolled-back inner block still count: a spare serial is
        # harmless, a missed one would let a stale plan apply.
        before = conn.total_changes
        try:
            yield
            if conn.total_changes != before:
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'serial'")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    @contextmanager
    def _write(self) -> Iterator[None]:
        # One statement is atomic by itself: inside a transaction it needs no savepoint.
        if self._depth:
            yield
        else:
            with self.transaction():
                yield

    def snapshot(self, target: Path) -> Path:
        """A consistent copy of the committed state at `target` (atomically replaced)."""
        if self._depth:
            raise RuntimeError("State.snapshot() cannot run inside a transaction.")
        return files.copy(self._conn, target)

    def backup(self) -> Path:
        """Copy the committed state to `<path>.backup` (atomically replaced) and return it."""
        if self._depth:
            raise RuntimeError("State.backup() cannot run inside a transaction.")
        return files.copy(self._conn, files.backup_path(self._path))

    # -- generations -------------------------------------------------------------------

    def new_generation(self) -> int:
        """Draw the next generation of this lineage: larger than any generation the state
        ever held, including those of destroyed or removed experiments."""
        with self._write():
            self._conn.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), "
                "(SELECT coalesce(max(generation), 0) FROM experiments)) + 1 "
                "WHERE key = 'last_generation'"
            )
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'last_generation'"
            ).fetchone()
        return int(row[0])

    def is_legacy_generation(self, generation: int) -> bool:
        """Whether `generation` was made before the state recorded model objects and
        put the lineage in model paths (by an older tunectl, before the upgrade)."""
        row = self._conn.execute(
            "SELECT value FROM meta WHERE key = 'legacy_generation'"
        ).fetchone()
        return generation <= int(row[0])

    # -- experiments -------------------------------------------------------------------

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        row = self._conn.execute(_EXPERIMENTS.select + " WHERE name = ?", (name,)).fetchone()
        return _EXPERIMENTS.from_row(row) if row else None

    def list_experiments(self) -> list[ExperimentRecord]:
        rows = self._conn.execute(_EXPERIMENTS.select + " ORDER BY name")
        return [_EXPERIMENTS.from_row(row) for row in rows]

    def put_experiment(self, rec: ExperimentRecord) -> None:
        """Insert or update; an update keeps the experiment's trials (no REPLACE)."""
        check_member("experiment", rec.status, ExperimentStatus)
        with self._write():
            self._conn.execute(_UPSERT_EXPERIMENT, _EXPERIMENTS.to_row(rec))

    def delete_experiment(self, name: str) -> None:
        """Remove the experiment with its trials, tasks, metrics and model records of every
        generation. Its generations stay drawn: a new experiment never reuses them."""
        with self._write():
            for table in ("model_objects", "metrics", "tasks", "trials"):
                self._conn.execute(f"DELETE FROM {table} WHERE experiment = ?", (name,))
            self._conn.execute("DELETE FROM experiments WHERE name = ?", (name,))

    # -- trials ------------------------------------------------------------------------

    def add_trial(self, rec: TrialRecord) -> None:
        """Raises `ValueError` if the trial exists, `LookupError` if its experiment does not."""
        check_member("trial", rec.status, TrialStatus)
        try:
            with self._write():
                self._conn.execute(_TRIALS.insert, _TRIALS.to_row(rec))
        except sqlite3.IntegrityError as exc:
            what = f"Trial {rec.number} of experiment {rec.experiment!r}"
            if "FOREIGN KEY" in str(exc):
                raise LookupError(f"{what} cannot be added: no such experiment.") from None
            what += f" (generation {rec.generation})"
            raise ValueError(f"{what} already exists.") from None

    def update_trial(
        self, experiment: str, number: int, generation: int | None = None, **fields: Any
    ) -> None:
        _TRIALS.check_fields("trial", fields, frozenset())
        where = f" WHERE experiment = ? AND {_GENERATION} AND number = ?"
        params = (experiment, generation, experiment, number)
        with self._write():
            if fields:
                sets = ", ".join(f"{quote(f)} = ?" for f in fields)
                values = tuple(_TRIALS.encode(f, v) for f, v in fields.items())
                found = self._conn.execute(
                    f"UPDATE trials SET {sets}" + where, values + params
                ).rowcount
            else:
                found = self._conn.execute("SELECT 1 FROM trials" + where, params).fetchone()
        if not found:
            raise LookupError(
                f"Trial {number} of experiment {experiment!r} does not exist"
                + (f" in generation {generation}." if generation is not None else ".")
            )

    def get_trial(
        self, experiment: str, number: int, generation: int | None = None
    ) -> TrialRecord | None:
        row = self._conn.execute(
            _TRIALS.select + f" WHERE experiment = ? AND {_GENERATION} AND number = ?",
            (experiment, generation, experiment, number),
        ).fetchone()
        return _TRIALS.from_row(row) if row else None

    def list_trials(
        self,
        experiment: str,
        status: str | Iterable[str] | None = None,
        generation: int | None = None,
    ) -> list[TrialRecord]:
        sql = _TRIALS.select + f" WHERE experiment = ? AND {_GENERATION}"
        params: list[Any] = [experiment, generation, experiment]
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                check_member("trial", s, TrialStatus)
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params += [TrialStatus(s).value for s in statuses]
        rows = self._conn.execute(sql + " ORDER BY number", params)
        return [_TRIALS.from_row(row) for row in rows]

    def trial_counts(self, experiment: str, generation: int | None = None) -> dict[str, int]:
        """Trials per status (`TrialStatus` members), every status present (0 when none)."""
        counts: dict[str, int] = dict.fromkeys(TrialStatus, 0)
        rows = self._conn.execute(
            f"SELECT status, count(*) FROM trials WHERE experiment = ? AND {_GENERATION} "
            "GROUP BY status",
            (experiment, generation, experiment),
        )
        counts.update((TrialStatus(status), count) for status, count in rows)
        return counts

    def next_trial_number(self, experiment: str, generation: int | None = None) -> int:
        """One past the highest trial number, forgotten ones too; 0 without trials."""
        row = self._conn.execute(
            f"SELECT coalesce(max(number), -1) FROM trials WHERE experiment = ? AND {_GENERATION}",
            (experiment, generation, experiment),
        ).fetchone()
        return max(row[0], forget.forgotten(self._conn, experiment, generation)) + 1

    def forget_trial(self, experiment: str, number: int) -> None:
        """`state rm experiment.X.trial[N]`: the trial, its tasks, metrics and model records
        (`tunectl.states.forget`)."""
        forget.forget_trial(self, self._conn, experiment, number)

    def best_trial(
        self, experiment: str, direction: str, generation: int | None = None
    ) -> TrialRecord | None:
        """The complete trial with the best value; the lowest number wins a tie."""
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}.")
        order = "DESC" if direction == "maximize" else "ASC"
        row = self._conn.execute(
            _TRIALS.select + f" WHERE experiment = ? AND {_GENERATION} AND status = '{_COMPLETE}'"
            f" AND value IS NOT NULL ORDER BY value {order}, number LIMIT 1",
            (experiment, generation, experiment),
        ).fetchone()
        return _TRIALS.from_row(row) if row else None

    def count_ended_after(self, experiment: str, number: int, generation: int | None = None) -> int:
        """Ended (complete, pruned, failed) trials numbered after `number`."""
        row = self._conn.execute(
            f"SELECT count(*) FROM trials WHERE experiment = ? AND {_GENERATION} AND number > ?"
            f" AND status IN {_ENDED}",
            (experiment, generation, experiment, number),
        ).fetchone()
        return int(row[0])

    # -- tasks -------------------------------------------------------------------------

    def add_task(self, rec: TaskRecord) -> None:
        """Raises `ValueError` if the key exists, `LookupError` if its trial does not."""
        check_member("task", rec.status, TaskRecordStatus)
        try:
            with self._write():
                self._conn.execute(_TASKS.insert, _TASKS.to_row(rec))
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise LookupError(
                    f"Task {rec.key!r} cannot be added: trial {rec.trial_number} of experiment "
                    f"{rec.experiment!r} (generation {rec.generation}) does not exist."
                ) from None
            raise ValueError(f"Task {rec.key!r} already exists.") from None

    def update_task(self, key: str, **fields: Any) -> None:
        _TASKS.check_fields("task", fields, _TASK_IDENTITY)
        with self._write():
            if fields:
                sets = ", ".join(f"{quote(f)} = ?" for f in fields)
                values = tuple(_TASKS.encode(f, v) for f, v in fields.items())
                found = self._conn.execute(
                    f"UPDATE tasks SET {sets} WHERE key = ?", values + (key,)
                ).rowcount
            else:
                found = self._conn.execute("SELECT 1 FROM tasks WHERE key = ?", (key,)).fetchone()
        if not found:
            raise LookupError(f"Task {key!r} does not exist.")

    def get_task(self, key: str) -> TaskRecord | None:
        row = self._conn.execute(_TASKS.select + " WHERE key = ?", (key,)).fetchone()
        return _TASKS.from_row(row) if row else None

    def tasks_for_trial(
        self, experiment: str, number: int, generation: int | None = None
    ) -> list[TaskRecord]:
        rows = self._conn.execute(
            _TASKS.select + f" WHERE experiment = ? AND {_GENERATION} AND trial_number = ?"
            " ORDER BY task_index, attempt",
            (experiment, generation, experiment, number),
        )
        return [_TASKS.from_row(row) for row in rows]

    def active_tasks(self, experiment: str | None = None) -> list[TaskRecord]:
        """Tasks that may still run somewhere (submitting, pending, running), of every
        generation, so that a replaced experiment's leftovers are found too."""
        sql = _TASKS.select + f" WHERE status IN {_ACTIVE}"
        params: tuple[Any, ...] = ()
        if experiment is not None:
            sql += " AND experiment = ?"
            params = (experiment,)
        order = " ORDER BY experiment, generation, trial_number, task_index, attempt"
        return [_TASKS.from_row(row) for row in self._conn.execute(sql + order, params)]

    def all_tasks(self, experiment: str) -> list[TaskRecord]:
        """Every task of an experiment, of every generation."""
        rows = self._conn.execute(
            _TASKS.select
            + " WHERE experiment = ? ORDER BY generation, trial_number, task_index, attempt",
            (experiment,),
        )
        return [_TASKS.from_row(row) for row in rows]

    # -- metrics -----------------------------------------------------------------------

    def add_metrics(self, records: list[MetricRecord]) -> None:
        if not records:
            return
        with self._write():
            self._conn.executemany(_METRICS.insert, [_METRICS.to_row(r) for r in records])

    def metrics_for(
        self, experiment: str, number: int, generation: int | None = None
    ) -> list[MetricRecord]:
        """A trial's metrics by step, then time; values without a step come last."""
        rows = self._conn.execute(
            _METRICS.select + f" WHERE experiment = ? AND {_GENERATION} AND trial_number = ?"
            " ORDER BY step IS NULL, step, ts, rowid",
            (experiment, generation, experiment, number),
        )
        return [_METRICS.from_row(row) for row in rows]

    # -- model objects -----------------------------------------------------------------

    def record_model_objects(
        self, experiment: str, generation: int, number: int, objects: Iterable[tuple[str, int]]
    ) -> None:
        """Record the (location, size) of what a trial stored, replacing earlier records."""
        rows = [
            _MODEL_OBJECTS.to_row(ModelObjectRecord(experiment, number, loc, size, generation))
            for loc, size in objects
        ]
        with self._write():
            self._conn.execute(
                "DELETE FROM model_objects "
                "WHERE experiment = ? AND generation = ? AND trial_number = ?",
                (experiment, generation, number),
            )
            self._conn.executemany(_MODEL_OBJECTS.insert, rows)

    def model_objects(
        self, experiment: str, number: int | None = None, generation: int | None = None
    ) -> list[ModelObjectRecord]:
        """What the experiment's trials stored, of every generation unless one is given;
        of one trial when `number` is given (in the current generation by default)."""
        sql = _MODEL_OBJECTS.select + " WHERE experiment = ?"
        params: list[Any] = [experiment]
        if number is not None:
            sql += f" AND {_GENERATION} AND trial_number = ?"
            params += [generation, experiment, number]
        elif generation is not None:
            sql += " AND generation = ?"
            params.append(generation)
        rows = self._conn.execute(sql + " ORDER BY generation, trial_number, location", params)
        return [_MODEL_OBJECTS.from_row(row) for row in rows]

    def model_usage(self, experiment: str) -> tuple[int, int]:
        """(objects, bytes) the experiment's trials stored, every generation."""
        row = self._conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM model_objects WHERE experiment = ?",
            (experiment,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def forget_model_objects(self, experiment: str, generation: int, number: int) -> None:
        """Drop a trial's object records (once the objects are deleted)."""
        with self._write():
            self._conn.execute(
                "DELETE FROM model_objects "
                "WHERE experiment = ? AND generation = ? AND trial_number = ?",
                (experiment, generation, number),
            )

    # -- outputs -----------------------------------------------------------------------

    def set_outputs(self, outputs: dict[str, tuple[Any, bool]]) -> None:
        """Replace all outputs: name -> (JSON-able value, sensitive)."""
        rows = [(name, dump_json(value), int(bool(s))) for name, (value, s) in outputs.items()]
        with self._write():
            self._conn.execute("DELETE FROM outputs")
            self._conn.executemany("INSERT INTO outputs VALUES (?, ?, ?)", rows)

    def get_outputs(self) -> dict[str, tuple[Any, bool]]:
        rows = self._conn.execute("SELECT name, value_json, sensitive FROM outputs ORDER BY name")
        return {name: (json.loads(value), bool(s)) for name, value, s in rows}

    # -- summary -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts for every experiment, in one query that reads no trial rows into Python:

        ``{"lineage", "serial", "config_id", "experiments": {name: {"generation", "status",
        "trials": {status: count, every status present}, "total"}}}``
        """
        experiments: dict[str, dict[str, Any]] = {}
        rows = self._conn.execute(
            "SELECT e.name, e.generation, e.status, t.status, count(t.number) "
            "FROM experiments e LEFT JOIN trials t "
            "ON t.experiment = e.name AND t.generation = e.generation "
            "GROUP BY e.name, t.status ORDER BY e.name"
        )
        for name, generation, status, trial_status, count in rows:
            entry = experiments.setdefault(
                name,
                {
                    "generation": generation,
                    "status": status,
                    "trials": dict.fromkeys((s.value for s in TrialStatus), 0),
                    "total": 0,
                },
            )
            if trial_status is not None:
                entry["trials"][trial_status] = count
                entry["total"] += count
        return {
            "lineage": self.lineage,
            "serial": self.serial,
            "config_id": self.config_id,
            "experiments": experiments,
        }
