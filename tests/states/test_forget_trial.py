"""`State.forget_trial` (`state rm experiment.X.trial[N]`): the trial and all it has go,
and its number is never given again within the generation."""

from __future__ import annotations

import pytest

from tests.states.test_state_records import task, trial
from tunectl.states import MetricRecord, State


def test_forgetting_a_trial_removes_it_and_what_it_has(mnist: State) -> None:
    for n in (0, 1, 2):
        mnist.add_trial(trial(n))
        mnist.add_task(task(n))
        mnist.add_metrics([MetricRecord("mnist", n, "acc", 1, 0.5, 0.0)])
    before = mnist.serial
    mnist.forget_trial("mnist", 1)
    assert mnist.serial == before + 1  # one transaction
    assert [t.number for t in mnist.list_trials("mnist")] == [0, 2]
    assert mnist.tasks_for_trial("mnist", 1) == []
    assert mnist.metrics_for("mnist", 1) == []
    assert len(mnist.metrics_for("mnist", 0)) == 1
    assert mnist.next_trial_number("mnist") == 3
    with pytest.raises(LookupError):
        mnist.forget_trial("mnist", 1)


def test_a_forgotten_last_number_is_not_given_again(mnist: State) -> None:
    for n in (0, 1):
        mnist.add_trial(trial(n))
    mnist.forget_trial("mnist", 1)
    assert mnist.next_trial_number("mnist") == 2  # not 1: its task keys may exist
    mnist.forget_trial("mnist", 0)
    assert mnist.next_trial_number("mnist") == 2
    assert mnist.next_trial_number("other") == 0
    # Another generation numbers from 0 again (its keys name the generation).
    assert mnist.next_trial_number("mnist", generation=2) == 0
