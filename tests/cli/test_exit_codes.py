"""Exit codes and closing words that tell the truth (SPEC 4 and 6 "Exit codes").

`apply` exits 1 with an `Error:` naming an experiment that ended failed; `destroy` closes
with `Destroy complete! N experiments destroyed.`; `plan --detailed-exitcode` exits 2
whenever apply would do anything, trials still to run included, and 0 when there is
nothing to do, so that cron's `plan --detailed-exitcode || apply` applies exactly when
there is work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_apply import TRIAL, config
from tests.conftest import REPO, cli_env, run_cli, write


def setup(tmp_path: Path, hcl: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def status(directory: Path) -> str:
    result = run_cli(directory, "show", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)["experiments"]["demo"]["status"]


def test_failed_experiment_makes_apply_exit_1_naming_it(tmp_path: Path) -> None:
    # Every trial exits 3: the second failure exceeds max_failed_trials = 1.
    hcl = config(max_trials=6, concurrent=1, args="steps=1 fail=1", extra="max_failed_trials = 1")
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 1, result.text
    assert "Error: experiment.demo failed" in result.err
    assert "max_failed_trials" in result.err and "2 failed" in result.err
    assert "Traceback" not in result.text
    # The words agree with the exit code: no "Apply complete." over a failed experiment.
    assert "Apply complete" not in result.out and "Apply failed." in result.out
    assert "experiment.demo: failed" in result.out
    assert status(directory) == "failed"
    # The failure was reported when it happened; a later apply has nothing to do.
    again = run_cli(directory, "apply", "--auto-approve")
    assert again.code == 0 and "No changes" in again.out, again.text


def test_succeeded_experiment_exits_0(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2, extra="max_failed_trials = 1"))
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert "Apply complete." in result.out and "Error" not in result.text
    assert status(directory) == "succeeded"


def test_failed_experiment_under_once_exits_1_when_it_fails(tmp_path: Path) -> None:
    # With --once, apply exits 1 on the pass in which the experiment ends failed.
    hcl = config(max_trials=4, concurrent=2, args="steps=1 fail=1", extra="max_failed_trials = 1")
    directory = setup(tmp_path, hcl)
    codes = []
    for _ in range(20):
        result = run_cli(directory, "apply", "--auto-approve", "--once")
        codes.append(result.code)
        if result.code != 0:
            assert "Error: experiment.demo failed" in result.err, result.text
            break
        assert "Error" not in result.text, result.text
    assert codes[-1] == 1, codes
    assert status(directory) == "failed"


def test_destroy_closing_line(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1))
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    lines = result.out.strip().splitlines()
    assert lines[-1] == "Destroy complete! 1 experiment destroyed.", result.out
    assert "No changes" not in result.out
    # Nothing left: still a true closing line, with 0.
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    assert result.out.strip().splitlines()[-1] == "Destroy complete! 0 experiments destroyed."


def test_destroy_of_two_experiments_counts_both(tmp_path: Path) -> None:
    one = config(max_trials=1)
    two = one.replace('experiment "demo"', 'experiment "other"').split("output")[0]
    directory = setup(tmp_path, one + two)
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    assert result.out.strip().splitlines()[-1] == "Destroy complete! 2 experiments destroyed."


def test_cancelled_destroy_exits_1(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1))
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    result = run_cli(directory, "destroy", input="no\n")
    assert result.code == 1 and "Destroy complete" not in result.out, result.text
    assert status(directory) == "succeeded"


def test_detailed_exitcode_counts_trials_left_to_run(tmp_path: Path) -> None:
    hcl = config(max_trials=3, concurrent=1, args="steps=1 sleep=0.5")
    directory = setup(tmp_path, hcl)
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    # One pass starts one trial and leaves two to run: apply would still do something.
    once = run_cli(directory, "apply", "--auto-approve", "--once")
    assert once.code == 0, once.text
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "No changes" in plan.out and "still have trials to run" in plan.out
    assert "will run up to 2 trials" in plan.out or "will run up to 3 trials" in plan.out
    # `plan --detailed-exitcode || apply`, as cron runs it: apply runs while work is left.
    script = (
        f"{sys.executable} -m tunectl --chdir {directory} plan --detailed-exitcode >/dev/null"
        f" || {sys.executable} -m tunectl --chdir {directory} apply --auto-approve"
    )
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete." in done.stdout
    assert status(directory) == "succeeded"
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out, plan.text
    # Nothing to do: the same line leaves apply alone.
    quiet = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=120
    )
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout + quiet.stderr


def test_detailed_exitcode_error_is_1(tmp_path: Path) -> None:
    directory = setup(tmp_path, config().replace("max_trials", "max_trails"))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 1 and "Error: Unsupported argument" in plan.err, plan.text


def test_usage_errors_exit_nonzero_without_traceback(tmp_path: Path) -> None:
    directory = setup(tmp_path, config())
    for args in (["apply", "--no-such-flag"], ["plan", "--detailed-exitcode=maybe"], ["frob"]):
        result = run_cli(directory, *args)
        assert result.code not in (0, 2), (args, result.text)
        assert "Traceback" not in result.text and result.err.strip(), (args, result.text)
