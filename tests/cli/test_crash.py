"""`kill -9` of apply at random moments loses nothing, launches nothing twice, orphans nothing.

Marked slow. `.ci/run` runs it bounded (TUNECTL_SOAK=ci: 6 kills); TUNECTL_SOAK=full runs
25 kills. The seed is printed so a failure can be replayed with TUNECTL_CRASH_SEED.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import processes_in
from tests.cli.test_apply import TRIAL, config, launches, show, trials
from tests.conftest import cli_env, run_cli, write

pytestmark = pytest.mark.slow


def kills() -> int:
    return 25 if os.environ.get("TUNECTL_SOAK") == "full" else 6


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    seed = int(os.environ.get("TUNECTL_CRASH_SEED", random.randrange(1 << 30)))
    print(f"TUNECTL_CRASH_SEED={seed}")
    rng = random.Random(seed)
    max_trials = 60 if os.environ.get("TUNECTL_SOAK") == "full" else 24
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": config(
                max_trials=max_trials,
                concurrent=3,
                algorithm='algorithm "tpe" {\n    seed = 3\n  }',
                args="steps=4 sleep=0.15",
            ),
            "trial.py": TRIAL,
        },
    )
    done = False
    killed = 0
    for _ in range(kills() * 4):
        if killed >= kills():
            break
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        # Kill anywhere: during start-up, planning, submission, metric reads, state writes.
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
        if proc.returncode == 0:
            done = True
            break
    assert killed >= min(5, kills()), f"only {killed} kills landed (seed {seed})"
    if not done:
        result = run_cli(directory, "apply", "--auto-approve", timeout=300)
        assert result.code == 0, result.text

    records = trials(directory)
    assert [t["number"] for t in records] == list(range(max_trials)), f"seed {seed}"
    assert all(t["status"] == "complete" for t in records), f"seed {seed}: {records}"
    started = launches(directory)
    # Every trial's process was started exactly once.
    assert sorted(started) == sorted(t["id"] for t in records), f"seed {seed}: {started}"
    assert show(directory)["experiments"]["demo"]["status"] == "succeeded"
    deadline = time.monotonic() + 10
    while processes_in(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_in(directory), f"orphans left (seed {seed})"
    # And a further apply has nothing to do.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text


def test_sigkill_with_a_shared_s3_state_and_two_working_directories(tmp_path: Path) -> None:
    """Two clones of one configuration on this machine share an S3 state; applies from
    either are killed at random moments. Each clone follows only the trials it started
    (their processes live under its own state directory), the other never launches them
    again, and together they end with exactly the trials one apply would have run."""
    import uuid

    from tunectl.testing.s3 import S3_ENV, S3Server

    seed = int(os.environ.get("TUNECTL_CRASH_SEED", random.randrange(1 << 30)))
    print(f"TUNECTL_CRASH_SEED={seed}")
    rng = random.Random(seed)
    max_trials = 40 if os.environ.get("TUNECTL_SOAK") == "full" else 16
    with S3Server() as server:
        bucket = f"b-{uuid.uuid4().hex[:12]}"
        server.create_bucket(bucket)
        backend = (
            'tunectl {\n  backend "s3" {\n'
            f'    bucket = "{bucket}"\n    key = "team/tunectl.db"\n'
            f'    endpoint = "{server.url}"\n    region = "us-east-1"\n'
            "    force_path_style = true\n  }\n}\n"
        )
        files = {
            "main.hcl": backend
            + config(
                max_trials=max_trials,
                concurrent=3,
                algorithm='algorithm "tpe" {\n    seed = 3\n  }',
                args="steps=4 sleep=0.15",
            ),
            "trial.py": TRIAL,
        }
        clones = [write(tmp_path / name / "cfg", files) for name in ("a", "b")]
        env = cli_env(**S3_ENV)

        killed = 0
        for _ in range(kills() * 4):
            if killed >= kills():
                break
            directory = rng.choice(clones)
            proc = subprocess.Popen(
                [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            time.sleep(rng.uniform(0.3, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            _, err = proc.communicate(timeout=60)
            assert b"Traceback" not in err, err.decode()
        assert killed >= min(5, kills()), f"only {killed} kills landed (seed {seed})"

        # Each clone follows its own trials; alternate until the experiment has ended.
        for turn in range(8):
            directory = clones[turn % 2]
            result = run_cli(directory, "apply", "--auto-approve", env=env, timeout=300)
            assert result.code == 0, f"seed {seed}: {result.text}"
            status = json.loads(run_cli(directory, "show", "--json", env=env).out)
            if status["experiments"]["demo"]["status"] == "succeeded":
                break
        records = json.loads(run_cli(clones[0], "show", "experiment.demo", "--json", env=env).out)
        assert [t["number"] for t in records] == list(range(max_trials)), f"seed {seed}"
        assert all(t["status"] == "complete" for t in records), f"seed {seed}: {records}"
        started = launches(clones[0]) + launches(clones[1])
        # Every trial's process was started exactly once, by one clone or the other.
        assert sorted(started) == sorted(t["id"] for t in records), f"seed {seed}: {started}"
        for directory in clones:
            deadline = time.monotonic() + 10
            while processes_in(directory) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not processes_in(directory), f"orphans left (seed {seed})"
            plan = run_cli(directory, "plan", "--detailed-exitcode", env=env)
            assert plan.code == 0, f"seed {seed}: {plan.text}"
