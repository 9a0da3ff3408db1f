"""Tests for tunectl.search.stopping: one Progress from trial outcomes, and the stop rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tunectl.search.stopping import (
    Progress,
    StopRules,
    compute_progress,
    final_status,
    launchable,
    stop_reason,
)
from tunectl.status import TrialStatus


@dataclass
class T:
    number: int
    status: str
    value: float | None = None


def progress(trials, direction="minimize", **kw) -> Progress:
    args = dict(running=0, asked=len(trials), elapsed=0.0, clock_since=None, now=0.0) | kw
    return compute_progress(trials, direction=direction, **args)


def test_counts_ended_trials_only():
    p = progress(
        [T(0, "complete", 1.0), T(1, "pruned", 2.0), T(2, "failed"), T(3, "running")], running=1
    )
    assert (p.complete, p.pruned, p.failed, p.running, p.asked) == (1, 1, 1, 1, 4)
    assert p.done == 3


def test_best_follows_the_direction():
    trials = [T(0, "complete", 3.0), T(1, "complete", 1.0), T(2, "complete", 2.0)]
    assert progress(trials, "minimize").best_value == 1.0
    assert progress(trials, "maximize").best_value == 3.0


def test_pruned_failed_and_missing_values_are_never_best():
    trials = [T(0, "pruned", 0.0), T(1, "complete", None), T(2, "complete", math.nan)]
    p = progress(trials + [T(3, "complete", 5.0)])
    assert p.best_value == 5.0 and p.since_best == 0
    assert progress(trials).best_value is None and progress(trials).since_best == 0


def test_since_best_counts_ended_trials_numbered_after_the_best():
    # Listed in the order they ended, not by number: the numbers decide.
    trials = [T(2, "failed"), T(4, "complete", 9.0), T(1, "complete", 0.5), T(3, "pruned")]
    p = progress(trials + [T(5, "running")])
    assert p.best_value == 0.5 and p.since_best == 3


def test_a_tie_goes_to_the_lowest_number():
    trials = [T(3, "complete", 1.0), T(1, "complete", 1.0), T(2, "complete", 4.0)]
    assert progress(trials).since_best == 2


def test_statuses_as_enums():
    trials = [T(0, TrialStatus.COMPLETE, 1.0), T(1, TrialStatus.FAILED)]  # type: ignore[arg-type]
    p = progress(trials)
    assert (p.complete, p.failed, p.best_value, p.since_best) == (1, 1, 1.0, 1)


def test_clock_open_and_paused():
    assert progress([], elapsed=10.0, clock_since=100.0, now=130.0).elapsed == 40.0
    assert progress([], elapsed=10.0, clock_since=None, now=130.0).elapsed == 10.0
    assert progress([], elapsed=10.0, clock_since=200.0, now=130.0).elapsed == 10.0


RULES = StopRules("minimize", max_trials=4)


@pytest.mark.parametrize(
    ("rules", "p", "size", "reason"),
    [
        (RULES, Progress(), None, None),
        (RULES, Progress(complete=2, failed=2), None, "max_trials"),
        (StopRules("minimize", 9, max_failed_trials=1), Progress(failed=2), None,
         "max_failed_trials"),
        (StopRules("minimize", 9, goal=0.1), Progress(complete=1, best_value=0.05), None, "goal"),
        (StopRules("maximize", 9, goal=0.9), Progress(complete=1, best_value=0.5), None, None),
        (RULES, Progress(asked=3), 3, "exhausted"),
        (StopRules("minimize", 9, max_trials_without_improvement=2),
         Progress(complete=3, best_value=1.0, since_best=2), None, "no_improvement"),
        (StopRules("minimize", 9, max_duration=60), Progress(elapsed=60.0), None,
         "max_duration"),
    ],
)  # fmt: skip
def test_stop_reason(rules, p, size, reason):
    assert stop_reason(rules, p, size) == reason


def test_launchable_and_final_status():
    assert launchable(RULES, Progress(complete=1, running=1, asked=2), None) == 2
    assert launchable(RULES, Progress(complete=1, running=1, asked=2), 3) == 1
    assert launchable(RULES, Progress(complete=4, asked=4), None) == 0
    assert final_status("max_trials", Progress(complete=1)) == "succeeded"
    assert final_status("max_trials", Progress(failed=4)) == "failed"
    assert final_status("max_duration", Progress(complete=1)) == "stopped"


def test_experiment_stop_rules():
    from tunectl.config.model import Experiment, Objective, TrialSpec
    from tunectl.search.model import Algorithm

    exp = Experiment(
        "e",
        Algorithm("tpe"),
        Objective("maximize", metric="acc", goal=0.9),
        (),
        TrialSpec("local", ()),
        max_trials=7,
        max_failed_trials=2,
        max_duration=30.0,
        max_trials_without_improvement=3,
    )
    assert exp.stop_rules == StopRules("maximize", 7, 0.9, 2, 30.0, 3)
