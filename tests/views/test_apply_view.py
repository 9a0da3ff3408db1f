"""The apply view's plain lines: status lines, `[done/total]`, a failed trial's output."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tunectl.search.stopping import Progress
from tunectl.views.apply import ApplyView, status_line


@dataclass
class FakeRunner:
    """What the view reads of `tunectl.engine.runner.Runner`."""

    p: Progress
    ended: list[Any] = field(default_factory=list)
    max_trials: int = 40
    direction: str = "maximize"
    max_duration: float | None = None
    space_size: int | None = None
    finished: bool = False
    name: str = "mnist"

    @property
    def exp(self) -> Any:
        return SimpleNamespace(
            name=self.name,
            max_trials=self.max_trials,
            max_duration=self.max_duration,
            objective=SimpleNamespace(direction=self.direction),
        )

    def progress(self) -> Progress:
        return self.p


def trial(number: int, value: float | None, status: str = "complete") -> Any:
    return SimpleNamespace(number=number, value=value, status=status)


def test_status_line_as_the_issue_shows_it() -> None:
    ended = [trial(n, 0.9) for n in range(17)]
    ended[12] = trial(12, 0.981)
    runner = FakeRunner(Progress(complete=17, running=3, best_value=0.981, elapsed=3720), ended)
    assert status_line(runner) == (
        "[17/40] 3 running, best 0.981 (trial 12), 1h02m elapsed, ETA 1h24m"
    )


def test_status_line_counts_pruned_failed_and_the_smaller_space() -> None:
    ended = [trial(0, 0.5), trial(1, 0.2), trial(2, 0.2), trial(3, None, "failed")]
    ended.append(trial(4, 0.1, "pruned"))
    runner = FakeRunner(
        Progress(complete=3, pruned=1, failed=1, running=1, elapsed=100),
        ended,
        direction="minimize",
        space_size=6,
    )
    # Ties go to the lowest number; a pruned trial's value is not a result.
    assert status_line(runner) == (
        "[5/6] 1 running, 1 pruned, 1 failed, best 0.2 (trial 1), 1m40s elapsed, ETA 20s"
    )


def test_eta_within_max_duration_and_none_before_a_trial_ends() -> None:
    runner = FakeRunner(Progress(complete=1, elapsed=600), [trial(0, 1.0)], max_duration=900)
    assert status_line(runner).endswith("10m00s elapsed, ETA 5m")
    fresh = FakeRunner(Progress(running=2, elapsed=30))
    assert status_line(fresh) == "[0/40] 2 running, 30s elapsed"


def test_tick_prints_every_interval_and_event_prefixes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("tunectl.views.apply.time.monotonic", lambda: clock[0])
    view = ApplyView(color=False, progress_interval=60)
    running = FakeRunner(Progress(complete=1, running=1, elapsed=10), [trial(0, 0.5)])
    done = FakeRunner(Progress(complete=2), finished=True, name="done")
    view.start([running, done])
    view.tick()
    clock[0] += 59
    view.tick()
    assert capsys.readouterr().out == ""
    clock[0] += 1
    view.tick()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    expected = "experiment.mnist: [1/40] 1 running, best 0.5 (trial 0), 10s elapsed, ETA 6m"
    assert out[0].endswith(expected)
    view.event("failed", "mnist", "trial 1 failed (boom)", 1, [f"line {i}" for i in range(8)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("experiment.mnist: [1/40] trial 1 failed (boom)")
    assert lines[1:] == [
        "    | line 3",
        "    | line 4",
        "    | line 5",
        "    | line 6",
        "    | line 7",
        "    whole output: tunectl logs experiment.mnist --trial 1",
    ]
    never = ApplyView(color=False, progress_interval=0)
    never.start([running])
    clock[0] += 10_000
    never.tick()
    assert capsys.readouterr().out == ""
