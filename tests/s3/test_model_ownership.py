"""Models on S3 belong to the state that wrote them: two configurations sharing a bucket,
prefix and experiment name keep separate models, and destroy, `keep` and `plan --destroy`
see only what their own state recorded. Real CLI, moto's S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.testing.s3 import S3_ENV, S3Server

# Writes its x as its model; with fail=1 it writes a partial model, then fails.
TRIAL = """\
import os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:])
out = args["out"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.txt"), "w") as f:
    f.write(args["tag"] + " " + args["x"])
if args.get("fail") == "1" and args["n"] == "0":
    sys.exit(3)
print(f"acc={float(args['x']):.6f}", flush=True)
"""


COMMAND_ARGS = "x=${param.x} n=${trial.number} out=${trial.model_dir}"


def config(*, keep: str = '"all"', trials: int = 3, tag: str, args: str = "") -> str:
    return f"""
variable "endpoint" {{
  type = string
}}
variable "bucket" {{
  type = string
}}

storage "s3" {{
  bucket           = var.bucket
  prefix           = "shared"
  endpoint         = var.endpoint
  region           = "us-east-1"
  force_path_style = true
  keep             = {keep}
}}

experiment "demo" {{
  algorithm "random" {{
    seed = 9
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {trials}
  max_concurrent = 1
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py {COMMAND_ARGS} tag={tag} {args}"
    workdir = "."
  }}
}}
"""


def tunectl(directory: Path, *args: str, server: S3Server, bucket: str):
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    return run_cli(directory, *args, env=env)


def objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    s3 = server.client()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {
        o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for page in pages
        for o in page.get("Contents", [])
    }


def trials(directory: Path, server: S3Server, bucket: str) -> list[dict]:
    result = tunectl(directory, "show", "experiment.demo", "--json", server=server, bucket=bucket)
    assert result.code == 0, result.text
    return json.loads(result.out)


def two_configurations(tmp_path: Path, **kwargs: str) -> tuple[Path, Path]:
    first = write(tmp_path / "team-a", {"main.hcl": config(tag="a"), "trial.py": TRIAL})
    second = write(tmp_path / "team-b", {"main.hcl": config(tag="b", **kwargs), "trial.py": TRIAL})
    return first, second


def test_shared_bucket_prefix_and_name_keep_separate_models(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    first, second = two_configurations(tmp_path)
    for directory in (first, second):
        result = tunectl(directory, "apply", "--auto-approve", server=server, bucket=bucket)
        assert result.code == 0, result.text
    stored = objects(server, bucket)
    assert len(stored) == 6  # three trials each: nobody's trials/N/ overwrote another's
    mine = {k for k, v in stored.items() if v.startswith(b"a ")}
    theirs = {k for k, v in stored.items() if v.startswith(b"b ")}
    assert len(mine) == len(theirs) == 3
    # Each best model_uri holds what that configuration's trial wrote.
    for directory, tag in ((first, b"a "), (second, b"b ")):
        for trial in trials(directory, server, bucket):
            key = trial["model_uri"].removeprefix(f"s3://{bucket}/") + "model.txt"
            assert stored[key] == tag + str(trial["params"]["x"]).encode()

    # Someone drops a file into the first state's own prefix: not recorded, not counted,
    # not deleted.
    stray = next(iter(mine)).rsplit("/", 1)[0] + "/notes.txt"
    server.client().put_object(Bucket=bucket, Key=stray, Body=b"someone else's")
    plan = tunectl(first, "plan", "--destroy", server=server, bucket=bucket)
    assert plan.code == 0, plan.text
    assert "This deletes 3 stored model object(s)" in plan.out, plan.out
    result = tunectl(first, "destroy", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    assert set(objects(server, bucket)) == theirs | {stray}

    # The other configuration still has every model it recorded, and destroys exactly them.
    assert all(t["model_uri"] for t in trials(second, server, bucket))
    plan = tunectl(second, "plan", "--destroy", server=server, bucket=bucket)
    assert "This deletes 3 stored model object(s)" in plan.out, plan.out
    result = tunectl(second, "destroy", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    assert set(objects(server, bucket)) == {stray}


def test_keep_deletes_only_its_own_trials(tmp_path: Path, server: S3Server, bucket: str) -> None:
    first, second = two_configurations(tmp_path, keep='"best"')
    for directory in (first, second):
        result = tunectl(directory, "apply", "--auto-approve", server=server, bucket=bucket)
        assert result.code == 0, result.text
    stored = objects(server, bucket)
    assert sum(v.startswith(b"a ") for v in stored.values()) == 3  # untouched by b's keep
    assert sum(v.startswith(b"b ") for v in stored.values()) == 1
    kept = [t for t in trials(second, server, bucket) if t["model_uri"]]
    assert len(kept) == 1
    plan = tunectl(second, "plan", "--destroy", server=server, bucket=bucket)
    assert "This deletes 1 stored model object(s)" in plan.out, plan.out


def test_what_a_failed_trial_wrote_is_recorded_and_destroyed(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    # A local trial's model is staged and uploaded only when it completes: the failed
    # trial's partial model never reaches the bucket, and the count says so.
    directory = write(
        tmp_path / "cfg", {"main.hcl": config(tag="a", args="fail=1"), "trial.py": TRIAL}
    )
    result = tunectl(directory, "apply", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    statuses = [t["status"] for t in trials(directory, server, bucket)]
    assert statuses == ["failed", "complete", "complete"]
    assert len(objects(server, bucket)) == 2
    plan = tunectl(directory, "plan", "--destroy", server=server, bucket=bucket)
    assert "This deletes 2 stored model object(s)" in plan.out, plan.out
    result = tunectl(directory, "destroy", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    assert objects(server, bucket) == {}
    assert not list((directory / "state").rglob("model.txt"))  # staging is gone too


@pytest.mark.slow
def test_storage_fault_during_destroy_keeps_the_records(
    tmp_path: Path, server: S3Server, bucket: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(tag="a"), "trial.py": TRIAL})
    result = tunectl(directory, "apply", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    # The bucket vanishes (say, a wrong policy): destroy fails with a diagnostic and
    # forgets nothing, so a later destroy deletes what is recorded.
    s3 = server.client()
    saved = objects(server, bucket)
    for key in saved:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    result = tunectl(directory, "destroy", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 1
    assert "Error: Storage error" in result.err and "NoSuchBucket" in result.err
    assert "Traceback" not in result.text
    server.create_bucket(bucket)
    for key, body in saved.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    plan = tunectl(directory, "plan", "--destroy", server=server, bucket=bucket)
    assert "This deletes 3 stored model object(s)" in plan.out, plan.out
    result = tunectl(directory, "destroy", "--auto-approve", server=server, bucket=bucket)
    assert result.code == 0, result.text
    assert objects(server, bucket) == {}
