"""`metrics "json" { path = "oss://..." }`: metrics files kept in S3-compatible storage,
read by tunectl through the storage client whatever the provider — against a real S3 HTTP
server on 127.0.0.1 (moto's server mode), from the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.testing.s3 import S3_ENV, S3Server

# The trial writes its JSON-lines metrics straight into storage, growing the object a
# step at a time (an object is rewritten whole, as a mounted OSS file is).
TRIAL = """\
import json, os, sys, time
import boto3
args = dict(a.split("=", 1) for a in sys.argv[1:])
x = float(args["x"])
bucket, key = args["uri"].split("://", 1)[1].split("/", 1)
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
lines = []
for step in range(1, 4):
    lines.append(json.dumps({"step": step, "acc": round(x * step / 3, 6)}))
    s3.put_object(Bucket=bucket, Key=key, Body=("\\n".join(lines) + "\\n").encode())
    time.sleep(0.1)
"""

CONFIG = """\
variable "endpoint" {{
  type = string
}}
variable "bucket" {{
  type = string
}}
{storage}
experiment "stored" {{
  algorithm "random" {{
    seed = 3
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = 3
  max_concurrent = 2
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py x=${{param.x}} uri={scheme}://${{var.bucket}}/metrics/${{trial.id}}.jsonl"
    env     = {{ S3_ENDPOINT = var.endpoint }}
    metrics "json" {{
      path = "{scheme}://${{var.bucket}}/metrics/${{trial.id}}.jsonl"
    }}
  }}
}}
"""

STORAGE = """\
storage "s3" {
  bucket           = var.bucket
  prefix           = "models"
  endpoint         = var.endpoint
  region           = "us-east-1"
  force_path_style = true
}
"""


def setup(tmp_path: Path, *, storage: bool = True, scheme: str = "oss") -> Path:
    text = CONFIG.format(storage=STORAGE if storage else "", scheme=scheme)
    return write(tmp_path / "cfg", {"main.hcl": text, "trial.py": TRIAL})


def env(server: S3Server, bucket: str) -> dict[str, str]:
    return cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)


def shown_trials(
    directory: Path, server: S3Server, bucket: str, extra: dict[str, str] | None = None
) -> list[dict]:
    """Each trial as `show experiment.stored.trial[N] --json` gives it (with metrics)."""
    out = []
    for number in range(3):
        address = f"experiment.stored.trial[{number}]"
        shown = run_cli(directory, "show", address, "--json", env=extra or env(server, bucket))
        assert shown.code == 0, shown.text
        out.append(json.loads(shown.out))
    return out


def test_metrics_in_storage_are_read_as_the_trial_writes_them(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = setup(tmp_path)
    result = run_cli(directory, "apply", "--auto-approve", env=env(server, bucket))
    assert result.code == 0, result.text
    shown = shown_trials(directory, server, bucket)
    assert [t["status"] for t in shown] == ["complete"] * 3
    for trial in shown:  # the last line's value, and every step on the way
        assert trial["value"] == round(trial["params"]["x"], 6)
        assert [m["step"] for m in trial["metrics"] if m["name"] == "acc"] == [1, 2, 3]


@pytest.mark.parametrize("mode", ["append", "rewrite"])
def test_what_the_object_held_before_the_task_started_is_not_read(
    tmp_path: Path, server: S3Server, bucket: str, mode: str
) -> None:
    # An earlier attempt's lines under trial 0's key: the task appends to them, or writes
    # the object anew; either way only its own lines count.
    directory = setup(tmp_path)
    trial = (directory / "trial.py").read_text()
    if mode == "append":
        trial = trial.replace(
            "lines = []",
            "lines = s3.get_object(Bucket=bucket, Key=key)['Body'].read().decode().splitlines()",
        )
    (directory / "trial.py").write_text(trial)
    stale = "".join(json.dumps({"step": s, "acc": 99}) + "\n" for s in (1, 2, 3, 4))
    server.client().put_object(Bucket=bucket, Key="metrics/stored-g1-t0.jsonl", Body=stale)
    result = run_cli(directory, "apply", "--auto-approve", env=env(server, bucket))
    assert result.code == 0, result.text
    shown = shown_trials(directory, server, bucket)
    first = shown[0]
    assert first["id"] == "stored-g1-t0"
    assert first["value"] == round(first["params"]["x"], 6)
    assert 99 not in [m["value"] for m in first["metrics"]]
    assert [m["step"] for m in first["metrics"] if m["name"] == "acc"] == [1, 2, 3]


def test_without_a_storage_block_validate_says_what_to_add(tmp_path: Path) -> None:
    directory = setup(tmp_path, storage=False)
    result = run_cli(
        directory,
        "validate",
        env=cli_env(TUNECTL_VAR_endpoint="http://127.0.0.1:9", TUNECTL_VAR_bucket="b"),
    )
    assert result.code == 1, result.text
    assert "Error: Metrics in storage need a storage block" in result.err
    assert 'add one (storage "s3"' in result.err and "Traceback" not in result.text


def test_dlc_trials_report_through_storage(tmp_path: Path, server: S3Server, bucket: str) -> None:
    from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET
    from tunectl_dlc.emulator import Server as DlcServer

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    directory = setup(tmp_path, scheme="s3")
    text = (directory / "main.hcl").read_text()
    text = text.replace(
        "  trial {\n",
        '  trial {\n    provider = "dlc"\n    image    = "registry.example.com/t:1"\n'
        '    worker   = { count = 1, ecs_spec = "ecs.g6.xlarge" }\n',
    ).replace("python3 trial.py", f"{sys.executable} {directory}/trial.py")
    # A job sees only the environment it is given (the storage's test key, here).
    job_env = ", ".join(f'{k} = "{v}"' for k, v in S3_ENV.items())
    text = text.replace("S3_ENDPOINT = var.endpoint", f"S3_ENDPOINT = var.endpoint, {job_env}")
    text = (
        'provider "dlc" {\n  region       = "cn-hangzhou"\n  workspace_id = "ws-test"\n'
        '  endpoint     = var.dlc\n  protocol     = "http"\n  log_delay    = 0\n}\n'
        'variable "dlc" {\n  type = string\n}\n' + text
    )
    (directory / "main.hcl").write_text(text)
    with DlcServer(capacity=4, phase_seconds=0.02) as dlc:
        extra = env(server, bucket)
        extra.update(
            ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
            TUNECTL_VAR_dlc=dlc.endpoint,
        )
        validate = run_cli(directory, "validate", env=extra)
        assert validate.code == 0, validate.text  # json metrics on DLC: read from storage
        result = run_cli(directory, "apply", "--auto-approve", env=extra, timeout=300)
    assert result.code == 0, result.text
    shown = shown_trials(directory, server, bucket, extra)
    assert [t["status"] for t in shown] == ["complete"] * 3
    assert all(t["value"] == round(t["params"]["x"], 6) for t in shown)
