"""An experiment's trials priced (`tunectl.providers.prices`) with its configuration: the
spend `max_cost` is checked against in the apply loop and the plan, and each trial's
estimated cost in `tunectl trials` (CSV and JSON too).

The prices are those of the experiment as configured now (its tasks' settings and the
provider block); tasks of the state that the configuration no longer has count nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tunectl.config.model import Config, Experiment
from tunectl.durations import parse_duration
from tunectl.engine.results import ExperimentResults
from tunectl.providers import registry
from tunectl.providers.base import Provider
from tunectl.providers.prices import costs_by_trial, hourly_rates, max_trial_price
from tunectl.states import State


def trial_rates(
    cls: type[Provider], config: Mapping[str, Any], exp: Experiment
) -> dict[str, float | None]:
    """The price per hour of each of the experiment's tasks, by task name."""
    return hourly_rates(cls, config, ((t.name, dict(t.settings)) for t in exp.trial.tasks))


def configured_rates(
    exp: Experiment, providers: Mapping[str, Any]
) -> dict[str, float | None] | None:
    """`trial_rates` with the provider block of the configuration (`Config.providers`);
    None when the provider does not load."""
    try:
        cls = registry.load(exp.trial.provider)
    except (KeyError, registry.ProviderLoadError):
        return None
    block = providers.get(exp.trial.provider)
    return trial_rates(cls, block.settings if block is not None else {}, exp)


def trial_limits(exp: Experiment) -> dict[str, float | None]:
    """How long each task may run at most: its `max_running_time` setting (DLC) or its
    timeout; None without either."""
    out: dict[str, float | None] = {}
    for task in exp.trial.tasks:
        limit = dict(task.settings).get("max_running_time") or task.timeout or exp.trial.timeout
        if isinstance(limit, str):
            limit = parse_duration(limit)
        out[task.name] = float(limit) if isinstance(limit, int | float) else None
    return out


def most_per_trial(exp: Experiment, rates: Mapping[str, float | None]) -> float | None:
    """The most one more trial may cost (its tasks for their whole time limits)."""
    return max_trial_price(rates, trial_limits(exp))


def spend(
    state: State, name: str, generation: int, rates: Mapping[str, float | None], now: float
) -> float:
    """The estimated spend of an experiment generation's ended and running trials."""
    tasks = [t for t in state.all_tasks(name) if t.generation == generation]
    return sum(c for c in costs_by_trial(tasks, rates, now).values() if c is not None)


def price_results(
    results: ExperimentResults,
    state: State,
    rates: Mapping[str, float | None] | None,
    now: float,
) -> None:
    """Set each trial's estimated `cost` (None where a price is unknown)."""
    if rates is None:
        return
    tasks = [t for t in state.all_tasks(results.name) if t.generation == results.generation]
    costs = costs_by_trial(tasks, rates, now)
    for trial in results.trials:
        trial.cost = costs.get(trial.number, 0.0)


def price(config: Config, state: State, results: ExperimentResults) -> None:
    """`price_results` at the configuration's prices, when it has the experiment."""
    exp = config.experiments.get(results.name)
    if exp is not None:
        price_results(results, state, configured_rates(exp, config.providers), time.time())
