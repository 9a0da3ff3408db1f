"""Stop conditions, shared by `plan` (to say what apply will do) and the apply loop.

Budget semantics (SPEC "Budget"): `max_trials` counts every trial that has ended —
complete, pruned or failed. `max_failed_trials = N` tolerates N failed trials; the
experiment fails when one more fails. Relaunches after infrastructure failures are the same
trial. No optuna import here: `plan` must stay fast.

`compute_progress` is the one way to count an experiment's trials for these decisions: the
apply loop, `plan` and `output` all call it, so they cannot disagree.

`max_duration` is a budget of the experiment's own time, kept in the state across
applies (SPEC 6 "Budgets"), as NNI counts an experiment's duration without its paused
time. The experiment's clock runs from the moment an apply starts (or resumes) it while
apply works on it and while any of its trials is running, including between the passes
of `apply --once` and after an interrupted apply; it pauses when an apply leaves the
experiment with nothing running, and stops when the experiment ends. Raising
`max_duration` above the time used lets a stopped experiment continue.

`max_cost` is a budget of money, in the provider's currency: the experiment stops when
the estimated spend of its ended and running trials (`tunectl.providers.prices`: each
task's running time at its provider's price) reaches it. Like `max_duration`, reaching it
stops the trials still running — they would keep spending — and raising it above the
spend lets the stopped experiment continue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# Why an experiment stopped launching trials, and the status it ends with.
REASON_STATUS = {
    "max_trials": "succeeded",
    "goal": "succeeded",
    "exhausted": "succeeded",
    "no_improvement": "succeeded",
    "max_duration": "stopped",
    "max_cost": "stopped",
    "max_failed_trials": "failed",
}

REASON_TEXT = {
    "max_trials": "reached max_trials",
    "goal": "reached the objective's goal",
    "exhausted": "searched the whole (finite) search space",
    "no_improvement": "no improvement within max_trials_without_improvement",
    "max_duration": "reached max_duration",
    "max_cost": "reached max_cost",
    "max_failed_trials": "too many failed trials (max_failed_trials)",
}


@dataclass(frozen=True)
class Progress:
    """What the state says about an experiment's trials, for stop decisions."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0  # pending or running
    best_value: float | None = None
    since_best: int = 0  # ended trials numbered after the best trial
    elapsed: float = 0.0  # seconds of the experiment's clock used, across applies
    asked: int = 0  # trials created (any status)
    cost: float = 0.0  # estimated spend of ended and running trials (with max_cost)

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed


@dataclass(frozen=True)
class StopRules:
    """An experiment's stop conditions (`tunectl.config.model.Experiment.stop_rules`)."""

    direction: str  # "maximize" | "minimize", of the objective
    max_trials: int
    goal: float | None = None
    max_failed_trials: int | None = None
    max_duration: float | None = None  # seconds of the experiment's clock
    max_trials_without_improvement: int | None = None
    max_cost: float | None = None  # in the provider's currency


class Outcome(Protocol):
    """A trial as the state records it (`tunectl.states.TrialRecord` is one)."""

    @property
    def number(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def value(self) -> float | None: ...


_ENDED = ("complete", "pruned", "failed")


def compute_progress(
    trials: Iterable[Outcome],
    *,
    direction: str,
    running: int,
    asked: int,
    elapsed: float,
    clock_since: float | None,
    now: float,
    cost: float = 0.0,
) -> Progress:
    """The `Progress` of an experiment from its trials and its clock.

    `trials` may hold every trial: only ended ones (complete, pruned, failed) are counted.
    The best trial is the complete one with the best value, the lowest number winning a
    tie; `since_best` counts the ended trials numbered after it. `running` (trials started
    and not ended) and `asked` (trials created) are the caller's: the apply loop knows
    trials the state does not list yet. The clock is as `time_used` reads it; `cost`
    is the spend the caller priced (`tunectl.providers.prices`).
    """
    counts = dict.fromkeys(_ENDED, 0)
    numbers: list[int] = []
    best: tuple[float, int] | None = None  # (value, number)
    for t in trials:
        status = str(getattr(t.status, "value", t.status))
        if status not in counts:
            continue
        counts[status] += 1
        numbers.append(t.number)
        value = t.value
        if status != "complete" or value is None or math.isnan(value):
            continue
        if best is None:
            best = (value, t.number)
            continue
        better = value > best[0] if direction == "maximize" else value < best[0]
        if better or (value == best[0] and t.number < best[1]):
            best = (value, t.number)
    return Progress(
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        running=running,
        best_value=None if best is None else best[0],
        since_best=0 if best is None else sum(1 for n in numbers if n > best[1]),
        elapsed=time_used(elapsed, clock_since, now),
        asked=asked,
        cost=cost,
    )


def time_used(elapsed: float, clock_since: float | None, now: float) -> float:
    """Seconds of an experiment's clock used: closed segments (`elapsed`) plus the open
    one, which started at `clock_since` (None: the clock is paused)."""
    if clock_since is None:
        return elapsed
    return elapsed + max(0.0, now - clock_since)


def goal_reached(rules: StopRules, best: float | None) -> bool:
    goal = rules.goal
    if goal is None or best is None:
        return False
    return best >= goal if rules.direction == "maximize" else best <= goal


def stop_reason(rules: StopRules, p: Progress, space_size: int | None) -> str | None:
    """The reason to launch no more trials, or None to keep going."""
    if rules.max_failed_trials is not None and p.failed > rules.max_failed_trials:
        return "max_failed_trials"
    if goal_reached(rules, p.best_value):
        return "goal"
    if p.done >= rules.max_trials:
        return "max_trials"
    if space_size is not None and p.asked >= space_size:
        return "exhausted"
    if (
        rules.max_trials_without_improvement is not None
        and p.best_value is not None
        and p.since_best >= rules.max_trials_without_improvement
    ):
        return "no_improvement"
    if rules.max_duration is not None and p.elapsed >= rules.max_duration:
        return "max_duration"
    if rules.max_cost is not None and p.cost >= rules.max_cost:
        return "max_cost"
    return None


def final_status(reason: str, p: Progress) -> str:
    status = REASON_STATUS.get(reason, "stopped")
    if status == "succeeded" and p.complete == 0:
        return "failed"
    return status


def launchable(rules: StopRules, p: Progress, space_size: int | None) -> int:
    """How many more trials may still be started (0 when a stop condition holds)."""
    if stop_reason(rules, p, space_size) is not None:
        return 0
    left = rules.max_trials - p.done - p.running
    if space_size is not None:
        left = min(left, space_size - p.asked)
    return max(0, left)
