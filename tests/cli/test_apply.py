"""`tunectl apply` from the command line, on the local provider, with real processes.

Each test writes a configuration and a small trial script, runs the real CLI in a
subprocess and checks the state through `tunectl show --json`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import cli_env, run_cli, write

# The trial: appends its id to launches.log (one line per process started), then prints
# `acc=` once per step; the objective is best at x = 0.3. `fail=1` makes it exit 3.
# Changing a trial's command replaces the experiment, so behaviour that must change
# between trials of one experiment keys on the trial number (`n`, `bad_from`).
TRIAL = """\
import os, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
with open("launches.log", "a") as f:
    f.write(args["id"] + "\\n")
x = float(args.get("x", 0))
steps = int(args.get("steps", 1))
# From trial number `bad_from` on, the trial is hopeless (and slow).
if int(args.get("n", 0)) >= int(args.get("bad_from", 1 << 30)):
    args.update(bad="5", sleep="0.3")
for step in range(1, steps + 1):
    time.sleep(float(args.get("sleep", 0)))
    score = 1 - (x - 0.3) ** 2 - float(args.get("bad", 0))
    print(f"acc={score * step / steps:.6f}", flush=True)
if args.get("fail") == "1":
    sys.exit(3)
"""


def config(
    *,
    max_trials: int = 4,
    concurrent: int = 2,
    algorithm: str = 'algorithm "tpe" {\n    seed = 7\n  }',
    extra: str = "",
    params: str = 'param "x" {\n    type = "uniform"\n    low  = 0\n    high = 1\n  }',
    args: str = "steps=1",
    trial_extra: str = "",
) -> str:
    return f"""\
experiment "demo" {{
  {algorithm}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {max_trials}
  max_concurrent = {concurrent}
  {extra}
  {params}
  trial {{
    command = "python3 trial.py id=${{trial.id}} x=${{param.x}} {args}"
    workdir = "."
    {trial_extra}
  }}
}}

output "best" {{
  value = experiment.demo.best.value
}}
"""


def setup(tmp_path: Path, hcl: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def show(directory: Path, *args: str) -> dict | list:
    result = run_cli(directory, "show", *args, "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def trials(directory: Path) -> list[dict]:
    return show(directory, "experiment.demo")  # type: ignore[return-value]


def launches(directory: Path) -> list[str]:
    path = directory / "launches.log"
    return path.read_text().split() if path.exists() else []


def apply(directory: Path, *args: str, timeout: float = 120):
    return run_cli(directory, "apply", "--auto-approve", *args, timeout=timeout)


# -- lifecycle ---------------------------------------------------------------------------


def test_full_lifecycle(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=3))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2 and "# experiment.demo will be created" in plan.out, plan.text

    result = apply(directory)
    assert result.code == 0, result.text
    assert "Apply complete" in result.out and "best" in result.out
    first = trials(directory)
    assert [t["status"] for t in first] == ["complete"] * 3
    assert show(directory)["experiments"]["demo"]["status"] == "succeeded"

    # Nothing changed: no changes, exit 0 with --detailed-exitcode.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text
    assert "No changes" in plan.out

    # Raising max_trials is an in-place update that continues the same study.
    (directory / "main.hcl").write_text(config(max_trials=5))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2 and "# experiment.demo will be updated in-place" in plan.out
    assert "~ max_trials" in plan.out and "3 -> 5" in plan.out
    assert "forces replacement" not in plan.out
    assert apply(directory).code == 0
    second = trials(directory)
    assert [t["number"] for t in second] == [0, 1, 2, 3, 4]
    assert second[:3] == first  # the first three are kept as they were
    assert len(launches(directory)) == 5

    # Changing the search space forces replacement: a new study from trial 0.
    (directory / "main.hcl").write_text(
        config(
            max_trials=2, params='param "x" {\n    type = "uniform"\n    low = 0\n    high = 2\n  }'
        )
    )
    plan = run_cli(directory, "plan")
    assert "# experiment.demo must be replaced" in plan.out, plan.out
    assert "param.x.high" in plan.out and "# forces replacement" in plan.out
    assert apply(directory).code == 0
    third = trials(directory)
    assert [t["number"] for t in third] == [0, 1]
    assert all(t["generation"] == 2 for t in third)

    # Outputs come from the last apply.
    output = run_cli(directory, "output", "best", "--raw")
    assert output.code == 0 and float(output.out) == max(t["value"] for t in third)

    # Destroy forgets the experiment and its models.
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    assert show(directory)["experiments"] == {}
    assert not (directory / "state" / "models" / "demo").exists()


def test_apply_prompts_and_refuses_without_yes(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1))
    result = run_cli(directory, "apply", input="no\n")
    assert result.code == 1
    assert "Apply cancelled" in result.text or "cancelled" in result.text.lower()
    assert launches(directory) == []


def test_saved_plan_is_applied_without_prompt(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2))
    assert run_cli(directory, "plan", "--out", "p.plan").code == 0
    result = run_cli(directory, "apply", "p.plan")
    assert result.code == 0, result.text
    assert len(trials(directory)) == 2
    # The plan is now stale: the state moved on.
    again = run_cli(directory, "apply", "p.plan")
    assert again.code == 1 and "Saved plan is stale" in again.err


# -- stop conditions ---------------------------------------------------------------------


def test_max_failed_trials(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        config(max_trials=10, concurrent=1, extra="max_failed_trials = 2", args="fail=1"),
    )
    result = apply(directory)
    # The experiment ends failed: apply exits 1 naming it (SPEC 6 "Exit codes").
    assert result.code == 1 and "Error: experiment.demo failed" in result.err, result.text
    exp = show(directory)["experiments"]["demo"]
    assert exp["stop_reason"] == "max_failed_trials" and exp["status"] == "failed"
    # max_failed_trials = 2 tolerates two failures; the third ends the experiment.
    assert [t["status"] for t in trials(directory)] == ["failed"] * 3
    assert "exited" in trials(directory)[0]["message"] and "3" in trials(directory)[0]["message"]


def test_retries_relaunch_a_failed_trial(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        config(max_trials=1, concurrent=1, args="fail=1", trial_extra="retries = 2"),
    )
    assert apply(directory).code == 1  # no trial complete: the experiment failed
    (trial,) = trials(directory)
    assert trial["status"] == "failed" and trial["attempt"] == 2
    assert len(launches(directory)) == 3  # the first attempt and two retries


def test_goal_stops_the_experiment(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        config(max_trials=20, concurrent=1).replace(
            'direction = "maximize"', 'direction = "maximize"\n    goal = 0.0'
        ),
    )
    assert apply(directory).code == 0
    exp = show(directory)["experiments"]["demo"]
    assert exp["stop_reason"] == "goal" and exp["status"] == "succeeded"
    assert len(trials(directory)) == 1


def test_max_trials_without_improvement(tmp_path: Path) -> None:
    # A constant objective never improves after the first trial.
    directory = setup(
        tmp_path,
        config(
            max_trials=20, concurrent=1, extra="max_trials_without_improvement = 3", args="x=0.3"
        ),
    )
    assert apply(directory).code == 0
    exp = show(directory)["experiments"]["demo"]
    assert exp["stop_reason"] == "no_improvement"
    assert len(trials(directory)) == 4


def test_max_duration(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        config(max_trials=50, concurrent=1, extra='max_duration = "1s"', args="sleep=0.4"),
    )
    start = time.monotonic()
    assert apply(directory).code == 0
    assert time.monotonic() - start < 30
    exp = show(directory)["experiments"]["demo"]
    assert exp["stop_reason"] == "max_duration"
    assert 1 <= len(trials(directory)) < 10


def test_search_space_exhausted(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        config(
            max_trials=50,
            algorithm='algorithm "grid" {}',
            params='param "x" {\n    type = "choice"\n    values = [0.1, 0.3, 0.5]\n  }',
        ),
    )
    assert apply(directory).code == 0
    exp = show(directory)["experiments"]["demo"]
    assert exp["stop_reason"] == "exhausted"
    assert sorted(t["params"]["x"] for t in trials(directory)) == [0.1, 0.3, 0.5]


# -- early stopping ----------------------------------------------------------------------


def test_early_stopping_prunes_a_hopeless_trial(tmp_path: Path) -> None:
    # Five good trials, then hopeless ones: the median rule stops them at step 2, long
    # before their 8 steps of 0.3 s.
    directory = setup(
        tmp_path,
        config(
            max_trials=7,
            concurrent=1,
            algorithm='algorithm "random" {\n    seed = 1\n  }',
            extra='early_stopping "median" {\n    n_startup_trials = 5\n    start_step = 2\n  }',
            args="steps=8 n=${trial.number} bad_from=5",
        ),
    )
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 5 + ["pruned"] * 2, records
    assert all(t["last_step"] is not None and t["last_step"] < 8 for t in records[5:])
    assert "trial 5 pruned" in result.out
    # The pruned processes were stopped, not waited for: each ended well before its 8
    # steps of 0.3 s would have (the trial's own time, not apply's, which load stretches).
    assert all(t["finished_at"] - t["started_at"] < 8 * 0.3 for t in records[5:]), records


# -- guarantees --------------------------------------------------------------------------


def test_shell_injection_through_choice_value_is_impossible(tmp_path: Path) -> None:
    evil = ["a; touch pwned1", "$(touch pwned2)", "`touch pwned3`", "x' ; touch pwned4 '"]
    values = ", ".join(json.dumps(v) for v in evil)
    hcl = f"""\
experiment "demo" {{
  algorithm "grid" {{}}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials = 10
  param "opt" {{
    type   = "choice"
    values = [{values}]
  }}
  trial {{
    command = "python3 echo.py ${{param.opt}} && echo acc=1"
    workdir = "."
  }}
}}
"""
    echo = "import sys\nopen('args.log', 'a').write(repr(sys.argv[1:]) + '\\n')\n"
    directory = write(tmp_path / "cfg", {"main.hcl": hcl, "echo.py": echo})
    result = apply(directory)
    assert result.code == 0, result.text
    assert not list(directory.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    seen = sorted((directory / "args.log").read_text().splitlines())
    assert seen == sorted(repr([v]) for v in evil)  # each value arrived as one argument


def test_second_concurrent_apply_is_locked_out(tmp_path: Path) -> None:
    # The trial outlasts the two commands below however loaded the machine is.
    directory = setup(tmp_path, config(max_trials=1, concurrent=1, args="sleep=12"))
    first = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        _wait_for(lambda: launches(directory), 30)
        second = apply(directory)
        assert second.code == 1
        assert "Error acquiring the state lock" in second.err
        assert "OperationTypeApply" in second.err  # who holds it, and doing what
        plan = run_cli(directory, "plan")
        assert plan.code == 1 and "Error acquiring the state lock" in plan.err
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert len(launches(directory)) == 1


def test_ctrl_c_stops_launching_and_next_apply_adopts(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=4, concurrent=2, args="sleep=2"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    _wait_for(lambda: len(launches(directory)) == 2, 30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "Interrupt received" in err and "Traceback" not in err
    running = [t for t in trials(directory) if t["status"] == "running"]
    assert len(running) == 2  # still running, not killed, not forgotten
    assert len(launches(directory)) == 2  # nothing launched after the interrupt
    # The next apply adopts the two and runs the rest: four trials, four launches.
    assert apply(directory).code == 0
    assert [t["status"] for t in trials(directory)] == ["complete"] * 4
    assert sorted(launches(directory)) == sorted(set(launches(directory)))
    assert len(launches(directory)) == 4


def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2, concurrent=2, args="sleep=5"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    _wait_for(lambda: len(launches(directory)) == 2, 30)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 3
    assert proc.returncode == 130 and "Traceback" not in err
    assert apply(directory).code == 0  # and nothing was lost
    assert len(launches(directory)) == 2


def test_determinism_with_seed_and_one_at_a_time(tmp_path: Path) -> None:
    hcl = config(max_trials=6, concurrent=1)
    straight = setup(tmp_path / "a", hcl)
    assert apply(straight).code == 0
    resumed = setup(tmp_path / "b", hcl)
    # One pass at a time: every pass adopts, finishes and launches across processes.
    for _ in range(200):
        assert apply(resumed, "--once").code == 0
        if show(resumed)["experiments"]["demo"]["status"] == "succeeded":
            break
        time.sleep(0.05)
    a = [t["params"] for t in trials(straight)]
    b = [t["params"] for t in trials(resumed)]
    assert len(a) == 6 and a == b


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_lost_task_is_relaunched_without_using_retries(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1, concurrent=1, args="sleep=1.5"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    _wait_for(lambda: launches(directory), 30)
    time.sleep(0.2)
    # The machine loses the task: its whole process group is killed outside tunectl.
    (victim,) = (directory / "state" / "tasks").glob("*-t0-*")
    os.killpg(os.getpgid(int((victim / "pid").read_text())), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    (trial,) = trials(directory)
    assert trial["status"] == "complete" and trial["attempt"] == 1
    assert launches(directory) == [trial["id"], trial["id"]]
    assert "relaunching (infrastructure failure" in out
