"""The other commands from the command line: init, validate, providers, plan views and
options, show, output, logs, state surgery, lifecycle rules and drift."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import processes_in
from tests.cli.test_apply import TRIAL, apply, config, launches, show, trials
from tests.conftest import cli_env, run_cli, write


def setup(tmp_path: Path, hcl: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def test_init_validate_providers(tmp_path: Path) -> None:
    directory = setup(tmp_path, config())
    result = run_cli(directory, "init")
    assert result.code == 0 and "local" in result.out
    assert (directory / "state" / "tunectl.db").exists()
    result = run_cli(directory, "validate", "--json")
    assert result.code == 0
    assert json.loads(result.out)["valid"] is True
    (directory / "main.hcl").write_text(config().replace("max_trials", "max_trails"))
    result = run_cli(directory, "validate", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["valid"] is False and report["error_count"] >= 1
    diag = report["diagnostics"][0]
    assert diag["severity"] == "error" and diag["range"]["filename"] == "main.hcl"
    result = run_cli(directory, "providers")
    assert result.code == 0
    assert any(line.startswith("local ") for line in result.out.splitlines()), result.out


def test_plan_json_markdown_and_out(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=3))
    result = run_cli(directory, "plan", "--json")
    assert result.code == 0
    plan = json.loads(result.out)
    assert plan["format_version"]
    (change,) = plan["changes"]
    assert change["address"] == "experiment.demo" and change["action"] == "create"
    assert change["intent"]["to_run"] == 3
    result = run_cli(directory, "plan", "--markdown")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "<!-- tunectl plan: cfg -->"  # how CI finds the comment to update
    assert lines[1].startswith("###") and "1 to add" in result.out
    assert "<details>" in result.out and "```diff" in result.out
    result = run_cli(directory, "plan", "--out", "saved.plan")
    assert result.code == 0 and 'tunectl apply "saved.plan"' in result.out
    shown = run_cli(directory, "show", "saved.plan")
    assert shown.code == 0 and "experiment.demo will be created" in shown.out
    # A plan file holds no variable marked sensitive.
    assert b"secret" not in (directory / "saved.plan").read_bytes()


def test_sensitive_variable_stays_out_of_plan_file_and_outputs(tmp_path: Path) -> None:
    hcl = config(max_trials=1) + (
        'variable "token" {\n  type = string\n  sensitive = true\n}\n'
        'output "tok" {\n  value = var.token\n  sensitive = true\n}\n'
    )
    directory = setup(tmp_path, hcl)
    env = cli_env(TUNECTL_VAR_token="hunter2-secret")
    result = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "plan", "--out", "p.plan"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert b"hunter2" not in (directory / "p.plan").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "tok = <sensitive>" in result.stdout
    state_bytes = (directory / "state" / "tunectl.db").read_bytes()
    assert b"hunter2" not in state_bytes  # SPEC 5: secrets never land in the state
    output = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "output", "tok", "--raw"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert output.stdout.strip() == "hunter2-secret"  # asked for by name, as Terraform


def test_target_replace_and_destroy_plan(tmp_path: Path) -> None:
    two = (
        config(max_trials=1)
        + config(max_trials=1).replace('"demo"', '"other"').split('output "best"')[0]
    )
    directory = setup(tmp_path, two)
    result = run_cli(directory, "apply", "--auto-approve", "--target", "experiment.other")
    assert result.code == 0, result.text
    assert sorted(show(directory)["experiments"]) == ["other"]
    assert run_cli(directory, "plan", "--target", "experiment.nope").code == 1
    assert apply(directory).code == 0
    plan = run_cli(directory, "plan", "--replace", "experiment.demo")
    assert plan.code == 0 and "experiment.demo must be replaced" in plan.out
    assert "(because replacement requested with --replace)" in plan.out
    plan = run_cli(directory, "plan", "--destroy")
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in plan.out
    result = run_cli(directory, "destroy", "--auto-approve", "--target", "experiment.demo")
    assert result.code == 0, result.text
    assert sorted(show(directory)["experiments"]) == ["other"]


def test_prevent_destroy_and_ignore_changes(tmp_path: Path) -> None:
    guarded = config(max_trials=1).replace(
        "  trial {", "  lifecycle {\n    prevent_destroy = true\n  }\n  trial {"
    )
    directory = setup(tmp_path, guarded)
    assert apply(directory).code == 0
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 1 and "prevent_destroy" in result.text
    assert show(directory)["experiments"]["demo"]["status"] == "succeeded"

    ignoring = config(max_trials=1).replace(
        "  trial {", '  lifecycle {\n    ignore_changes = ["max_concurrent"]\n  }\n  trial {'
    )
    (directory / "main.hcl").write_text(
        ignoring.replace("max_concurrent = 2", "max_concurrent = 3")
    )
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    # lifecycle itself changed (an in-place update), max_concurrent is ignored.
    assert "~ max_concurrent" not in plan.out and "2 -> 3" not in plan.out, plan.out


def test_state_list_show_rm(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1))
    assert apply(directory).code == 0
    assert run_cli(directory, "state", "list").out.split() == ["experiment.demo"]
    shown = run_cli(directory, "state", "show", "experiment.demo")
    assert shown.code == 0 and "max_trials" in shown.out
    missing = run_cli(directory, "state", "show", "experiment.nope")
    assert missing.code == 1 and "Error:" in missing.err
    assert run_cli(directory, "state", "rm", "experiment.demo").code == 0
    assert run_cli(directory, "state", "list").out.strip() == ""
    # Forgotten, not destroyed: the next plan creates it again.
    assert "experiment.demo will be created" in run_cli(directory, "plan").out


def test_show_output_and_logs(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2))
    assert apply(directory).code == 0
    summary = show(directory)
    assert summary["experiments"]["demo"]["trials"]["complete"] == 2
    human = run_cli(directory, "show", "experiment.demo")
    assert human.code == 0 and "complete" in human.out
    outputs = json.loads(run_cli(directory, "output", "--json").out)
    best = max(t["value"] for t in trials(directory))
    assert outputs["best"]["value"] == best
    one = run_cli(directory, "show", "experiment.demo.trial[1]")
    assert one.code == 0 and one.out.startswith("# experiment.demo.trial[1]: complete")
    assert "task main (attempt 1): succeeded, exit code 0" in one.out
    detail = show(directory, "experiment.demo.trial[1]")
    assert detail["tasks"][0]["status"] == "succeeded" and detail["metrics"]
    logs = run_cli(directory, "logs", "experiment.demo", "--trial", "1")
    assert logs.code == 0 and logs.out.startswith("acc=")
    bad = run_cli(directory, "logs", "experiment.demo", "--trial", "9")
    assert bad.code == 1 and "Error:" in bad.err


def test_force_unlock_after_a_killed_holder(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1, args="sleep=30"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    deadline = time.monotonic() + 30
    while not launches(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    held = run_cli(directory, "plan")
    assert held.code == 1 and "Error acquiring the state lock" in held.err
    lock_id = next(line.split(":", 1)[1].strip() for line in held.err.splitlines() if "ID:" in line)
    wrong = run_cli(directory, "force-unlock", "-force", "not-the-id")
    assert wrong.code == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The kernel released the lock with the process; force-unlock removes its record.
    result = run_cli(directory, "force-unlock", lock_id, input="yes\n")
    assert result.code in (0, 1), result.text
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text  # stops the still-running trial
    for _ in range(100):
        if not _running(directory):
            break
        time.sleep(0.05)
    assert not _running(directory)


def test_drift_is_shown_by_plan_and_handled_by_apply(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2, concurrent=2, args="sleep=30"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    deadline = time.monotonic() + 30
    while len(launches(directory)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Someone kills one trial (its whole process group) outside tunectl.
    victim = sorted((directory / "state" / "tasks").glob("*-t0-*"))[0]
    os.killpg(os.getpgid(int((victim / "pid").read_text())), signal.SIGKILL)
    time.sleep(0.3)
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert "Objects have changed outside of tunectl" in plan.out
    assert "experiment.demo.trial[0] has changed" in plan.out
    # (The task was last seen pending or running, depending on when apply was killed.)
    assert re.search(r'status = "(pending|running)" -> "(lost|failed)"', plan.out), plan.out
    # Apply takes it in (the killed trial failed) and stops the other on destroy.
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    assert not _running(directory)


def _running(directory: Path) -> list[int]:
    return processes_in(directory)


def test_lock_timeout_waits_for_the_holder(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1, args="sleep=1.5"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    deadline = time.monotonic() + 30
    while not launches(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.monotonic()
    plan = run_cli(directory, "plan", "--lock-timeout", "60s", "--detailed-exitcode")
    assert plan.code == 0, plan.text  # waited, then found nothing left to do
    assert time.monotonic() - start > 0.5
    assert proc.wait(timeout=60) == 0
    bad = run_cli(directory, "plan", "--lock-timeout", "soon")
    assert bad.code == 1 and "Invalid --lock-timeout" in bad.err
