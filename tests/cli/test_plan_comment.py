"""`tunectl plan --markdown` and `--json` as a CI job runs them: the output is a pipe, read by
a program or posted as a pull-request comment, on success and when no plan can be made."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write

EXPERIMENT = """\
experiment "{name}" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {max_trials}
  max_concurrent = 2
{params}
  trial {{
    command = "python3 -c 'print(\\"acc=1\\")'"
  }}
}}
"""


def experiment(name: str, max_trials: int = 4, params: int = 1) -> str:
    blocks = "\n".join(
        f'  param "p{i}" {{\n    type = "uniform"\n    low  = 0\n    high = {i + 1}\n  }}'
        for i in range(params)
    )
    return EXPERIMENT.format(name=name, max_trials=max_trials, params=blocks)


def repo(tmp_path: Path, hcl: str) -> Path:
    """A configuration in `tuning/` of a git work tree."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    directory = write(tmp_path / "repo" / "tuning", {"main.hcl": hcl})
    assert run_cli(directory, "init").code == 0
    return directory


def test_markdown_comment_names_the_directory_and_folds_each_experiment(tmp_path: Path) -> None:
    directory = repo(tmp_path, experiment("a") + experiment("b"))
    assert run_cli(directory, "apply", "--auto-approve", "--target", "experiment.a").code == 0
    write(directory, {"main.hcl": experiment("a", max_trials=6) + experiment("c")})
    result = run_cli(directory, "plan", "--markdown", "--detailed-exitcode")
    assert result.code == 2, result.text
    lines = result.out.splitlines()
    assert lines[0] == "<!-- tunectl plan: tuning -->"
    assert lines[1] == "### tunectl plan for `tuning`: 1 to add, 1 to change, 0 to destroy"
    assert "| `experiment.a` | update in-place | will run up to 2 trials" in result.out
    assert "| `experiment.c` | create | will run up to 4 trials" in result.out
    assert "<details><summary><code>experiment.a</code> will be updated in-place</summary>" in lines
    assert "<details><summary><code>experiment.c</code> will be created</summary>" in lines
    assert "!       max_trials = 4 -> 6" in lines
    assert '+   experiment "c" {' in lines
    assert result.out.index("| Experiment |") < result.out.index("<details>")
    assert result.err == ""


def test_markdown_comment_is_cut_to_githubs_limit(tmp_path: Path) -> None:
    hcl = "".join(experiment(f"e{i:02d}", params=12) for i in range(40))
    directory = repo(tmp_path, hcl)
    whole = run_cli(directory, "plan")
    assert whole.code == 0 and len(whole.out) > 65_536, len(whole.out)
    result = run_cli(directory, "plan", "--markdown")
    assert result.code == 0, result.text
    assert len(result.out) <= 60_001  # the comment and echo's newline
    assert result.out.count("| `experiment.e") == 40  # the summary is whole
    kept = result.out.count("<details>")
    assert 0 < kept < 40 and kept == result.out.count("</details>")
    assert f"{40 - kept} experiments' parts of the plan are left out here" in result.out
    assert "GitHub takes 65,536 characters" in result.out


def test_json_on_a_configuration_error_prints_json_diagnostics(tmp_path: Path) -> None:
    directory = repo(tmp_path, experiment("a"))
    write(directory, {"main.hcl": experiment("a").replace("max_trials", "max_trails")})
    result = run_cli(directory, "plan", "--json")
    assert result.code == 1, result.text
    data = json.loads(result.out)
    assert data["format_version"] == "1.0"
    assert data["valid"] is False and "changes" not in data
    assert data["error_count"] >= 1
    first = data["diagnostics"][0]
    assert first["severity"] == "error"
    assert first["range"]["filename"] == "main.hcl"
    assert first["range"]["start"]["line"] == 9
    assert "max_trails" in first["summary"] + first["detail"]
    assert "Traceback" not in result.text and result.err == ""
    # The same shape as validate --json.
    validate = json.loads(run_cli(directory, "validate", "--json").out)
    assert validate["diagnostics"] == data["diagnostics"]


def test_json_and_markdown_on_other_errors(tmp_path: Path) -> None:
    directory = repo(tmp_path, experiment("a"))
    result = run_cli(directory, "plan", "--json", "--target", "nonsense")
    assert result.code == 1, result.text
    data = json.loads(result.out)
    assert data["diagnostics"][0]["summary"].startswith("Invalid --target")
    write(directory, {"main.hcl": experiment("a").replace("max_trials", "max_trails")})
    result = run_cli(directory, "plan", "--markdown")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[:4] == [
        "<!-- tunectl plan: tuning -->",
        "### tunectl plan for `tuning`: failed",
        "",
        "The plan could not be made (2 errors):",  # max_trails unknown, max_trials missing
    ]
    assert "on main.hcl line 9" in result.out
    assert "  9:   max_trails     = 4" in result.out  # the line quoted, as on a terminal
    # Without --json or --markdown, diagnostics go to stderr as before.
    human = run_cli(directory, "plan")
    assert human.code == 1 and human.out == "" and "Error:" in human.err
