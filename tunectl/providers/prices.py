"""What trials cost: each task's hourly price from its provider (`Provider.hourly_price`),
and a trial's estimated spend from the running time of its tasks.

A task costs from its submission until it ended (or until now while it may still run),
at the hourly price of what it asked for; every attempt counts, as every attempt is
billed. `max_cost` (`tunectl.search.stopping`), the plan's estimate and `tunectl trials`
all price trials here, so they cannot disagree. Prices are the provider's, in its
currency: the DLC price table (extended by the provider's `prices`), MaxCompute's
`price_per_hour`; the local provider's time costs 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tunectl.providers.base import Provider
from tunectl.states import TaskRecord
from tunectl.status import TaskRecordStatus


def hourly_rates(
    cls: type[Provider],
    config: Mapping[str, Any],
    tasks: Iterable[tuple[str, Mapping[str, Any]]],
) -> dict[str, float | None]:
    """Each task's (name, settings) price per hour under the provider block `config`;
    None for a task whose price the provider does not know."""
    return {name: cls.hourly_price(config, settings) for name, settings in tasks}


def task_seconds(task: TaskRecord, now: float) -> float:
    """How long a task has run (been billed): from submission to its end, or to `now`
    while it may still run."""
    if task.finished_at is not None:
        end = task.finished_at
    elif TaskRecordStatus(task.status).active:
        end = now
    else:
        end = task.submitted_at  # ended without a recorded time: nothing to count
    return max(0.0, end - task.submitted_at)


def tasks_cost(
    tasks: Iterable[TaskRecord], rates: Mapping[str, float | None], now: float
) -> float | None:
    """The estimated cost of `tasks`; None when one of them has no known price."""
    total = 0.0
    for task in tasks:
        rate = rates.get(task.task_name)
        if rate is None:
            return None
        total += rate * task_seconds(task, now) / 3600
    return total


def costs_by_trial(
    tasks: Sequence[TaskRecord], rates: Mapping[str, float | None], now: float
) -> dict[int, float | None]:
    """Each trial's estimated cost, from the tasks of one generation."""
    grouped: dict[int, list[TaskRecord]] = {}
    for task in tasks:
        grouped.setdefault(task.trial_number, []).append(task)
    return {number: tasks_cost(group, rates, now) for number, group in grouped.items()}


def max_trial_price(
    rates: Mapping[str, float | None], limits: Mapping[str, float | None]
) -> float | None:
    """The most one trial may cost: each task at its price for its whole time limit
    (`limits`: seconds by task name); None without a price or a limit for every task."""
    total = 0.0
    for name, rate in rates.items():
        limit = limits.get(name)
        if rate is None or not limit:
            return None
        total += rate * limit / 3600
    return total
