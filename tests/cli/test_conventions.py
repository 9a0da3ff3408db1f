"""CLI conventions: help with placeholders and examples, generated docs pages that never
drift, `version`, `--no-color`, shell completion, and what `logs` prints."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer

from tests.conftest import REPO, cli_env, run_cli, write
from tunectl import __version__
from tunectl.cli import docgen
from tunectl.cli.common import App, examples

CONFIG = """\
experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = 2
  max_concurrent = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    provider = "local"
    command  = "python3 trial.py"
    workdir  = "."
  }
}
"""

TRIAL = """\
print("loading data", flush=True)
print('@tunectl {"step": 1, "metrics": {"acc": 0.5}}', flush=True)
print('@tunectl {"step": 2, "metrics": {"acc": 0.75}}', flush=True)
print("done", flush=True)
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": CONFIG, "trial.py": TRIAL})


# -- docs/cli ---------------------------------------------------------------------------


def test_every_command_has_help_an_example_and_an_up_to_date_page() -> None:
    assert docgen.problems() == []
    stale = docgen.stale()
    assert stale == [], "\n".join(stale) + "\nRun: python -m tunectl.cli.docgen"


def test_docgen_check_from_the_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tunectl.cli.docgen", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr


ToyArg = Annotated[str, typer.Argument(metavar="ADDR", help="What to run.")]
BareArg = Annotated[str, typer.Argument(metavar="ADDR")]


def _run(target: ToyArg) -> None:
    """Run something."""


def _bare_run(target: BareArg) -> None:
    """Run something."""


def _other() -> None:
    pass


def _toy(documented: bool) -> typer.Typer:
    toy = App(name="toy", help="A toy CLI.")
    if documented:
        toy.command("run", epilog=examples("toy run experiment.a"))(_run)
    else:
        toy.command("run")(_bare_run)
    toy.command("other", epilog=examples("toy other"))(_other)
    return toy


def test_docgen_names_what_a_command_lacks() -> None:
    found = docgen.problems(typer.main.get_command(_toy(documented=False)))
    assert "tunectl run: no example (epilog=examples(...) where it is registered)" in found
    assert "tunectl run: ADDR has no help text" in found
    assert "tunectl other: no help text (the function's docstring)" in found


def test_docgen_finds_missing_stale_and_left_over_pages(tmp_path: Path) -> None:
    root = typer.main.get_command(_toy(documented=True))
    docgen.write(tmp_path, root)
    assert docgen.stale(tmp_path, root) == []
    page = (tmp_path / "run.md").read_text()
    assert "tunectl run [OPTIONS] ADDR" in page and "- `ADDR`: What to run." in page
    assert "toy run experiment.a" in page
    (tmp_path / "run.md").write_text(page.replace("What to run.", "Old text."))
    (tmp_path / "other.md").unlink()
    (tmp_path / "gone.md").write_text("# a removed command\n")
    assert docgen.stale(tmp_path, root) == [
        f"{tmp_path / 'other.md'}: missing",
        f"{tmp_path / 'run.md'}: out of date",
        f"{tmp_path / 'gone.md'}: no such command (delete the page)",
    ]
    docgen.write(tmp_path, root)
    assert docgen.stale(tmp_path, root) == [] and not (tmp_path / "gone.md").exists()


@pytest.mark.parametrize(
    "args, usage",
    [
        (["logs"], "tunectl logs [OPTIONS] ADDR"),
        (["show"], "tunectl show [OPTIONS] [FILE | ADDR]"),
        (["apply"], "tunectl apply [OPTIONS] [FILE]"),
        (["state", "rm"], "tunectl state rm [OPTIONS] ADDR"),
        (["import", "nni"], "tunectl import nni [OPTIONS] FILE"),
        (["version"], "tunectl version [OPTIONS]"),
    ],
)
def test_help_has_placeholders_and_an_example(directory: Path, args, usage) -> None:
    result = run_cli(directory, *args, "--help")
    assert result.code == 0, result.text
    assert usage in result.out
    assert "Examples:" in result.out and f"$ tunectl {' '.join(args)}" in result.out


# -- version, --no-color, completion ----------------------------------------------------


def test_version_text_and_json(directory: Path) -> None:
    result = run_cli(directory, "version")
    assert result.code == 0, result.text
    lines = result.out.splitlines()
    assert lines[0] == f"tunectl v{__version__}" and lines[1].startswith("on Python 3.")
    assert "+ provider local v" in result.out
    result = run_cli(directory, "version", "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["tunectl_version"] == __version__
    assert data["python_version"].startswith("3.") and "local" in data["providers"]
    bad = run_cli(directory, "version", "--yaml")
    assert bad.code == 1 and "No such option" in bad.err and "Traceback" not in bad.err


def _on_a_terminal(directory: Path, *args: str) -> str:
    """What `tunectl ARGS` prints to a terminal (stdout and stderr on a pty)."""
    main, child = pty.openpty()
    env = cli_env(TERM="xterm", COLUMNS="100")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_no_color(directory: Path) -> None:
    assert "\x1b[" in _on_a_terminal(directory, "plan")
    plain = _on_a_terminal(directory, "--no-color", "plan")
    assert "experiment.demo will be created" in plain and "\x1b[" not in plain
    (directory / "main.hcl").write_text(CONFIG.replace("max_trials", "max_trails"))
    assert "\x1b[" in _on_a_terminal(directory, "validate")
    plain = _on_a_terminal(directory, "--no-color", "validate")
    assert "Error:" in plain and "\x1b[" not in plain


def test_shell_completion_script(directory: Path) -> None:
    result = run_cli(directory, "--show-completion", "bash")
    assert result.code == 0, result.text
    assert "_TUNECTL_COMPLETE" in result.out and "complete " in result.out
    assert "--install-completion" in run_cli(directory, "--help").out


# -- logs -------------------------------------------------------------------------------


def test_logs_says_which_trial_and_hides_report_lines(directory: Path) -> None:
    result = run_cli(directory, "apply", "--auto-approve", timeout=300)
    assert result.code == 0, result.text
    logs = run_cli(directory, "logs", "experiment.demo")
    assert logs.code == 0, logs.text
    assert logs.out == "loading data\ndone\n"
    assert logs.err.splitlines()[0] == "==> experiment.demo.trial[1] (the latest): complete <=="
    assert "(2 report lines not shown: --all shows them)" in logs.err
    everything = run_cli(directory, "logs", "experiment.demo.trial[0]", "--all")
    assert everything.code == 0, everything.text
    assert re.findall(r"^@tunectl .*$", everything.out, re.M) == [
        '@tunectl {"step": 1, "metrics": {"acc": 0.5}}',
        '@tunectl {"step": 2, "metrics": {"acc": 0.75}}',
    ]
    assert everything.err.splitlines() == ["==> experiment.demo.trial[0]: complete <=="]


# -- state mv ---------------------------------------------------------------------------


def test_state_mv_renames_an_experiment_with_its_results(directory: Path) -> None:
    assert run_cli(directory, "apply", "--auto-approve", timeout=300).code == 0
    before = json.loads(run_cli(directory, "show", "experiment.demo", "--json").out)
    moved = run_cli(directory, "state", "mv", "experiment.demo", "experiment.renamed")
    assert moved.code == 0, moved.text
    assert moved.out == "Moved experiment.demo to experiment.renamed\n"
    assert run_cli(directory, "state", "list").out == "experiment.renamed\n"
    after = json.loads(run_cli(directory, "show", "experiment.renamed", "--json").out)
    assert [(t["number"], t["value"]) for t in after] == [(t["number"], t["value"]) for t in before]
    assert all(t["experiment"] == "renamed" for t in after)
    detail = json.loads(run_cli(directory, "show", "experiment.renamed.trial[0]", "--json").out)
    assert detail["tasks"] and detail["metrics"]
    logs = run_cli(directory, "logs", "experiment.renamed.trial[0]")
    assert logs.code == 0 and logs.out == "loading data\ndone\n", logs.text
    # With the block renamed too, there is nothing to do.
    (directory / "main.hcl").write_text(CONFIG.replace('"demo"', '"renamed"'))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text


@pytest.mark.parametrize(
    "args, message",
    [
        (["experiment.nope", "experiment.x"], "experiment.nope is not in the state."),
        (["experiment.demo", "experiment.demo"], "already has that name"),
        (["experiment.demo", "experiment.other"], "tunectl state rm experiment.other"),
        (["experiment.demo", "experiment.x.trial[1]"], "Error:"),
        (["experiment.demo"], "Missing argument 'NEW_ADDR'"),
    ],
)
def test_state_mv_refuses(directory: Path, args, message) -> None:
    two = CONFIG + CONFIG.replace('"demo"', '"other"')
    (directory / "main.hcl").write_text(two.replace("max_trials     = 2", "max_trials = 1"))
    assert run_cli(directory, "apply", "--auto-approve", timeout=300).code == 0
    result = run_cli(directory, "state", "mv", *args)
    assert result.code == 1 and message in result.err, result.text
    assert "Traceback" not in result.err
    assert run_cli(directory, "state", "list").out == "experiment.demo\nexperiment.other\n"


# -- a configuration directory copied with its state ------------------------------------


def test_a_copy_with_its_state_says_how_to_start_fresh(directory: Path) -> None:
    assert run_cli(directory, "apply", "--auto-approve", timeout=300).code == 0
    copy = directory.parent / "copy"
    shutil.copytree(directory, copy)
    result = run_cli(copy, "plan")
    assert result.code == 1 and "State belongs to another configuration" in result.err
    state = copy / "state"
    assert f"start fresh: move tunectl.db (and its .backup) out of {state}" in result.err
    for path in state.glob("tunectl.db*"):
        path.rename(copy / path.name)
    fresh = run_cli(copy, "plan", "--detailed-exitcode")
    assert fresh.code == 2 and "experiment.demo will be created" in fresh.out, fresh.text
    # The original is untouched.
    assert run_cli(directory, "plan", "--detailed-exitcode").code == 0


def test_state_mv_refuses_a_running_experiment(directory: Path) -> None:
    (directory / "main.hcl").write_text(CONFIG.replace("trial.py", "trial.py; sleep 30"))
    assert run_cli(directory, "apply", "--auto-approve", "--once", timeout=300).code == 0
    try:
        result = run_cli(directory, "state", "mv", "experiment.demo", "experiment.x")
        assert result.code == 1 and "Experiment is running" in result.err, result.text
        assert "let tunectl apply run them to the end" in result.err
        assert run_cli(directory, "state", "list").out == "experiment.demo\n"
    finally:
        run_cli(directory, "destroy", "--auto-approve", timeout=300)
