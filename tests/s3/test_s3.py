"""Models and state on S3, against a real S3 HTTP server on 127.0.0.1 (moto's server mode).

Every test runs the real CLI in a subprocess; boto3 talks HTTP to the server, directly or
through `FaultProxy`.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.testing.s3 import S3_ENV, FaultProxy, S3Server

# The trial writes its model (and, with big=1, a 9 MiB file: a multipart upload).
TRIAL = """\
import os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:])
x = float(args["x"])
out = args["out"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.txt"), "w") as f:
    f.write(args["x"])
if args.get("big") == "1":
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(os.urandom(9 * 1024 * 1024))
print(f"acc={1 - (x - 0.3) ** 2:.6f}", flush=True)
"""

LINEAGE = "[0-9a-f-]{36}"


def hcl(
    *,
    backend: bool = False,
    storage: bool = True,
    keep: str = '"all"',
    trials: int = 3,
    args: str = "",
) -> str:
    parts = ['variable "endpoint" {\n  type = string\n}\nvariable "bucket" {\n  type = string\n}\n']
    if backend:
        parts.append(
            "tunectl {\n"
            '  backend "s3" {\n'
            "    bucket           = var.bucket\n"
            '    key              = "team/tunectl.db"\n'
            "    endpoint         = var.endpoint\n"
            '    region           = "us-east-1"\n'
            "    force_path_style = true\n"
            "  }\n"
            "}\n"
        )
    if storage:
        parts.append(
            'storage "s3" {\n'
            "  bucket           = var.bucket\n"
            '  prefix           = "models"\n'
            "  endpoint         = var.endpoint\n"
            '  region           = "us-east-1"\n'
            "  force_path_style = true\n"
            f"  keep             = {keep}\n"
            "}\n"
        )
    parts.append(
        f"""
experiment "demo" {{
  algorithm "random" {{
    seed = 5
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
    command = "python3 trial.py x=${{param.x}} out=${{trial.model_dir}} {args}"
    workdir = "."
  }}
}}

output "model" {{
  value = experiment.demo.best.model_uri
}}
"""
    )
    return "".join(parts)


def cli(directory: Path, *args: str, endpoint: str, bucket: str, timeout: float = 120):
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=endpoint, TUNECTL_VAR_bucket=bucket)
    return run_cli(directory, *args, env=env, timeout=timeout)


def keys(server: S3Server, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def setup(tmp_path: Path, text: str, name: str = "cfg") -> Path:
    return write(tmp_path / name, {"main.hcl": text, "trial.py": TRIAL})


def test_best_model_destroy_removes_exactly_the_experiment(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    s3 = server.client()
    s3.put_object(Bucket=bucket, Key="models/other/keep.txt", Body=b"not ours")
    s3.put_object(Bucket=bucket, Key="models/demo-old.txt", Body=b"not ours either")
    directory = setup(tmp_path, hcl())
    result = cli(directory, "apply", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    trials = json.loads(
        cli(directory, "show", "experiment.demo", "--json", endpoint=server.url, bucket=bucket).out
    )
    best = max(trials, key=lambda t: t["value"])
    uri = cli(directory, "output", "model", "--raw", endpoint=server.url, bucket=bucket).out.strip()
    # <prefix>/<experiment>/<lineage>/g<generation>/trials/<number>/
    assert re.fullmatch(rf"s3://{bucket}/models/demo/{LINEAGE}/g1/trials/{best['number']}/", uri)
    # The best model is reachable at its URI, with what the trial wrote.
    key = uri.removeprefix(f"s3://{bucket}/") + "model.txt"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert float(body) == best["params"]["x"]
    assert len(keys(server, bucket, "models/demo/")) == 3

    plan = cli(directory, "plan", "--destroy", endpoint=server.url, bucket=bucket)
    assert "This deletes 3 stored model object(s)" in plan.out, plan.out
    assert f"s3://{bucket}/models/" in plan.out
    result = cli(directory, "destroy", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    assert set(keys(server, bucket)) == {"models/other/keep.txt", "models/demo-old.txt"}


def test_retention_keeps_the_best(tmp_path: Path, server: S3Server, bucket: str) -> None:
    directory = setup(tmp_path, hcl(keep="2", trials=5))
    result = cli(directory, "apply", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    trials = json.loads(
        cli(directory, "show", "experiment.demo", "--json", endpoint=server.url, bucket=bucket).out
    )
    ranked = sorted(trials, key=lambda t: -t["value"])
    kept = {f"models/demo/trials/{t['number']}/model.txt" for t in ranked[:2]}
    assert {re.sub(rf"/{LINEAGE}/g1/", "/", k) for k in keys(server, bucket, "models/")} == kept
    assert [t["model_uri"] is not None for t in ranked] == [True, True, False, False, False]


def test_large_model_multipart_upload_verified(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = setup(tmp_path, hcl(trials=1, args="big=1"))
    result = cli(directory, "apply", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    (key,) = [k for k in keys(server, bucket, "models/demo/") if k.endswith("/0/weights.bin")]
    head = server.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == 9 * 1024 * 1024
    assert "-" in head["ETag"]  # a multipart object's ETag
    assert len(head["Metadata"]["sha256"]) == 64
    # Nothing is left staged locally once uploaded.
    assert not any((directory / "state" / "models-staging").rglob("*.bin"))


@pytest.mark.slow
def test_faults_are_survived_with_nothing_lost(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = setup(tmp_path, hcl(backend=True, trials=6))
    with FaultProxy(server.url, rate=0.3, seed=11) as proxy:
        result = cli(directory, "apply", "--auto-approve", endpoint=proxy.url, bucket=bucket)
        assert result.code == 0, result.text
        shown = cli(directory, "show", "--json", endpoint=proxy.url, bucket=bucket)
        assert shown.code == 0, shown.text
    assert sum(proxy.faults.values()) >= 5, proxy.faults
    assert set(proxy.faults) == {"throttle", "error", "drop"}
    assert json.loads(shown.out)["experiments"]["demo"]["trials"]["complete"] == 6
    assert len(keys(server, bucket, "models/demo/")) == 6
    assert "team/tunectl.db" in keys(server, bucket)
    assert "team/tunectl.db.lock" not in keys(server, bucket)


def test_two_directories_one_s3_state_one_wins_the_lock(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    slow = hcl(backend=True, storage=False, trials=1).replace(
        "python3 trial.py", "sleep 12 && python3 trial.py"
    )  # it outlasts the second apply however loaded the machine is
    # Two clones of one repository: the same configuration in two places.
    first_dir = setup(tmp_path / "laptop", slow, name="exp")
    second_dir = setup(tmp_path / "ci", slow, name="exp")
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    first = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(first_dir), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while "team/tunectl.db.lock" not in keys(server, bucket):
            assert time.monotonic() < deadline, "the first apply never took the lock"
            time.sleep(0.05)
        second = cli(second_dir, "apply", "--auto-approve", endpoint=server.url, bucket=bucket)
        assert second.code == 1
        assert "Error acquiring the state lock" in second.err
        assert "OperationTypeApply" in second.err and f"s3://{bucket}/team/tunectl.db" in second.err
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    # The loser can go on once the lock is free, and sees the winner's work.
    again = cli(second_dir, "plan", "--detailed-exitcode", endpoint=server.url, bucket=bucket)
    assert again.code == 0, again.text


def test_stale_etag_write_is_refused(tmp_path: Path, server: S3Server, bucket: str) -> None:
    from tunectl.diags import DiagnosticError
    from tunectl.states import State
    from tunectl.states.remote import S3Backend

    settings = {
        "bucket": bucket,
        "key": "team/tunectl.db",
        "endpoint": server.url,
        "region": "us-east-1",
        "force_path_style": True,
    }
    import os

    for name, value in S3_ENV.items():
        os.environ.setdefault(name, value)
    mine = S3Backend(settings, tmp_path / "mine.db")
    assert mine.pull() is False
    state = State.open(tmp_path / "mine.db", create=True, config_id="x")
    try:
        mine.push(state)  # creates the object (If-None-Match: *)
        # Another writer replaces the object behind our back.
        server.client().put_object(Bucket=bucket, Key="team/tunectl.db", Body=b"theirs")
        with pytest.raises(DiagnosticError) as info:
            mine.push(state)
        assert info.value.diags[0].summary == "State changed by another writer"
        body = server.client().get_object(Bucket=bucket, Key="team/tunectl.db")["Body"].read()
        assert body == b"theirs"  # not overwritten
        # A second creator cannot overwrite an existing object either.
        other = S3Backend(settings, tmp_path / "other.db")
        with pytest.raises(DiagnosticError):
            other.push(state)
    finally:
        state.close()


def test_migrate_state_and_force_unlock(tmp_path: Path, server: S3Server, bucket: str) -> None:
    directory = setup(tmp_path, hcl(storage=False, trials=1))
    result = cli(directory, "apply", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    (directory / "main.hcl").write_text(hcl(backend=True, storage=False, trials=1))
    result = cli(directory, "init", "--migrate-state", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text
    assert "team/tunectl.db" in keys(server, bucket)
    listed = cli(directory, "state", "list", endpoint=server.url, bucket=bucket)
    assert listed.out.split() == ["experiment.demo"]
    again = cli(directory, "init", "--migrate-state", endpoint=server.url, bucket=bucket)
    assert again.code == 1 and "already holds a state" in again.err

    # A killed apply leaves its lock object; force-unlock with the ID removes it.
    (directory / "main.hcl").write_text(
        hcl(backend=True, storage=False, trials=2).replace(
            "python3 trial.py", "sleep 30 && python3 trial.py"
        )
    )
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 30
    while "team/tunectl.db.lock" not in keys(server, bucket):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # A lock left by a dead process on this host is taken over (tests/s3/test_s3_outage.py);
    # one left by another host's apply needs force-unlock: make it that.
    client = server.client()
    lock = json.loads(client.get_object(Bucket=bucket, Key="team/tunectl.db.lock")["Body"].read())
    lock["who"] = "ci@another-host"
    client.put_object(Bucket=bucket, Key="team/tunectl.db.lock", Body=json.dumps(lock).encode())
    held = cli(directory, "plan", endpoint=server.url, bucket=bucket)
    assert held.code == 1 and "Error acquiring the state lock" in held.err
    lock_id = next(line.split(":", 1)[1].strip() for line in held.err.splitlines() if "ID:" in line)
    assert cli(directory, "force-unlock", "wrong-id", endpoint=server.url, bucket=bucket).code == 1
    assert cli(directory, "force-unlock", lock_id, endpoint=server.url, bucket=bucket).code == 0
    # The next apply adopts or relaunches the killed apply's trial and stops it on destroy.
    result = cli(directory, "destroy", "--auto-approve", endpoint=server.url, bucket=bucket)
    assert result.code == 0, result.text


def test_bad_s3_settings_are_diagnosed(tmp_path: Path, server: S3Server) -> None:
    directory = setup(tmp_path, hcl(backend=True))
    result = cli(directory, "plan", endpoint=server.url, bucket="no-such-bucket")
    assert result.code == 1
    assert "Error: Storage error" in result.err and "NoSuchBucket" in result.err
    assert "Traceback" not in result.text
    text = hcl().replace("  keep ", '  secret_key = "x"\n  keep ')
    (directory / "main.hcl").write_text(text)
    result = cli(directory, "validate", endpoint=server.url, bucket="b")
    assert result.code == 1 and "Credentials in configuration" in result.err


def test_long_apply_pushes_the_state_every_few_seconds(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    import sqlite3

    slow = hcl(backend=True, storage=False, trials=1).replace(
        "python3 trial.py", "sleep 20 && python3 trial.py"
    )
    directory = setup(tmp_path, slow)
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        # Mid-apply (the only trial runs for 20 s), the object already records it running.
        deadline = time.monotonic() + 18
        seen = None
        while time.monotonic() < deadline and seen != "running":
            time.sleep(0.5)
            if "team/tunectl.db" not in keys(server, bucket):
                continue
            body = server.client().get_object(Bucket=bucket, Key="team/tunectl.db")["Body"]
            copy = tmp_path / "snapshot.db"
            copy.write_bytes(body.read())
            with sqlite3.connect(copy) as conn:
                row = conn.execute("SELECT status FROM trials").fetchone()
            seen = row[0] if row else None
        assert seen == "running" and proc.poll() is None
    finally:
        assert proc.wait(timeout=60) == 0
