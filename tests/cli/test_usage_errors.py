"""Usage errors are diagnostics: `Error: ...`, the usage line, exit 1, never a traceback.

.ci/run runs this file (with the rest of tests/cli) a second time against the newest typer
and click that pyproject.toml allows; docs/security.md ("Usage errors") records the lowest.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO, cli_env, run_cli, write

CONFIG = {
    "main.hcl": """\
    experiment "e" {
      algorithm "random" {
        seed = 1
      }
      objective {
        metric    = "m"
        direction = "maximize"
      }
      max_trials = 1
      param "p" {
        type = "uniform"
        low  = 0
        high = 1
      }
      trial {
        provider = "local"
        command  = "echo m=1"
      }
    }
    """
}


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return write(tmp_path, CONFIG)


# (arguments, what the message says, the usage line shown with it)
USAGE_ERRORS = [
    (["plan", "--bogus"], "--bogus", "Usage: tunectl plan [OPTIONS]"),
    (["apply", "--auto-aprove"], "--auto-aprove", "Usage: tunectl apply [OPTIONS]"),
    (["plan", "--target"], "requires an argument", "Usage: tunectl plan [OPTIONS]"),
    (["plan", "--detailed-exitcode=3"], "does not take a value", "Usage: tunectl plan"),
    (["logs"], "Missing argument 'ADDR'", "Usage: tunectl logs [OPTIONS] ADDR"),
    (["state", "rm"], "Missing argument 'ADDR'", "Usage: tunectl state rm [OPTIONS] ADDR"),
    (["force-unlock"], "Missing argument 'ID'", "Usage: tunectl force-unlock [OPTIONS] ID"),
    (["logs", "experiment.e", "--trial", "x"], "'x' is not a valid integer", "Usage: tunectl logs"),
    (["show", "a", "b"], "unexpected extra argument", "Usage: tunectl show [OPTIONS] [FILE"),
    (["plna"], 'No such command "plna". Did you mean "plan"?', "Usage: tunectl [OPTIONS] COMMAND"),
    (["state", "lst"], 'Did you mean "list"?', "Usage: tunectl state [OPTIONS] COMMAND"),
    (["--bogus"], "--bogus", "Usage: tunectl [OPTIONS] COMMAND"),
    (["-C"], "requires an argument", "Usage: tunectl [OPTIONS] COMMAND"),
]


@pytest.mark.parametrize("args, message, usage", USAGE_ERRORS, ids=lambda v: str(v))
def test_usage_error_is_a_diagnostic(directory: Path, args, message, usage) -> None:
    result = run_cli(directory, *args)
    assert result.code == 1, result.text
    assert "Traceback" not in result.text and "internal error" not in result.text, result.text
    # Terraform's order: the error first, then how to use the command.
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("Error: "), result.err
    assert message in lines[0], result.err
    assert any(line.startswith(usage) for line in lines[1:]), result.err
    assert re.search(r"Try 'tunectl( [a-z-]+)* -h' for help\.", result.err), result.err
    # A usage error changes nothing: no state is created.
    assert not (directory / "state").exists()


@pytest.mark.parametrize("args", [[], ["state"]], ids=["tunectl", "state"])
def test_no_command_prints_help_and_exits_1(directory: Path, args: list[str]) -> None:
    # run_cli always passes --chdir; without any argument at all, run from the directory.
    proc = subprocess.run(
        [sys.executable, "-m", "tunectl", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"Usage: tunectl {' '.join(args)}".rstrip() in proc.stdout
    assert "Commands" in proc.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        # Argument help (click 8.5 with typer < 0.26 drops it: hence the pin).
        (["show", "--help"], ["A saved plan file, or an address such as"]),
        (["logs", "--help"], ["experiment.NAME or experiment.NAME.trial[N].", "--trial"]),
        (["state", "rm", "--help"], ["The experiment or trial to forget: experiment.NAME or"]),
        (["force-unlock", "--help"], ["The lock ID shown in the lock error."]),
        (["plan", "--help"], ["--target", "--detailed-exitcode", "--lock-timeout"]),
        (["--help"], ["plan", "apply", "destroy", "state", "Usage: tunectl [OPTIONS] COMMAND"]),
        (["-h"], ["Usage: tunectl [OPTIONS] COMMAND"]),
    ],
)
def test_help_shows_arguments_and_options(directory: Path, args, expected) -> None:
    result = run_cli(directory, *args)
    assert result.code == 0, result.text
    text = re.sub(r"\s+", " ", result.out.replace("│", " "))
    for fragment in expected:
        assert fragment in text, (fragment, result.out)


def test_version_and_flags_still_work(directory: Path) -> None:
    # A typer/click mismatch once ran every command as --version: check both ways.
    result = run_cli(directory, "--version")
    assert result.code == 0 and result.out.startswith("tunectl v"), result.text
    result = run_cli(directory, "validate")
    assert result.code == 0 and "Success!" in result.out, result.text
    assert "tunectl v" not in result.out
    result = run_cli(directory, "fmt", "--check")
    assert result.code == 0, result.text


def test_installed_typer_and_click_are_within_the_pins() -> None:
    # The CI step that installs the newest allowed versions must really test those.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {Requirement(r).name: Requirement(r) for r in project["project"]["dependencies"]}
    for name in ("typer", "click"):
        assert name in pins, f"{name} must be pinned in pyproject.toml"
        assert pins[name].specifier.contains(version(name)), (name, version(name))
