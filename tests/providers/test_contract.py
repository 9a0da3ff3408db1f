"""Contract v2 as core uses it: located validation, bodies rendered by their kinds, metric
sources refused at validate, and a whole experiment run on `FakeProvider`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tunectl.config.load import load_config
from tunectl.diags import Diagnostic, DiagnosticError
from tunectl.engine.models import LocalModelStore
from tunectl.engine.reconcile import Runner
from tunectl.engine.trials import Placeholders, build_request
from tunectl.plans.differ import canonical
from tunectl.providers.base import (
    AttrSpec,
    Capabilities,
    MetricSource,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
    attribute_error,
)
from tunectl.providers.bodies import COMMAND, SHELL, TEXT, BodySpec
from tunectl.states import ExperimentRecord, State
from tunectl.testing.fake import FakeProvider, Script


class CheckedProvider(FakeProvider):
    """A fake that validates, reads only stdout, and takes a second, text body."""

    name = "checked"
    capabilities = Capabilities(events=True, metric_sources=frozenset({MetricSource.STDOUT}))
    config_schema = (AttrSpec("zone"),)
    trial_schema = (AttrSpec("size", "int"), AttrSpec("flavor"))

    @classmethod
    def validate_config(cls, request: ValidateConfigRequest) -> ValidateResponse:
        if request.config.get("zone") == "nowhere":
            return ValidateResponse(
                (attribute_error(("zone",), "Unknown zone", '"zone" is not known.'),)
            )
        return ValidateResponse()

    @classmethod
    def validate_task(cls, request: ValidateTaskRequest) -> ValidateResponse:
        out = []
        if (request.settings.get("size") or 0) > 4:
            out.append(attribute_error(("size",), "Invalid trial settings", "size is at most 4."))
        if request.settings.get("flavor") == "x":
            out.append(attribute_error(("flavor",), "Invalid trial settings", "no flavor x."))
        if request.settings.get("flavor") == "broken":
            raise RuntimeError("a bug")
        return ValidateResponse(tuple(out))


@pytest.fixture(autouse=True)
def providers() -> Iterator[None]:
    undo = [FakeProvider.install(), CheckedProvider.install()]
    yield
    for step in reversed(undo):
        step()


EXPERIMENT = """\
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
%(trial)s
  }
}
"""


def diagnostics(tmp_path: Path, trial: str, extra: str = "") -> list[Diagnostic]:
    (tmp_path / "main.hcl").write_text(extra + EXPERIMENT % {"trials": 1, "trial": trial})
    try:
        load_config(tmp_path)
    except DiagnosticError as exc:
        return list(exc.diags)
    return []


def test_a_task_diagnostic_points_at_the_attribute(tmp_path: Path) -> None:
    trial = """\
    provider = "checked"
    size     = 9
    task "a" {
      command = "acc=1"
      flavor  = "x"
    }"""
    found = diagnostics(tmp_path, trial)
    assert [(d.summary, d.detail) for d in found] == [
        ("Invalid trial settings", "size is at most 4."),  # the trial's, shared
        ("Invalid trial settings", "no flavor x."),  # the task's own
    ]
    # (columns come with the parser's ranges)
    assert [d.subject.line for d in found if d.subject] == [18, 21]


def test_a_provider_block_diagnostic_points_at_the_attribute(tmp_path: Path) -> None:
    block = 'provider "checked" {\n\n  zone = "nowhere"\n}\n'
    (found,) = diagnostics(tmp_path, '    provider = "checked"\n    command  = "acc=1"', block)
    assert found.summary == "Unknown zone"
    assert found.subject is not None and found.subject.line == 3


def test_a_provider_that_raises_is_reported(tmp_path: Path) -> None:
    trial = '    provider = "checked"\n    command  = "acc=1"\n    flavor   = "broken"'
    (found,) = diagnostics(tmp_path, trial)
    assert "could not check the trial: a bug" in found.detail


def test_a_metrics_source_the_provider_cannot_read_is_refused(tmp_path: Path) -> None:
    trial = """\
    provider = "checked"
    command  = "acc=1"
    metrics "json" {
      path = "m-${trial.id}.jsonl"
    }"""
    (found,) = diagnostics(tmp_path, trial)
    assert found.summary == "Unsupported metrics source"
    assert 'cannot read metrics "json"' in found.detail and 'metrics "stdout"' in found.detail
    assert found.subject is not None and found.subject.line == 19
    trial = trial.replace("checked", "fake")  # reads task files
    assert diagnostics(tmp_path, trial) == []


def test_bodies_are_rendered_by_the_provider_s_kinds(tmp_path: Path) -> None:
    trial = '    provider = "fake"\n    command  = "v=\'${param.x}\' ${trial.number}"'
    (tmp_path / "main.hcl").write_text(EXPERIMENT % {"trials": 1, "trial": trial})
    exp = load_config(tmp_path).experiments["demo"]
    placeholders = Placeholders(exp, 0, 3, {"x": "it's"}, "")
    as_text, as_shell = (
        build_request(
            exp,
            exp.trial.tasks[0],
            key="k",
            placeholders=placeholders,
            config_dir=tmp_path,
            model_dir="",
            trial_number=3,
            bodies=(BodySpec("command", (kind,)),),
        )
        for kind in (TEXT, SHELL)
    )
    assert as_text.bodies == {"command": "v='it's' 3"}
    assert as_shell.bodies == {"command": "v='it'\\''s' 3"}
    assert as_shell.command == as_shell.bodies["command"]
    assert COMMAND.kind_for(["a"]).name == "argv" and COMMAND.kind_for("a").name == "shell"
    with pytest.raises(ValueError, match="cannot be a list"):
        BodySpec("sql", (TEXT,)).kind_for(["a"])


def test_an_experiment_runs_on_the_fake_provider(tmp_path: Path) -> None:
    trial = '    provider = "fake"\n    command  = "acc=${param.x}"'
    (tmp_path / "main.hcl").write_text(EXPERIMENT % {"trials": 3, "trial": trial})
    exp = load_config(tmp_path).experiments["demo"]
    state = State.open(tmp_path / "state" / "tunectl.db", create=True, config_id="t")
    state.put_experiment(ExperimentRecord("demo", config=canonical(exp), created_at=1.0))
    provider = FakeProvider({}, tmp_path / "state")
    world = FakeProvider.world(tmp_path / "state")
    world.default = lambda request: Script(
        output=["starting\n", f"{request.command}\n"], polls=3, exit_code=request.trial_number
    )
    models = LocalModelStore(tmp_path / "state" / "models")
    runner = Runner(exp, state, provider, models, tmp_path, None, lambda *e: None)
    try:
        runner.prepare()
        for _ in range(200):
            if runner.refresh():
                runner.launch()
            if runner.finished:
                break
            provider.wait([], 0.01)
        trials = state.list_trials("demo")
        assert [t.status for t in trials] == ["complete", "failed", "failed"]  # exit codes
        assert 0 <= trials[0].values["acc"] <= 1  # type: ignore[index]
        assert world.started and all(n == 1 for n in world.started.values())
    finally:
        state.close()


def test_placeholders_are_checked_by_the_provider_s_body_kind(tmp_path: Path) -> None:
    unsafe_in_a_shell = '    provider = "%s"\n    command  = "acc=`${param.x}`"'
    (found,) = diagnostics(tmp_path, unsafe_in_a_shell % "local")
    assert found.summary == "Placeholder in an unsafe position"
    assert "inside backquotes" in found.detail
    assert diagnostics(tmp_path, unsafe_in_a_shell % "fake") == []  # text: no shell reads it
    (found,) = diagnostics(tmp_path, '    provider = "fake"\n    command  = ["acc=1"]')
    assert (found.summary, found.detail) == (
        "Incorrect attribute value type",
        'In the fake provider, "command" cannot be a list.',
    )
