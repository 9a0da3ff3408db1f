"""`metrics "tensorboard" { logdir = "oss://..." }`: event files kept in S3-compatible
storage (a DLC job's mounted OSS path), read by tunectl through the storage client
whatever the provider — against a real S3 HTTP server on 127.0.0.1 (moto), from the CLI.
The trial writes with tensorboard's own writer and uploads its event file after each step,
as a mounted bucket shows a growing file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, write
from tests.s3.test_stored_metrics import STORAGE, env, shown_trials
from tunectl.testing.s3 import S3Server

pytest.importorskip("tensorboard")

TRIAL = """\
import os, sys, tempfile, time
import boto3
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
args = dict(a.split("=", 1) for a in sys.argv[1:])
x = float(args["x"])
bucket, prefix = args["logdir"].split("://", 1)[1].split("/", 1)
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
local = tempfile.mkdtemp()
writer = EventFileWriter(local)
for step in range(1, 4):
    value = summary_pb2.Summary.Value(tag="val/acc", simple_value=round(x * step / 3, 6))
    event = event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value]))
    writer.add_event(event)
    writer.flush()
    for name in os.listdir(local):
        with open(os.path.join(local, name), "rb") as f:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/run/{name}", Body=f.read())
    time.sleep(0.1)
writer.close()
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
    metric    = "val/acc"
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
    command = "python3 trial.py x=${{param.x}} logdir=oss://${{var.bucket}}/tb/${{trial.id}}"
    env     = {{ S3_ENDPOINT = var.endpoint }}
    metrics "tensorboard" {{
      logdir = "oss://${{var.bucket}}/tb/${{trial.id}}"
      tag    = "val/acc"
    }}
  }}
}}
"""


def setup(tmp_path: Path, *, storage: bool = True) -> Path:
    text = CONFIG.format(storage=STORAGE if storage else "")
    return write(tmp_path / "cfg", {"main.hcl": text, "trial.py": TRIAL})


def test_stored_event_files_are_read_as_the_trial_writes_them(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = setup(tmp_path)
    result = run_cli(directory, "apply", "--auto-approve", env=env(server, bucket))
    assert result.code == 0, result.text
    shown = shown_trials(directory, server, bucket)
    assert [t["status"] for t in shown] == ["complete"] * 3
    for trial in shown:
        assert trial["value"] == pytest.approx(round(trial["params"]["x"], 6))
        assert [m["step"] for m in trial["metrics"] if m["name"] == "val/acc"] == [1, 2, 3]


def test_without_a_storage_block_validate_says_so(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = setup(tmp_path, storage=False)
    result = run_cli(directory, "validate", env=env(server, bucket))
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "Error: Metrics in storage need a storage block" in result.text
