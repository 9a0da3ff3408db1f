"""Reading and writing records, and how transactions move the serial."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tunectl.states import (
    ExperimentRecord,
    LockInfo,
    MetricRecord,
    State,
    TaskRecord,
    TrialRecord,
)


def trial(number: int, **fields: Any) -> TrialRecord:
    return TrialRecord("mnist", number, f"mnist-{number}", {"lr": 0.1 * number}, **fields)


def task(number: int, index: int = 0, attempt: int = 0, **fields: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "key": f"mnist/{number}/{index}/{attempt}",
        "experiment": "mnist",
        "trial_number": number,
        "task_index": index,
        "task_name": f"step{index}",
        "attempt": attempt,
        "provider": "local",
    }
    return TaskRecord(**{**values, **fields})


# -- serial and transactions -------------------------------------------------------------


def test_each_write_call_is_one_transaction(state: State) -> None:
    assert state.serial == 0
    state.put_experiment(ExperimentRecord("mnist"))
    assert state.serial == 1
    state.add_trial(trial(0))
    assert state.serial == 2


def test_transaction_increments_serial_once(mnist: State) -> None:
    before = mnist.serial
    with mnist.transaction():
        for n in range(5):
            mnist.add_trial(trial(n))
        mnist.update_trial("mnist", 3, status="running")
        with mnist.transaction():  # nested: joins the outer one
            mnist.add_task(task(3))
            with mnist.transaction():
                mnist.update_task("mnist/3/0/0", status="pending")
        assert mnist.serial == before  # not committed yet
    assert mnist.serial == before + 1


def test_transaction_without_changes_keeps_serial(mnist: State) -> None:
    before = mnist.serial
    with mnist.transaction():
        mnist.get_experiment("mnist")
        mnist.delete_experiment("no-such-experiment")
    assert mnist.serial == before


def test_failed_transaction_rolls_back(mnist: State) -> None:
    before = mnist.serial
    with pytest.raises(RuntimeError), mnist.transaction():
        mnist.add_trial(trial(0))
        raise RuntimeError("boom")
    assert mnist.get_trial("mnist", 0) is None
    assert mnist.serial == before


def test_failed_inner_transaction_rolls_back_alone(mnist: State) -> None:
    before = mnist.serial
    with mnist.transaction():
        mnist.add_trial(trial(0))
        with pytest.raises(RuntimeError), mnist.transaction():
            mnist.add_trial(trial(1))
            raise RuntimeError("boom")
    assert [t.number for t in mnist.list_trials("mnist")] == [0]
    assert mnist.serial == before + 1


def test_committed_writes_are_visible_to_another_connection(mnist: State) -> None:
    with mnist.transaction():
        mnist.add_trial(trial(0))
        with State.open(mnist.path, create=False) as other:
            assert other.get_trial("mnist", 0) is None
    with State.open(mnist.path, create=False) as other:
        assert other.get_trial("mnist", 0) == trial(0)
        assert other.serial == mnist.serial


# -- experiments ---------------------------------------------------------------------------


def test_experiment_crud(state: State) -> None:
    rec = ExperimentRecord(
        "mnist", config={"b": [1, 2], "a": {"x": None}}, config_hash="abc", created_at=1.5
    )
    state.put_experiment(rec)
    state.put_experiment(ExperimentRecord("cifar"))
    assert state.get_experiment("mnist") == rec
    assert state.get_experiment("nope") is None
    assert [e.name for e in state.list_experiments()] == ["cifar", "mnist"]
    rec.status, rec.stop_reason, rec.finished_at = "stopped", "max_trials reached", 9.0
    state.put_experiment(rec)
    assert state.get_experiment("mnist") == rec
    assert rec.to_dict()["config"] == {"b": [1, 2], "a": {"x": None}}


def test_upsert_keeps_trials(mnist: State) -> None:
    mnist.add_trial(trial(0))
    mnist.put_experiment(ExperimentRecord("mnist", status="running"))
    assert len(mnist.list_trials("mnist")) == 1


def test_delete_experiment_removes_everything_of_every_generation(mnist: State) -> None:
    mnist.put_experiment(ExperimentRecord("cifar"))
    mnist.add_trial(TrialRecord("cifar", 0, "c0", {}))
    for generation in (1, 2):
        mnist.put_experiment(ExperimentRecord("mnist", generation=generation))
        mnist.add_trial(trial(0, generation=generation))
        mnist.add_task(task(0, generation=generation, key=f"k{generation}"))
        mnist.add_metrics([MetricRecord("mnist", 0, "loss", 1, 0.5, 1.0, generation=generation)])
    mnist.delete_experiment("mnist")
    assert mnist.get_experiment("mnist") is None
    for generation in (1, 2):
        assert mnist.list_trials("mnist", generation=generation) == []
        assert mnist.tasks_for_trial("mnist", 0, generation=generation) == []
        assert mnist.metrics_for("mnist", 0, generation=generation) == []
    assert len(mnist.list_trials("cifar")) == 1


def test_bad_experiment_status(state: State) -> None:
    with pytest.raises(ValueError, match="not a valid experiment status"):
        state.put_experiment(ExperimentRecord("mnist", status="done"))


# -- trials --------------------------------------------------------------------------------


def test_trial_crud(mnist: State) -> None:
    rec = trial(0, values={"loss": 0.25, "acc": 0.9}, created_at=3.0)
    mnist.add_trial(rec)
    assert mnist.get_trial("mnist", 0) == rec
    assert mnist.get_trial("mnist", 0, generation=1) == rec
    assert mnist.get_trial("mnist", 0, generation=2) is None
    assert mnist.get_trial("mnist", 1) is None
    mnist.update_trial(
        "mnist", 0, status="complete", value=0.9, values={"acc": 0.9}, last_step=10, message="ok"
    )
    got = mnist.get_trial("mnist", 0)
    assert got is not None
    assert (got.status, got.value, got.values, got.last_step) == ("complete", 0.9, {"acc": 0.9}, 10)


def test_add_existing_trial_fails(mnist: State) -> None:
    mnist.add_trial(trial(0))
    serial = mnist.serial
    with pytest.raises(ValueError, match="already exists"):
        mnist.add_trial(trial(0))
    assert mnist.serial == serial


def test_add_trial_of_unknown_experiment_fails(state: State) -> None:
    with pytest.raises(LookupError, match="no such experiment"):
        state.add_trial(trial(0))


def test_update_trial_errors(mnist: State) -> None:
    mnist.add_trial(trial(0))
    with pytest.raises(LookupError, match="Trial 5"):
        mnist.update_trial("mnist", 5, status="running")
    with pytest.raises(LookupError):
        mnist.update_trial("mnist", 0, generation=2, status="running")
    with pytest.raises(TypeError, match="no field 'colour'"):
        mnist.update_trial("mnist", 0, colour="red")
    with pytest.raises(ValueError, match="not a valid trial status"):
        mnist.update_trial("mnist", 0, status="succeeded")


def test_generation_defaults_to_the_experiments_current_one(mnist: State) -> None:
    mnist.add_trial(trial(0))
    mnist.add_trial(trial(1))
    mnist.put_experiment(ExperimentRecord("mnist", generation=2))
    assert mnist.list_trials("mnist") == []
    assert mnist.next_trial_number("mnist") == 0
    mnist.add_trial(trial(0, generation=2))
    mnist.update_trial("mnist", 0, status="running")  # generation 2
    assert mnist.get_trial("mnist", 0, generation=1).status == "pending"  # type: ignore[union-attr]
    assert mnist.get_trial("mnist", 0).status == "running"  # type: ignore[union-attr]
    assert [t.number for t in mnist.list_trials("mnist", generation=1)] == [0, 1]


def test_list_trials_filters_and_orders(mnist: State) -> None:
    statuses = ["complete", "running", "failed", "complete", "pruned", "pending"]
    with mnist.transaction():
        for n in reversed(range(len(statuses))):
            mnist.add_trial(trial(n, status=statuses[n]))
    assert [t.number for t in mnist.list_trials("mnist")] == [0, 1, 2, 3, 4, 5]
    assert [t.number for t in mnist.list_trials("mnist", "complete")] == [0, 3]
    assert [t.number for t in mnist.list_trials("mnist", ["running", "pending"])] == [1, 5]
    assert [t.number for t in mnist.list_trials("mnist", iter({"pruned"}))] == [4]
    assert mnist.list_trials("mnist", []) == []
    assert mnist.list_trials("other") == []
    with pytest.raises(ValueError):
        mnist.list_trials("mnist", "done")


def test_trial_counts_and_next_number(mnist: State) -> None:
    empty = {"pending": 0, "running": 0, "complete": 0, "pruned": 0, "failed": 0}
    assert mnist.trial_counts("mnist") == empty
    assert mnist.trial_counts("unknown") == empty
    assert mnist.next_trial_number("mnist") == 0
    with mnist.transaction():
        for n, status in enumerate(["complete", "complete", "failed", "running"]):
            mnist.add_trial(trial(n, status=status))
    assert mnist.trial_counts("mnist") == {**empty, "complete": 2, "failed": 1, "running": 1}
    assert mnist.next_trial_number("mnist") == 4


@pytest.mark.parametrize(("direction", "expected"), [("maximize", 1), ("minimize", 3)])
def test_best_trial(mnist: State, direction: str, expected: int) -> None:
    rows = [
        ("complete", 0.5),
        ("complete", 0.9),
        ("complete", 0.9),  # tie with 1: the lower number wins
        ("complete", 0.1),
        ("pruned", 5.0),  # not complete
        ("complete", None),  # no value
        ("running", -1.0),
        ("complete", math.nan),  # stored as NULL: no value
    ]
    with mnist.transaction():
        for n, (status, value) in enumerate(rows):
            mnist.add_trial(trial(n, status=status, value=value))
    best = mnist.best_trial("mnist", direction)
    assert best is not None and best.number == expected
    assert mnist.get_trial("mnist", 7).value is None  # type: ignore[union-attr]


def test_best_trial_none_and_bad_direction(mnist: State) -> None:
    assert mnist.best_trial("mnist", "maximize") is None
    with pytest.raises(ValueError, match="direction"):
        mnist.best_trial("mnist", "up")


# -- tasks ---------------------------------------------------------------------------------


def test_task_crud(mnist: State) -> None:
    mnist.add_trial(trial(0))
    rec = task(0, submitted_at=2.0)
    mnist.add_task(rec)
    assert mnist.get_task(rec.key) == rec
    assert mnist.get_task("nope") is None
    mnist.update_task(
        rec.key,
        handle_id="pid-12",
        status="succeeded",
        exit_code=0,
        log_cursor=120,
        file_cursors={"metrics.jsonl": 40},
        finished_at=3.0,
    )
    got = mnist.get_task(rec.key)
    assert got is not None
    assert (got.handle_id, got.status, got.exit_code) == ("pid-12", "succeeded", 0)
    assert (got.log_cursor, got.file_cursors) == (120, {"metrics.jsonl": 40})


def test_task_errors(mnist: State) -> None:
    with pytest.raises(LookupError, match="does not exist"):
        mnist.add_task(task(0))  # no trial 0
    mnist.add_trial(trial(0))
    mnist.add_task(task(0))
    with pytest.raises(ValueError, match="already exists"):
        mnist.add_task(task(0))
    with pytest.raises(LookupError):
        mnist.update_task("nope", status="running")
    with pytest.raises(ValueError, match="not a valid task status"):
        mnist.update_task("mnist/0/0/0", status="complete")
    with pytest.raises(ValueError, match="cannot be updated"):
        mnist.update_task("mnist/0/0/0", trial_number=2)


def test_tasks_for_trial_and_active_tasks(mnist: State) -> None:
    mnist.put_experiment(ExperimentRecord("cifar"))
    with mnist.transaction():
        mnist.add_trial(trial(0))
        mnist.add_trial(trial(1))
        mnist.add_trial(TrialRecord("cifar", 0, "c0", {}))
        mnist.add_task(task(0, index=1, attempt=0, status="running"))
        mnist.add_task(task(0, index=0, attempt=1, status="succeeded"))
        mnist.add_task(task(0, index=0, attempt=0, status="failed"))
        mnist.add_task(task(1, status="submitting"))
        mnist.add_task(TaskRecord("cifar/0", "cifar", 0, 0, "train", 0, "dlc", status="pending"))
        mnist.add_task(task(1, index=1, status="lost"))
    assert [(t.task_index, t.attempt) for t in mnist.tasks_for_trial("mnist", 0)] == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    assert [t.key for t in mnist.active_tasks()] == ["cifar/0", "mnist/0/1/0", "mnist/1/0/0"]
    assert [t.key for t in mnist.active_tasks("mnist")] == ["mnist/0/1/0", "mnist/1/0/0"]


# -- metrics and outputs -------------------------------------------------------------------


def test_metrics(mnist: State) -> None:
    mnist.add_trial(trial(0))
    mnist.add_trial(trial(1))
    mnist.add_metrics([])
    records = [
        MetricRecord("mnist", 0, "loss", 2, 0.3, 12.0),
        MetricRecord("mnist", 0, "acc", None, 0.95, 20.0),
        MetricRecord("mnist", 0, "loss", 1, 0.5, 11.0),
        MetricRecord("mnist", 0, "acc", 1, 0.8, 11.5),
        MetricRecord("mnist", 1, "loss", 1, 0.7, 11.0),
        MetricRecord("mnist", 0, "loss", 3, math.nan, 13.0),
    ]
    before = mnist.serial
    mnist.add_metrics(records)
    assert mnist.serial == before + 1
    got = mnist.metrics_for("mnist", 0)
    assert [(m.name, m.step, m.ts) for m in got] == [
        ("loss", 1, 11.0),
        ("acc", 1, 11.5),
        ("loss", 2, 12.0),
        ("loss", 3, 13.0),
        ("acc", None, 20.0),
    ]
    assert math.isnan(got[3].value)
    assert mnist.metrics_for("mnist", 1) == [records[4]]


def test_outputs(state: State) -> None:
    assert state.get_outputs() == {}
    state.set_outputs({"best_params": ({"lr": 0.1, "bs": 32}, False), "token": ("s3cr3t", True)})
    assert state.get_outputs() == {
        "best_params": ({"bs": 32, "lr": 0.1}, False),
        "token": ("s3cr3t", True),
    }
    state.set_outputs({"best_value": (0.9, False)})  # replaces all
    assert state.get_outputs() == {"best_value": (0.9, False)}


# -- summary and records -------------------------------------------------------------------


def test_summary(mnist: State) -> None:
    mnist.put_experiment(ExperimentRecord("empty", status="succeeded"))
    with mnist.transaction():
        for n, status in enumerate(["complete", "complete", "running"]):
            mnist.add_trial(trial(n, status=status))
    summary = mnist.summary()
    assert summary["lineage"] == mnist.lineage
    assert summary["serial"] == mnist.serial
    assert summary["config_id"] == "cfg-1"
    zero = {"pending": 0, "running": 0, "complete": 0, "pruned": 0, "failed": 0}
    assert summary["experiments"] == {
        "empty": {"generation": 1, "status": "succeeded", "trials": zero, "total": 0},
        "mnist": {
            "generation": 1,
            "status": "pending",
            "trials": {**zero, "complete": 2, "running": 1},
            "total": 3,
        },
    }


def test_records_to_dict_and_lock_info_round_trip() -> None:
    assert trial(1).to_dict()["params"] == {"lr": 0.1}
    assert ExperimentRecord("a").config is not ExperimentRecord("b").config
    info = LockInfo("id", "OperationTypeApply", "me@host", "0.1.0", "2024-01-01T00:00:00Z", "p", 7)
    assert LockInfo.from_dict(info.to_dict()) == info
    with pytest.raises(ValueError, match="lacks"):
        LockInfo.from_dict({"id": "x"})


def test_state_survives_reopen(db_path: Path) -> None:
    with State.open(db_path, create=True) as st:
        st.put_experiment(ExperimentRecord("mnist"))
        st.add_trial(trial(0, status="complete", value=1.0))
    with State.open(db_path, create=False) as st:
        assert st.get_trial("mnist", 0) == trial(0, status="complete", value=1.0)
