"""An S3 outage of ~45 s in the middle of `apply`, with an S3 state backend.

The CLI talks to moto's server through `FaultProxy`; the test turns the proxy's fault rate
to 100% (503s, 500s and dropped connections) for OUTAGE seconds once apply has saved the
state, then back to 0. With the default retry window (10 minutes) apply rides it out:
trials go on launching during the outage and everything is saved once S3 answers. With
`retry_window = "5s"` apply stops with a diagnostic, and still releases its lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.testing.s3 import S3_ENV, FaultProxy, S3Server

OUTAGE = 45.0
STATE_KEY = "team/tunectl.db"

TRIAL = """\
import sys, time
with open("launches.log", "a") as f:
    f.write(f"{time.time()}\\n")
time.sleep(1.5)
print(f"acc={float(sys.argv[1]):.6f}", flush=True)
"""


def config(trials: int, retry_window: str | None) -> str:
    window = f'    retry_window     = "{retry_window}"\n' if retry_window else ""
    return f"""\
variable "endpoint" {{
  type = string
}}
variable "bucket" {{
  type = string
}}

tunectl {{
  backend "s3" {{
    bucket           = var.bucket
    key              = "{STATE_KEY}"
    endpoint         = var.endpoint
    region           = "us-east-1"
    force_path_style = true
{window}  }}
}}

provider "local" {{
  slots = 2
}}

experiment "demo" {{
  algorithm "random" {{
    seed = 3
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {trials}
  max_concurrent = 2
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py ${{param.x}}"
    workdir = "."
  }}
}}
"""


def keys(server: S3Server, bucket: str) -> set[str]:
    listing = server.client().list_objects_v2(Bucket=bucket)
    return {o["Key"] for o in listing.get("Contents", [])}


def launches(directory: Path) -> list[float]:
    path = directory / "launches.log"
    return [float(t) for t in path.read_text().split()] if path.exists() else []


def apply_through_outage(
    directory: Path, server: S3Server, bucket: str
) -> tuple[subprocess.CompletedProcess[str], FaultProxy, float, float]:
    """Run apply through the proxy; cut S3 off for OUTAGE seconds once the state is saved.

    Returns apply's result, the proxy, and when (time.time()) the outage began and ended."""
    with FaultProxy(server.url, rate=0.0, seed=5) as proxy:
        env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=proxy.url, TUNECTL_VAR_bucket=bucket)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            give_up = time.monotonic() + 60
            while STATE_KEY not in keys(server, bucket) or not launches(directory):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < give_up, "apply never saved the state"
                time.sleep(0.2)
            began = time.time()
            proxy.rate = 1.0
            time.sleep(OUTAGE)
            proxy.rate = 0.0
            ended = time.time()
            out, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return result, proxy, began, ended


@pytest.mark.slow
def test_apply_rides_out_a_45s_outage_with_the_default_window(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(24, None), "trial.py": TRIAL})
    result, proxy, began, ended = apply_through_outage(directory, server, bucket)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(proxy.faults.values()) >= 3, proxy.faults  # the outage was felt
    assert "Warning:" in result.stderr and "keeps trying to save the state" in result.stderr
    assert "reachable again" in result.stderr
    assert "Traceback" not in result.stderr
    # Trials went on while S3 was away.
    during = [t for t in launches(directory) if began < t < ended]
    assert len(during) >= 6, f"{len(during)} trials launched during the outage"
    # Everything is in the object, and the lock is gone.
    assert f"{STATE_KEY}.lock" not in keys(server, bucket)
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    shown = run_cli(directory, "show", "--json", env=env)
    assert shown.code == 0, shown.text
    assert json.loads(shown.out)["experiments"]["demo"]["trials"]["complete"] == 24


@pytest.mark.slow
def test_a_short_window_fails_cleanly_and_releases_the_lock(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(40, "5s"), "trial.py": TRIAL})
    result, _, began, ended = apply_through_outage(directory, server, bucket)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Error: State storage unavailable" in result.stderr
    assert "retry_window" in result.stderr and "Traceback" not in result.stderr
    assert "internal error" not in result.stderr.lower()
    # It stopped launching well before the outage ended (5 s window, then backoff).
    assert max(launches(directory)) < ended - 20
    # The lock was released once S3 answered again: the next apply needs no force-unlock,
    # adopts what still runs and finishes the experiment.
    assert f"{STATE_KEY}.lock" not in keys(server, bucket)
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    again = run_cli(directory, "apply", "--auto-approve", env=env, timeout=240)
    assert again.code == 0, again.text
    shown = run_cli(directory, "show", "--json", env=env)
    assert json.loads(shown.out)["experiments"]["demo"]["trials"]["complete"] == 40


def test_retry_window_and_endpoint_are_checked(tmp_path: Path) -> None:
    for window, message in (("soon", "is not a duration"), ("0", "longer than 0")):
        directory = write(tmp_path / f"w-{window}", {"main.hcl": config(1, window)})
        env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint="http://127.0.0.1:9", TUNECTL_VAR_bucket="b")
        result = run_cli(directory, "validate", env=env)
        assert result.code == 1, result.text
        assert "Error: Invalid retry_window" in result.err and message in result.err
        assert "on main.hcl line 15, in backend \"s3\"" in result.err
    for endpoint in ("not a url", "ftp://host", "http://", "http://host:port"):
        directory = write(tmp_path / f"e-{uuid.uuid4().hex[:6]}", {"main.hcl": config(1, None)})
        env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=endpoint, TUNECTL_VAR_bucket="b")
        for command in ("validate", "plan"):
            result = run_cli(directory, command, env=env)
            assert result.code == 1, (endpoint, result.text)
            assert "Error: Invalid endpoint" in result.err, (endpoint, result.text)
            assert "Traceback" not in result.text and "internal error" not in result.text


def lock_object(who: str, pid: int) -> bytes:
    info = {
        "id": str(uuid.uuid4()),
        "operation": "OperationTypeApply",
        "who": who,
        "version": "0.1.0",
        "created": "2026-11-30T00:00:00.000000Z",
        "path": f"s3://bucket/{STATE_KEY}",
        "pid": pid,
    }
    return json.dumps(info).encode()


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    import socket

    directory = write(tmp_path / "cfg", {"main.hcl": config(1, None), "trial.py": TRIAL})
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    here = f"someone@{socket.gethostname()}"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs (reaped)
    client = server.client()
    lock_key = f"{STATE_KEY}.lock"

    # Alive on this host (this very test), or on another host: refused, named.
    for who, pid in ((here, os.getpid()), ("someone@elsewhere.example", dead.pid)):
        client.put_object(Bucket=bucket, Key=lock_key, Body=lock_object(who, pid))
        result = run_cli(directory, "plan", env=env)
        assert result.code == 1, result.text
        assert "Error acquiring the state lock" in result.err and who in result.err
        assert lock_key in keys(server, bucket)

    # Dead, on this host: taken over with a message, and released at the end.
    client.put_object(Bucket=bucket, Key=lock_key, Body=lock_object(here, dead.pid))
    result = run_cli(directory, "plan", env=env)
    assert result.code == 0, result.text
    assert f"held by process {dead.pid} on this host" in result.err
    assert "taking it over" in result.err
    assert lock_key not in keys(server, bucket)


def test_force_unlock_of_an_unknown_id_on_s3(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(1, None), "trial.py": TRIAL})
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    result = run_cli(directory, "force-unlock", "no-such-id", env=env)
    assert result.code == 1 and "Error: Failed to unlock state" in result.err, result.text
    assert "is not locked" in result.err and "Traceback" not in result.text


MODEL_TRIAL = """\
import sys
open(sys.argv[2] + "/model.txt", "w").write("weights")
print(f"acc={float(sys.argv[1]):.6f}", flush=True)
"""


@pytest.mark.slow
def test_model_storage_outage_past_its_window_stops_apply_and_loses_nothing(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    """Models on S3 (the state is local): an upload that keeps failing past the storage's
    retry_window stops apply with a diagnostic; the model stays staged, and the next apply,
    once the store answers, stores it and finishes the trial."""
    text = f"""\
storage "s3" {{
  bucket           = "{bucket}"
  endpoint         = var.endpoint
  region           = "us-east-1"
  force_path_style = true
  retry_window     = "3s"
}}

variable "endpoint" {{
  type = string
}}

experiment "demo" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials = 1
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py ${{param.x}} ${{trial.model_dir}}"
  }}
}}
"""
    directory = write(tmp_path / "cfg", {"main.hcl": text, "trial.py": MODEL_TRIAL})
    with FaultProxy(server.url, rate=1.0, seed=3) as proxy:
        env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=proxy.url)
        started = time.monotonic()
        result = run_cli(directory, "apply", "--auto-approve", env=env, timeout=240)
        assert result.code == 1, result.text
        assert "Error: Model storage unavailable" in result.err, result.text
        assert "retry_window" in result.err and "Traceback" not in result.text
        assert time.monotonic() - started < 120  # stopped, not retrying forever
        assert not (directory / "state" / "tunectl.db.lock.info").exists()
        proxy.rate = 0.0
        result = run_cli(directory, "apply", "--auto-approve", env=env, timeout=240)
        assert result.code == 0, result.text
    shown = json.loads(run_cli(directory, "show", "experiment.demo", "--json", env=env).out)
    assert [t["status"] for t in shown] == ["complete"], shown
    keys = [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert [k for k in keys if k.endswith("/model.txt")], keys
