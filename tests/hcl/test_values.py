"""The one value renderer (tunectl.hcl.values): numbers as HCL writes them, everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write
from tunectl.hcl.values import (
    Template,
    format_value,
    hcl_text,
    json_text,
    number_text,
    to_json_value,
    to_string,
)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (5, "5"),
        (5.0, "5"),
        (-3.0, "-3"),
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (0.30000000000000004, "0.30000000000000004"),
        (10**20, "100000000000000000000"),
    ],
)
def test_number_text(number: float, text: str) -> None:
    assert number_text(number) == text
    # Whatever the parameter's type, the text reads back as the same number.
    assert float(text) == number


def test_command_text() -> None:
    assert format_value(5.0) == "5"
    assert format_value(0.01) == "0.01"
    assert format_value(True) == "true"
    assert format_value("a b") == "a b"
    assert format_value(None) == ""  # an inactive parameter
    assert format_value([32, 64.0]) == "[32,64]"
    assert format_value({"a": 1.0}) == '{"a":1}'
    assert format_value(5.0) == to_string(5.0)


def test_hcl_text_one_line() -> None:
    assert hcl_text(5.0) == "5"
    assert hcl_text([1.0, "x", None, True]) == '[1, "x", null, true]'
    assert hcl_text({"b": 1, "a b": 2.0}) == '{ "a b" = 2, b = 1 }'
    assert hcl_text(Template([("param", "lr")])) == '"${param.lr}"'
    assert hcl_text({"k": "secret"}, opaque=lambda v: "(hidden)" if v == "secret" else None) == (
        "{ k = (hidden) }"
    )


def test_hcl_text_multiline() -> None:
    value = {"units": 5.0, "layers": [1, 2], "empty": {}}
    assert hcl_text(value, multiline=True) == (
        "{\n  empty  = {}\n  layers = [\n    1,\n    2,\n  ]\n  units  = 5\n}"
    )
    assert hcl_text([], multiline=True) == "[]"


def test_json_forms() -> None:
    assert json_text({"units": 5.0, "lr": 0.5}) == '{"lr": 0.5, "units": 5}'
    assert to_json_value([5.0, 2.5, {"a": 1.0}]) == [5, 2.5, {"a": 1}]


CONFIG = """\
provider "local" {
  slots = 1
}

experiment "e" {
  algorithm "grid" {}
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 1
  param "units" {
    type   = "choice"
    values = [5.0]
  }
  trial {
    provider = "local"
    command  = "echo units=${param.units}; echo acc=0.5"
  }
}

output "five" {
  value = 5.0
}

output "params" {
  value = experiment.e.best.params
}
"""


def test_a_float_of_five_shows_as_5_everywhere(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG})
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.err
    assert "values = [5]" in plan.out
    plan_json = json.loads(run_cli(directory, "plan", "--json").out)
    assert "5.0" not in json.dumps([c["reasons"] for c in plan_json["changes"]])

    applied = run_cli(directory, "apply", "--auto-approve")
    assert applied.code == 0, applied.err

    assert run_cli(directory, "output").out == "five = 5\nparams = {\n  units = 5\n}\n"
    assert run_cli(directory, "output", "five", "--raw").out == "5\n"
    show = run_cli(directory, "show").out
    assert '{"units": 5}' in show and "5.0" not in show
    trial = run_cli(directory, "show", "experiment.e.trial[0]").out
    assert 'params:   {"units": 5}' in trial
    logs = run_cli(directory, "logs", "experiment.e.trial[0]")
    assert "units=5\n" in logs.out, logs.err
