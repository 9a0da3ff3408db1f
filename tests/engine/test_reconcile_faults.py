"""The reconcile loop under provider faults: submissions that fail, then succeed or never do.

The loop runs for real (real state, real configuration) on the `FakeProvider`, whose
submissions fail on demand, as a cloud API does when it throttles after its own retries.
A manual clock lets the test skip the backoff delays instead of sleeping through them.
The engine never retries a call itself: one submit call per pass.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tunectl.config.load import load_config
from tunectl.engine.models import LocalModelStore
from tunectl.engine.runner import Runner
from tunectl.engine.submission import SUBMIT_ROUNDS
from tunectl.plans.differ import canonical
from tunectl.states import ExperimentRecord, State
from tunectl.testing.fake import FakeProvider

HCL = """\
experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = %(trials)d
  max_concurrent = 2
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    provider = "fake"
    command  = "acc=${param.x}"
  }
}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fake_provider():
    undo = FakeProvider.install()
    yield
    undo()


def submits(provider: FakeProvider) -> int:
    return provider.shared.calls.get("submit", 0)


def make_runner(tmp_path: Path, trials: int, failures: int) -> tuple[Runner, FakeProvider, Clock]:
    (tmp_path / "main.hcl").write_text(HCL % {"trials": trials})
    config = load_config(tmp_path)
    exp = config.experiments["demo"]
    state = State.open(tmp_path / "state" / "tunectl.db", create=True, config_id="t")
    state.put_experiment(ExperimentRecord("demo", config=canonical(exp), created_at=1.0))
    provider = FakeProvider({}, tmp_path / "state")
    provider.shared.fail("submit", times=failures)
    clock = Clock()
    models = LocalModelStore(tmp_path / "state" / "models")
    events: list[tuple[str, str, str]] = []
    runner = Runner(
        exp, state, provider, models, tmp_path, None, lambda *e: events.append(e), clock
    )
    runner.events = events  # type: ignore[attr-defined]
    return runner, provider, clock


def run(runner: Runner, provider: FakeProvider, clock: Clock, passes: int = 400) -> None:
    runner.prepare()
    for _ in range(passes):
        if runner.refresh():
            runner.launch()
        if runner.finished:
            return
        provider.wait([a.handle for a in runner.active.values()], 0.2)
        clock.now += 5.0  # past any backoff the loop asked for
    raise AssertionError("the experiment did not finish")


def test_throttled_submissions_are_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    # Failures spread over several submissions, none failing often enough to give up.
    runner, provider, clock = make_runner(tmp_path, trials=4, failures=SUBMIT_ROUNDS)
    try:
        run(runner, provider, clock)
        trials = runner.state.list_trials("demo")
        assert [t.number for t in trials] == [0, 1, 2, 3]  # exactly max_trials, no extra
        assert all(t.status == "complete" for t in trials)
        # Every trial ran exactly once, although some submissions were repeated.
        tasks = [t for n in range(4) for t in runner.state.tasks_for_trial("demo", n)]
        assert len(tasks) == 4 and all(t.status == "succeeded" for t in tasks)
        assert any("submission failed" in e[2] for e in runner.events)  # type: ignore[attr-defined]
    finally:
        runner.state.close()


def test_a_trial_that_can_never_be_submitted_fails(tmp_path: Path) -> None:
    runner, provider, clock = make_runner(tmp_path, trials=1, failures=10_000)
    try:
        run(runner, provider, clock)
        (trial,) = runner.state.list_trials("demo")
        assert trial.status == "failed"
        assert f"after {SUBMIT_ROUNDS} rounds" in trial.message and "503" in trial.message
        # One submit call per pass, no retries on top of the provider's own.
        assert submits(provider) == SUBMIT_ROUNDS + 1
        assert runner.record.status == "failed"  # no trial completed
    finally:
        runner.state.close()


def test_a_failed_submission_waits_for_a_later_pass_without_sleeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, provider, clock = make_runner(tmp_path, trials=1, failures=10_000)

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the loop slept {seconds}s for a failed submission")

    try:
        runner.prepare()
        monkeypatch.setattr(time, "sleep", no_sleep)
        assert runner.refresh()
        assert runner.launch() == 0
        assert submits(provider) == 1
        # Due again on a later pass, after the backoff; nothing is submitted before that.
        due = runner.next_retry()
        assert due is not None and due > clock.now
        runner.launch()
        assert submits(provider) == 1
        clock.now = due
        runner.launch()
        assert submits(provider) == 2
    finally:
        runner.state.close()
