"""`max_cost` as a stop condition, and trials priced from their tasks' running time."""

from __future__ import annotations

from tunectl.providers.prices import costs_by_trial, max_trial_price, task_seconds, tasks_cost
from tunectl.search.stopping import (
    REASON_STATUS,
    REASON_TEXT,
    Progress,
    StopRules,
    launchable,
    stop_reason,
)
from tunectl.states import TaskRecord
from tunectl.status import TaskRecordStatus


def rules(**kw: object) -> StopRules:
    return StopRules(direction="maximize", max_trials=10, **kw)  # type: ignore[arg-type]


def test_max_cost_stops_when_the_spend_reaches_it() -> None:
    assert stop_reason(rules(max_cost=5.0), Progress(complete=2, cost=4.99), None) is None
    assert stop_reason(rules(max_cost=5.0), Progress(complete=2, cost=5.0), None) == "max_cost"
    assert launchable(rules(max_cost=5.0), Progress(complete=2, cost=6.0), None) == 0
    assert stop_reason(rules(), Progress(complete=2, cost=1e9), None) is None
    assert REASON_STATUS["max_cost"] == "stopped"
    assert REASON_TEXT["max_cost"] == "reached max_cost"


def task(number: int, name: str, start: float, end: float | None, status: str) -> TaskRecord:
    return TaskRecord(
        key=f"k{number}{name}{start}",
        experiment="e",
        trial_number=number,
        task_index=0,
        task_name=name,
        attempt=0,
        provider="dlc",
        status=TaskRecordStatus(status),
        submitted_at=start,
        finished_at=end,
    )


def test_a_trial_costs_every_attempt_for_its_running_time() -> None:
    rates = {"train": 3600.0, "eval": 360.0}  # 1 and 0.1 a second
    tasks = [
        task(0, "train", 100, 110, "failed"),  # a first attempt counts too
        task(0, "train", 120, 130, "succeeded"),
        task(0, "eval", 130, 140, "succeeded"),
        task(1, "train", 150, None, "running"),  # runs until now
        task(2, "train", 150, None, "cancelled"),  # ended without a time: nothing
    ]
    assert task_seconds(tasks[3], now=160) == 10
    costs = costs_by_trial(tasks, rates, now=160)
    assert costs[0] == 21.0 and costs[1] == 10.0 and costs[2] == 0.0
    assert tasks_cost(tasks[:1], {"train": None}, now=160) is None  # price unknown
    assert max_trial_price(rates, {"train": 60.0, "eval": 36.0}) == 60.0 + 3.6
    assert max_trial_price(rates, {"train": 60.0, "eval": None}) is None  # no time limit
