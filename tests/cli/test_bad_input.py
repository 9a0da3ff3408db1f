"""Bad input of every kind: exit 1, a located `Error:` diagnostic, no traceback, state untouched."""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, write

VALID = """\
variable "max_trials" {
  type    = number
  default = 4
  validation {
    condition     = var.max_trials > 0
    error_message = "max_trials must be positive."
  }
}

provider "local" {
  slots = 2
}

experiment "demo" {
  description = "a small experiment"

  algorithm "tpe" {
    seed = 1
  }

  objective {
    metric    = "acc"
    direction = "maximize"
  }

  max_trials     = var.max_trials
  max_concurrent = 2

  param "lr" {
    type = "loguniform"
    low  = 1e-5
    high = 1e-1
  }
  param "opt" {
    type   = "choice"
    values = ["sgd", "adam"]
  }

  trial {
    provider = "local"
    command  = "echo acc=${param.lr}"
  }
}

output "best" {
  value = experiment.demo.best.value
}
"""


def mutate(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


# (name, files, expected summary, expected location "main.hcl line N" or None)
CASES: list[tuple[str, dict[str, str], str, str | None]] = [
    (
        "syntax: unclosed block",
        {"main.hcl": VALID + 'experiment "x" {\n  max_trials = 3\n'},
        "",
        "main.hcl line",
    ),
    (
        "syntax: missing value",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent =")},
        "",
        "main.hcl line",
    ),
    ("syntax: garbage", {"main.hcl": VALID + "\n@@@ nope\n"}, "", "main.hcl line"),
    (
        "unknown attribute with suggestion",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurent = 2")},
        'Did you mean "max_concurrent"',
        "main.hcl line 27",
    ),
    (
        "unknown block with suggestion",
        {"main.hcl": mutate("  objective {", "  objectve {")},
        "Unsupported block type",
        "main.hcl line",
    ),
    (
        "unknown top-level block",
        {"main.hcl": VALID + 'experimnt "x" {\n}\n'},
        'Did you mean "experiment"',
        "main.hcl line",
    ),
    (
        "top-level attribute",
        {"main.hcl": "foo = 1\n" + VALID},
        "Unsupported argument",
        "main.hcl line 1",
    ),
    (
        "wrong type: max_trials string",
        {"main.hcl": mutate("max_concurrent = 2", 'max_concurrent = "two"')},
        "Incorrect attribute value type",
        "main.hcl line 27",
    ),
    (
        "wrong type: float where int",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent = 2.5")},
        "whole number",
        "main.hcl line 27",
    ),
    (
        "wrong type: values not a list",
        {"main.hcl": mutate('values = ["sgd", "adam"]', 'values = "sgd"')},
        "Incorrect attribute value type",
        "main.hcl line",
    ),
    (
        "impossible range: low >= high",
        {"main.hcl": mutate("high = 1e-1", "high = 1e-6")},
        "Invalid parameter",
        "main.hcl line 29",
    ),
    (
        "impossible range: loguniform low <= 0",
        {"main.hcl": mutate("low  = 1e-5", "low  = 0")},
        "Invalid parameter",
        "main.hcl line 29",
    ),
    (
        "empty choice",
        {"main.hcl": mutate('values = ["sgd", "adam"]', "values = []")},
        "Invalid parameter",
        "main.hcl line",
    ),
    (
        "unknown parameter type",
        {"main.hcl": mutate('type = "loguniform"', 'type = "logunifrom"')},
        'Did you mean "loguniform"',
        "main.hcl line",
    ),
    (
        "max_concurrent zero",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent = 0")},
        "at least 1",
        "main.hcl line 27",
    ),
    (
        "bad duration",
        {
            "main.hcl": mutate(
                "max_concurrent = 2", 'max_concurrent = 2\n  max_duration = "2 hours"'
            )
        },
        "duration",
        "main.hcl line 28",
    ),
    (
        "bad direction",
        {"main.hcl": mutate('direction = "maximize"', 'direction = "maximise"')},
        'Did you mean "maximize"',
        "main.hcl line",
    ),
    (
        "objective without metric",
        {"main.hcl": mutate('metric    = "acc"', "")},
        "Invalid objective",
        "main.hcl line",
    ),
    (
        "undefined variable reference",
        {"main.hcl": mutate("max_trials     = var.max_trials", "max_trials     = var.max_trails")},
        "Reference to undeclared input variable",
        "main.hcl line 26",
    ),
    (
        "undefined local reference",
        {"main.hcl": mutate("max_trials     = var.max_trials", "max_trials     = local.n")},
        "Reference to undeclared local value",
        "main.hcl line 26",
    ),
    (
        "undeclared param in command",
        {"main.hcl": mutate("echo acc=${param.lr}", "echo acc=${param.lrr}")},
        "Reference to undeclared parameter",
        "main.hcl line",
    ),
    (
        "unknown trial placeholder",
        {"main.hcl": mutate("echo acc=${param.lr}", "echo ${trial.dir}")},
        "Unsupported attribute",
        "main.hcl line",
    ),
    (
        "output references unknown experiment",
        {"main.hcl": mutate("experiment.demo.best.value", "experiment.demoo.best.value")},
        "Reference to undeclared experiment",
        "main.hcl line",
    ),
    (
        "duplicate experiment",
        {
            "main.hcl": VALID,
            "other.hcl": VALID.split('experiment "demo"', 1)[0]
            .replace('variable "max_trials"', 'variable "m2"')
            .replace("var.max_trials", "var.m2")
            .replace('provider "local" {\n  slots = 2\n}\n', "")
            + 'experiment "demo"'
            + VALID.split('experiment "demo"', 1)[1].split('output "best"')[0],
        },
        "Duplicate experiment block",
        "other.hcl line",
    ),
    (
        "duplicate param",
        {"main.hcl": mutate('  param "opt" {', '  param "lr" {')},
        "Duplicate param block",
        "main.hcl line",
    ),
    (
        "duplicate attribute",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent = 2\n  max_concurrent = 3")},
        "Attribute redefined",
        "main.hcl line 28",
    ),
    (
        "duplicate objective block",
        {
            "main.hcl": mutate(
                "  max_trials     = var.max_trials",
                '  objective {\n    metric = "x"\n    direction = "minimize"\n  }\n  '
                "max_trials     = var.max_trials",
            )
        },
        "Duplicate block",
        "main.hcl line",
    ),
    (
        "unknown provider",
        {"main.hcl": mutate('provider = "local"', 'provider = "lokal"')},
        'Did you mean "local"',
        "main.hcl line",
    ),
    (
        "unknown provider block",
        {"main.hcl": mutate('provider "local" {', 'provider "dlcc" {')},
        "Unknown provider",
        "main.hcl line 10",
    ),
    (
        "unknown provider setting",
        {"main.hcl": mutate("slots = 2", "slotz = 2")},
        'Did you mean "slots"',
        "main.hcl line 11",
    ),
    (
        "unknown algorithm",
        {"main.hcl": mutate('algorithm "tpe"', 'algorithm "tpee"')},
        'Did you mean "tpe"',
        "main.hcl line",
    ),
    (
        "unknown early stopping",
        {"main.hcl": mutate("  trial {", '  early_stopping "medain" {\n  }\n  trial {')},
        'Did you mean "median"',
        "main.hcl line",
    ),
    (
        "grid over continuous param",
        {"main.hcl": mutate('algorithm "tpe"', 'algorithm "grid"')},
        "Invalid search space",
        "main.hcl line",
    ),
    (
        "variable validation fails",
        {"main.hcl": mutate("default = 4", "default = -1")},
        "max_trials must be positive.",
        "main.hcl line 5",
    ),
    (
        "variable without default and value",
        {"main.hcl": mutate("  default = 4\n", "")},
        "No value for required variable",
        "main.hcl line",
    ),
    (
        "variable default of wrong type",
        {"main.hcl": mutate("default = 4", 'default = "four"')},
        "Invalid default value",
        "main.hcl line",
    ),
    (
        "command and tasks both",
        {
            "main.hcl": mutate(
                'command  = "echo acc=${param.lr}"',
                'command  = "echo acc=${param.lr}"\n    task "a" {\n      command = "true"\n    }',
            )
        },
        "Conflicting task definitions",
        "main.hcl line",
    ),
    (
        "trial without command",
        {"main.hcl": mutate('command  = "echo acc=${param.lr}"', "")},
        "Missing required argument",
        "main.hcl line",
    ),
    (
        "missing trial block",
        {
            "main.hcl": mutate(
                '    provider = "local"\n    command  = "echo acc=${param.lr}"\n', ""
            ).replace("  trial {\n  }\n", "")
        },
        "Missing required block",
        "main.hcl line",
    ),
    (
        "conditional on unknown param",
        {
            "main.hcl": mutate(
                'values = ["sgd", "adam"]',
                'values = ["sgd", "adam"]\n    when = { optimizer = "sgd" }',
            )
        },
        "Invalid search space",
        "main.hcl line",
    ),
    (
        "invalid metrics pattern",
        {
            "main.hcl": mutate(
                'command  = "echo acc=${param.lr}"',
                'command  = "echo acc=${param.lr}"\n    metrics "stdout" '
                '{\n      pattern = "acc=([0-9"\n    }',
            )
        },
        "Invalid pattern",
        "main.hcl line",
    ),
    (
        "unsupported metrics source",
        {
            "main.hcl": mutate(
                'command  = "echo acc=${param.lr}"',
                'command  = "echo acc=${param.lr}"\n    metrics "table" {\n'
                '      sql = "select acc from t"\n    }',
            )
        },
        "Unsupported metrics source",
        "main.hcl line",
    ),
    (
        "division by zero",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent = 2 / 0")},
        "Division by zero",
        "main.hcl line 27",
    ),
    (
        "unknown function",
        {"main.hcl": mutate("max_concurrent = 2", "max_concurrent = maxx(1, 2)")},
        'Did you mean "max"',
        "main.hcl line 27",
    ),
    ("no configuration files", {"notes.txt": "nothing here"}, "No configuration files", None),
]


@pytest.mark.parametrize("name,files,summary,where", CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    tmp_path: Path, name: str, files: dict[str, str], summary: str, where: str | None
) -> None:
    directory = write(tmp_path / "cfg", files)
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: " in result.err, result.text
    assert "Traceback" not in result.text
    assert summary in result.err, result.err
    if where is not None:
        assert f"on {where}" in result.err, result.err


def test_bad_variable_values(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": VALID})
    for args, summary in (
        (["--var", "max_trials=abc"], "Invalid value for input variable"),
        (["--var", "nope=1"], "Value for undeclared variable"),
        (["--var", "max_trials"], "Invalid -var option"),
        (["--var", "max_trials=0"], "max_trials must be positive."),
        (["--var-file", str(tmp_path / "missing.hcl")], "Failed to read variables file"),
    ):
        result = run_cli(directory, "plan", *args)
        assert result.code == 1, (args, result.text)
        assert summary in result.err, (args, result.err)
        assert "Traceback" not in result.text
    env_result = run_cli(
        directory, "validate", env={**os.environ, "TUNECTL_VAR_max_trials": "-3", "NO_COLOR": "1"}
    )
    assert env_result.code == 1 and "max_trials must be positive." in env_result.err


def _state_bytes(directory: Path) -> bytes:
    return (directory / "state" / "tunectl.db").read_bytes()


def test_corrupt_state_is_reported_and_untouched(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": VALID})
    (directory / "state").mkdir()
    garbage = bytes(random.Random(1).randrange(256) for _ in range(4096))
    (directory / "state" / "tunectl.db").write_bytes(garbage)
    for command in (["plan"], ["apply", "--auto-approve"], ["show"], ["destroy", "--auto-approve"]):
        result = run_cli(directory, *command)
        assert result.code == 1, result.text
        assert "Error: Failed to load state" in result.err
        assert "Traceback" not in result.text
        assert _state_bytes(directory) == garbage


def test_newer_state_version_is_refused(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": VALID})
    assert run_cli(directory, "init").code == 0
    db = directory / "state" / "tunectl.db"
    # Closed explicitly: the last close checkpoints the WAL into the file compared below.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    conn.close()
    before = db.read_bytes()
    result = run_cli(directory, "plan")
    assert result.code == 1 and "Unsupported state version" in result.err
    assert db.read_bytes() == before


def test_stale_and_foreign_plan_files(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": VALID})
    other = write(tmp_path / "other", {"main.hcl": VALID})
    plan = tmp_path / "demo.plan"
    assert run_cli(directory, "plan", "--out", str(plan)).code == 0
    # Foreign: another state (lineage) refuses it.
    result = run_cli(other, "apply", str(plan))
    assert result.code == 1 and "does not match the state" in result.err, result.text
    # Stale: the state changed since the plan was made.
    assert run_cli(directory, "apply", "--auto-approve", "--once").code == 0
    result = run_cli(directory, "apply", str(plan))
    assert result.code == 1 and "Saved plan is stale" in result.err, result.text
    # Not a plan at all.
    junk = tmp_path / "junk.plan"
    junk.write_text(json.dumps({"hello": 1}))
    result = run_cli(directory, "apply", str(junk))
    assert result.code == 1 and "not a tunectl plan file" in result.err
    assert "Traceback" not in result.text


_FRAGMENTS = [
    "{",
    "}",
    "=",
    '"',
    "${",
    "[",
    "]",
    "\n",
    "#",
    "1e-5",
    "var.",
    "param",
    "-",
    "(",
    ")",
    ",",
    "experiment",
    "null",
    "<<EOF\n",
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_mutations_never_traceback(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    from tunectl.cli.main import app  # noqa: F401  (import check: fail fast if broken)
    from tunectl.config.load import load_config
    from tunectl.diags import DiagnosticError

    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        fragment = data.draw(st.sampled_from(_FRAGMENTS) | st.text(max_size=5))
        if action == "insert":
            text = text[:pos] + fragment + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 10)) :]
        else:
            text = text[:pos] + fragment + text[pos + len(fragment) :]
    directory = tmp_path_factory.mktemp("mut")
    (directory / "main.hcl").write_text(text)
    try:
        load_config(directory, environ={})
    except DiagnosticError as exc:
        assert exc.diags.has_errors()
