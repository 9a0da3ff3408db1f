"""Configuration warnings reach the user: `validate`, `plan` and `apply` show them on
success (on stderr, in Terraform's layout), and `validate --json` lists them, counted.

Warnings come from tunectl's own checks (a metrics setting its source never reads) and
from providers (`validate_config`: the local provider's interpreter that is not there).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write

EXPERIMENT = """\
experiment "demo" {
  max_trials = 1
  algorithm "random" {}
  objective {
    metric    = "score"
    direction = "maximize"
  }
  param "x" {
    type = "int"
    low  = 1
    high = 3
  }
  trial {
    command = "echo score=${param.x}"
%s
  }
}
"""

NO_PYTHON = 'provider "local" {\n  python = "/no/such/python3"\n}\n\n'


def experiment(trial: str = "") -> str:
    return EXPERIMENT % trial


def test_validate_shows_a_provider_warning_and_succeeds(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": NO_PYTHON + experiment()})
    result = run_cli(directory, "validate")
    assert result.code == 0, result.text
    assert "Warning: Interpreter not found" in result.err, result.err
    assert 'on main.hcl line 2, in provider "local":' in result.err
    assert '2:   python = "/no/such/python3"' in result.err
    assert "Error" not in result.err
    assert result.out.strip() == (
        "Success! The configuration is valid, but there were some warnings."
    )


def test_validate_json_lists_the_warnings(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": NO_PYTHON + experiment()})
    result = run_cli(directory, "validate", "--json")
    assert result.code == 0, result.text
    assert result.err == "", result.err  # the JSON says it all
    report = json.loads(result.out)
    assert (report["valid"], report["error_count"], report["warning_count"]) == (True, 0, 1)
    (diag,) = report["diagnostics"]
    assert diag["severity"] == "warning" and diag["summary"] == "Interpreter not found"
    assert diag["range"]["filename"] == "main.hcl" and diag["range"]["start"]["line"] == 2


def test_a_valid_configuration_without_warnings_says_so(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": experiment()})
    result = run_cli(directory, "validate", "--json")
    assert json.loads(result.out)["warning_count"] == 0
    result = run_cli(directory, "validate")
    assert result.out.strip() == "Success! The configuration is valid." and result.err == ""


def test_warnings_come_with_errors_too(tmp_path: Path) -> None:
    hcl = NO_PYTHON + experiment().replace("max_trials = 1", "max_trials = 0")
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = run_cli(directory, "validate", "--json")
    assert result.code == 1, result.text
    report = json.loads(result.out)
    assert (report["error_count"], report["warning_count"]) == (1, 1)


def test_unread_metrics_settings_are_warned_about(tmp_path: Path) -> None:
    trial = (
        '    metrics "json" {\n'
        '      path    = "m-${trial.id}.jsonl"\n'
        '      pattern = "score=(\\\\S+)"\n'
        "    }\n"
        '    metrics "stdout" {\n'
        '      name = "score"\n'
        "    }"
    )
    directory = write(tmp_path / "cfg", {"main.hcl": experiment(trial)})
    result = run_cli(directory, "validate", "--json")
    assert result.code == 0, result.text
    report = json.loads(result.out)
    assert report["warning_count"] == 2, report
    pattern, name = report["diagnostics"]
    assert pattern["summary"] == "Argument has no effect"
    assert pattern["range"]["start"]["line"] == 17
    assert 'metrics "json" reads only path; "pattern" is ignored.' == pattern["detail"]
    assert name["range"]["start"]["line"] == 20
    assert "without a pattern" in name["detail"].lower() and '"name" is ignored' in name["detail"]


def test_plan_and_apply_show_warnings_and_go_on(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": NO_PYTHON + experiment()})
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert plan.err.count("Warning: Interpreter not found") == 1, plan.err
    assert "1 to add" in plan.out, plan.out
    apply = run_cli(directory, "apply", "--auto-approve")
    assert apply.code == 0, apply.text
    assert apply.err.count("Warning: Interpreter not found") == 1, apply.err


def test_a_warning_never_shows_a_sensitive_value(tmp_path: Path) -> None:
    hcl = (
        'variable "py" {\n  sensitive = true\n  default   = "/opt/hidden-interpreter-7"\n}\n\n'
        'provider "local" {\n  python = var.py\n}\n\n' + experiment()
    )
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    for args in (("validate",), ("validate", "--json")):
        result = run_cli(directory, *args)
        assert result.code == 0, result.text
        assert "Interpreter not found" in result.text
        assert "hidden-interpreter-7" not in result.text, result.text
