"""tunectl on DLC from the command line: the real CLI, the official SDK, the emulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Faults, Server

REPO = Path(__file__).resolve().parents[3]

# A trial that reports `acc` for `steps` steps; from trial number `bad_from` on it is
# hopeless and slow (early stopping must stop its job).
TRIAL = """\
import sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
x, n = float(args["x"]), int(args["n"])
bad = n >= int(args.get("bad_from", 1 << 30))
steps = int(args.get("steps", 3))
for step in range(1, steps + 1):
    time.sleep(0.4 if bad else float(args.get("sleep", 0)))
    print(f"acc={(1 - (x - 0.3) ** 2 - (5 if bad else 0)) * step / steps:.6f}", flush=True)
"""


def config(endpoint: str, *, trials: int = 4, concurrent: int = 2, args: str = "", extra: str = ""):
    return textwrap.dedent(
        f"""\
        provider "dlc" {{
          region       = "cn-hangzhou"
          workspace_id = "ws-test"
          endpoint     = "{endpoint}"
          protocol     = "http"
          log_interval = 0
          log_delay    = 0
        }}

        experiment "dlcx" {{
          algorithm "random" {{
            seed = 2
          }}
          objective {{
            metric    = "acc"
            direction = "maximize"
          }}
          max_trials     = {trials}
          max_concurrent = {concurrent}
          {extra}
          param "x" {{
            type = "uniform"
            low  = 0
            high = 1
          }}
          trial {{
            provider = "dlc"
            image    = "registry.example.com/train:1"
            worker   = {{ count = 1, ecs_spec = "ecs.g6.xlarge" }}
            command  = "python3 {{CODE}}/trial.py x=${{param.x}} n=${{trial.number}} {args}"
          }}
        }}
        """
    )


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        out.pop(name, None)
    out.update(
        NO_COLOR="1",
        ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
    )
    out.update(extra)
    return out


def tunectl(directory: Path, *args: str, timeout: float = 120, **extra: str):
    return subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra),
    )


def setup(tmp_path: Path, server: Server, **kwargs) -> Path:
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / "trial.py").write_text(TRIAL)
    text = config(server.endpoint, **kwargs).replace("{CODE}", str(directory))
    (directory / "main.hcl").write_text(text)
    return directory


def jobs_of(server: Server, directory: Path) -> list:
    with server.emulator.lock:
        return [j for j in server.emulator.jobs.values() if str(directory) in j.spec["UserCommand"]]


def trials(directory: Path) -> list[dict]:
    return json.loads(tunectl(directory, "show", "experiment.dlcx", "--json").stdout)


def test_full_apply_of_the_dlc_example(tmp_path: Path, server: Server) -> None:
    example = tmp_path / "dlc-digits"
    shutil.copytree(
        REPO / "examples" / "dlc-digits", example, ignore=shutil.ignore_patterns("state")
    )
    extra = {
        "TUNECTL_VAR_endpoint": server.endpoint,
        "TUNECTL_VAR_protocol": "http",
        "TUNECTL_VAR_code_dir": str(REPO / "examples" / "quickstart"),
    }
    plan = tunectl(example, "plan", **extra)
    assert plan.returncode == 0 and "estimated cost ¥5.55" in plan.stdout, plan.stderr
    result = tunectl(example, "apply", "--auto-approve", **extra)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = json.loads(tunectl(example, "show", "--json", **extra).stdout)
    exp = shown["experiments"]["digits_dlc"]
    assert exp["status"] == "succeeded"
    assert exp["trials"]["complete"] + exp["trials"]["pruned"] == 6
    assert exp["best"]["value"] > 0.9
    # The jobs are real DLC jobs: named and tagged by their keys, one per trial.
    with server.emulator.lock:
        mine = [j for j in server.emulator.jobs.values() if "quickstart" in j.spec["UserCommand"]]
    assert len(mine) == 6
    assert all(j.spec["Settings"]["Tags"]["tunectl-key"] == j.spec["DisplayName"] for j in mine)
    assert all(j.spec["JobType"] == "PyTorchJob" for j in mine)


@pytest.mark.slow
def test_crash_resume_adopts_running_jobs(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=4, concurrent=2, args="sleep=0.5 steps=4")
    for _ in range(3):  # kill apply while jobs run, three times
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(),
        )
        deadline = time.monotonic() + 30
        while not any(j.status == "Running" for j in jobs_of(server, directory)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 4
    names = [j.spec["DisplayName"] for j in jobs_of(server, directory)]
    assert len(names) == len(set(names)) == 4  # adopted, never created twice


def test_pruning_stops_the_job(tmp_path: Path, server: Server) -> None:
    directory = setup(
        tmp_path,
        server,
        trials=5,
        concurrent=1,
        args="steps=8 bad_from=3",
        extra='early_stopping "median" {\n    n_startup_trials = 3\n    start_step = 2\n  }',
    )
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 3 + ["pruned"] * 2
    by_trial = {j.spec["Envs"]["TUNECTL_TRIAL_KEY"]: j for j in jobs_of(server, directory)}
    stopped = [j for j in by_trial.values() if j.status == "Stopped"]
    assert len(stopped) == 2


def test_destroy_stops_all_jobs_and_drift_is_shown(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=3, concurrent=3, args="sleep=20")
    result = tunectl(directory, "apply", "--auto-approve", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 30
    while sum(j.status == "Running" for j in jobs_of(server, directory)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim, gone = jobs_of(server, directory)[:2]
    server.emulator.stop_outside(victim.id)  # someone stops a job in the console
    server.emulator.vanish(gone.id)  # and another job disappears altogether
    plan = tunectl(directory, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "Objects have changed outside of tunectl" in plan.stdout
    assert '-> "cancelled"' in plan.stdout and '-> "lost"' in plan.stdout
    # Apply takes both in: the stopped trial failed; the vanished one is relaunched.
    result = tunectl(directory, "apply", "--auto-approve", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    number = int(re.search(r"-t(\d+)-k", victim.spec["DisplayName"]).group(1))  # type: ignore[union-attr]
    stopped = next(t for t in trials(directory) if t["number"] == number)
    assert stopped["status"] == "failed" and "stopped" in stopped["message"]
    relaunched = [j for j in jobs_of(server, directory) if j.spec["DisplayName"].endswith("-a1")]
    assert len(relaunched) == 1 and relaunched[0].status != "Stopped"
    result = tunectl(directory, "destroy", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(j.status == "Stopped" for j in jobs_of(server, directory))
    assert json.loads(tunectl(directory, "show", "--json").stdout)["experiments"] == {}


@pytest.mark.slow
def test_thirty_percent_faults_lose_nothing(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=5, concurrent=3, args="steps=2")
    server.emulator.faults = Faults(throttle=0.15, error=0.15, seed=7)
    try:
        result = tunectl(directory, "apply", "--auto-approve", timeout=300)
    finally:
        server.emulator.faults = Faults()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [t["status"] for t in trials(directory)] == ["complete"] * 5
    names = [j.spec["DisplayName"] for j in jobs_of(server, directory)]
    assert len(names) == len(set(names)) == 5


def test_credentials_stay_out_of_state_plan_and_logs(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=1)
    plan = tunectl(directory, "plan", "--out", "p.plan")
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = plan.stdout + plan.stderr + result.stdout + result.stderr
    files = [directory / "p.plan", *sorted((directory / "state").rglob("*"))]
    for secret in (TEST_KEY_SECRET, TEST_KEY_ID):
        assert secret not in outputs
        for path in files:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    # The job itself got no credentials either.
    (job,) = jobs_of(server, directory)
    assert TEST_KEY_SECRET not in json.dumps(job.spec)


def test_wrong_credentials_are_a_clear_error(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=1)
    result = tunectl(directory, "apply", "--auto-approve", ALIBABA_CLOUD_ACCESS_KEY_SECRET="nope")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Error: Provider refused the trial" in result.stderr
    assert "SignatureDoesNotMatch" in text and "Traceback" not in text and "nope" not in text
    assert jobs_of(server, directory) == []  # nothing was created with bad credentials
