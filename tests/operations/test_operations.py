"""The operations in-process: what each returns and the events it emits, in order."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write
from tunectl.operations import apply as apply_op
from tunectl.operations import plan as plan_op
from tunectl.operations.events import (
    Destroyed,
    Event,
    ExperimentChanged,
    Finished,
    LoopPass,
    PlanReady,
    RunStarted,
    RunStopped,
    TrialEvent,
)
from tunectl.operations.outputs import exported, recorded
from tunectl.operations.session import Session
from tunectl.plans.differ import DiffOptions

CONFIG = """\
experiment "demo" {
  algorithm "random" {
    seed = 7
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = 2
  max_concurrent = 2
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py ${param.x}"
    workdir = "."
  }
}

output "best" {
  value = experiment.demo.best.value
}
"""

TRIAL = """\
import sys
print(f"acc={float(sys.argv[1]):.6f}", flush=True)
"""


class Hooks:
    def __init__(self, approve: bool = True) -> None:
        self.events: list[Event] = []
        self.questions: list[str] = []
        self._approve = approve
        self.stop = threading.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def approve(self, question: str) -> bool:
        self.questions.append(question)
        return self._approve

    @contextlib.contextmanager
    def interrupts(self) -> Iterator[threading.Event]:
        yield self.stop

    def kinds(self) -> list[type]:
        """The kinds of events but those a run repeats (trial events, loop passes)."""
        return [type(e) for e in self.events if not isinstance(e, TrialEvent | LoopPass)]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": CONFIG, "trial.py": TRIAL})


def test_apply_creates_runs_and_finishes(directory: Path) -> None:
    hooks = Hooks()
    result = apply_op.run(Session(directory), apply_op.ApplyRequest(), hooks)
    assert result.outcome == "done" and not result.failures
    assert hooks.questions == ["Do you want to perform these actions?"]
    assert hooks.kinds() == [PlanReady, ExperimentChanged, RunStarted, RunStopped, Finished]
    assert hooks.events[1] == ExperimentChanged("demo", "created")
    kinds = [type(e) for e in hooks.events]
    passes = [i for i, kind in enumerate(kinds) if kind is LoopPass]
    assert passes and kinds.index(RunStarted) < passes[0] <= passes[-1] < kinds.index(RunStopped)
    finished = hooks.events[-1]
    assert isinstance(finished, Finished) and finished.ran and not finished.failed
    assert finished.exported["demo"]["trials"]["complete"] == 2
    best = finished.exported["demo"]["best"]["value"]
    assert finished.outputs == {"best": (best, False)}
    assert any(isinstance(e, TrialEvent) and e.experiment == "demo" for e in hooks.events)
    assert recorded(Session(directory)) == {"best": (best, False)}

    # Nothing left to do: a plan has no changes, and apply says so without asking.
    planned = plan_op.run(Session(directory), DiffOptions(), seal=True)
    assert not planned.plan.has_changes and not planned.plan.pending_work
    assert planned.key
    again = Hooks()
    assert apply_op.run(Session(directory), apply_op.ApplyRequest(), again).outcome == "done"
    assert again.questions == [] and again.kinds() == [PlanReady, Finished]
    assert again.events[-1] == Finished(ran=False, outputs={"best": (best, False)})

    # Destroy: one experiment destroyed, the state empty.
    gone = Hooks()
    destroy = apply_op.ApplyRequest(destroy=True, auto_approve=True)
    assert apply_op.run(Session(directory), destroy, gone).outcome == "done"
    assert gone.events[1:] == [ExperimentChanged("demo", "destroyed"), Destroyed(1)]
    session = Session(directory)
    state = session.open_state(create=False)
    try:
        assert exported(state) == {}
    finally:
        state.close()


def test_apply_not_approved_changes_nothing(directory: Path) -> None:
    hooks = Hooks(approve=False)
    result = apply_op.run(Session(directory), apply_op.ApplyRequest(), hooks)
    assert result.outcome == "cancelled"
    assert hooks.kinds() == [PlanReady]
    state = Session(directory).open_state(create=False)
    try:
        assert state.list_experiments() == []
    finally:
        state.close()


def test_an_unknown_target_is_a_plan_error(directory: Path) -> None:
    hooks = Hooks()
    request = apply_op.ApplyRequest(targets=["experiment.nope"])
    result = apply_op.run(Session(directory), request, hooks)
    assert result.outcome == "errors" and hooks.questions == []
    assert result.plan is not None
    assert [(d.summary, d.detail) for d in result.plan.errors] == [
        (
            "Invalid --target address",
            "--target experiment.nope: no experiment with that address in the configuration "
            "or the state.",
        )
    ]


def test_the_lock_is_released_after_an_operation(directory: Path) -> None:
    plan_op.run(Session(directory), DiffOptions())
    session = Session(directory)
    with session.locked("OperationTypeApply"):
        pass


def test_plan_errors_are_diagnostics_with_the_lifecycle_block(directory: Path) -> None:
    assert apply_op.run(Session(directory), apply_op.ApplyRequest(auto_approve=True), Hooks())
    text = (directory / "main.hcl").read_text()
    (directory / "main.hcl").write_text(
        text.replace(
            "max_concurrent = 2",
            "max_concurrent = 2\n  lifecycle {\n    prevent_destroy = true\n  }",
        )
    )
    hooks = Hooks()
    request = apply_op.ApplyRequest(destroy=True, replace=["experiment.nope"])
    result = apply_op.run(Session(directory), request, hooks)
    assert result.outcome == "errors" and result.plan is not None
    assert result.diagnostics == result.plan.errors
    by_summary = {d.summary: d for d in result.diagnostics}
    protected = by_summary["Experiment cannot be destroyed"]
    assert protected.subject is not None
    lifecycle = (directory / "main.hcl").read_text().splitlines().index("  lifecycle {") + 1
    assert (protected.subject.filename, protected.subject.line) == ("main.hcl", lifecycle)
    assert by_summary["Invalid --replace address"].subject is None
