"""Statuses: members of `tunectl.status`'s enums in records, their values in the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tunectl.states import ExperimentRecord, State, TaskRecord, TrialRecord
from tunectl.status import ExperimentStatus, TaskRecordStatus, TrialStatus


def _task(number: int, status: str | TaskRecordStatus) -> TaskRecord:
    return TaskRecord(f"mnist/{number}", "mnist", number, 0, "main", 0, "local", status=status)


def test_records_read_back_carry_enum_members(mnist: State) -> None:
    mnist.add_trial(TrialRecord("mnist", 0, "t0", {}, status=TrialStatus.RUNNING))
    mnist.add_trial(TrialRecord("mnist", 1, "t1", {}, status="complete"))  # a value works too
    mnist.add_task(_task(0, TaskRecordStatus.RUNNING))
    mnist.update_trial("mnist", 0, status=TrialStatus.PRUNED)
    mnist.update_task("mnist/0", status="lost")

    experiment = mnist.get_experiment("mnist")
    assert experiment is not None and experiment.status is ExperimentStatus.PENDING
    assert [t.status for t in mnist.list_trials("mnist")] == [
        TrialStatus.PRUNED,
        TrialStatus.COMPLETE,
    ]
    assert all(isinstance(t.status, TrialStatus) for t in mnist.list_trials("mnist"))
    task = mnist.get_task("mnist/0")
    assert task is not None and task.status is TaskRecordStatus.LOST
    assert [t.number for t in mnist.list_trials("mnist", TrialStatus.COMPLETE)] == [1]
    assert [t.number for t in mnist.list_trials("mnist", ["pruned"])] == [0]

    counts = mnist.trial_counts("mnist")
    assert set(counts) == set(TrialStatus)
    assert counts[TrialStatus.COMPLETE] == counts["complete"] == 1
    assert mnist.summary()["experiments"]["mnist"]["trials"]["pruned"] == 1


def test_the_file_keeps_the_values(mnist: State, db_path: Path) -> None:
    record = mnist.get_experiment("mnist")
    assert record is not None
    record.status = ExperimentStatus.SUCCEEDED
    mnist.put_experiment(record)
    mnist.add_trial(TrialRecord("mnist", 0, "t0", {}, status=TrialStatus.FAILED))
    mnist.add_task(_task(0, TaskRecordStatus.SUBMITTING))
    with sqlite3.connect(db_path) as conn:
        rows = [
            conn.execute(f"SELECT status, typeof(status) FROM {table}").fetchone()
            for table in ("experiments", "trials", "tasks")
        ]
    assert rows == [("succeeded", "text"), ("failed", "text"), ("submitting", "text")]


@pytest.mark.parametrize(
    ("write", "kind"),
    [
        (lambda st: st.put_experiment(ExperimentRecord("x", status="done")), "experiment"),
        (lambda st: st.add_trial(TrialRecord("mnist", 0, "t0", {}, status="ok")), "trial"),
        (lambda st: st.update_trial("mnist", 0, status="succeeded"), "trial"),
        (lambda st: st.add_task(_task(0, "complete")), "task"),
        (lambda st: st.list_trials("mnist", "done"), "trial"),
    ],
)
def test_unknown_statuses_are_refused(mnist: State, write, kind: str) -> None:
    mnist.add_trial(TrialRecord("mnist", 0, "t0", {}))
    with pytest.raises(ValueError, match=f"is not a valid {kind} status"):
        write(mnist)
