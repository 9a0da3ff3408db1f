"""Trial identity from the command line: task keys, generations and hosts never collide.

Real CLI in a subprocess, real local processes, the DLC emulator through the official SDK,
and moto's S3 server for a state shared by two "hosts".
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.testing.s3 import S3_ENV

# Reads the value it reports from a file next to the configuration, so a test can tell
# which apply produced a result; writes that value as its model.
TRIAL = """\
import os, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
value = open(os.path.join(args["dir"], args["file"])).read().strip()
time.sleep(float(args.get("sleep", 0)))
out = args.get("out")
if out:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.txt"), "w") as f:
        f.write(value)
print(f"acc={value}", flush=True)
"""


def experiment(name: str, *, value_file: str, trials: int = 2, sleep: float = 0) -> str:
    return f"""
experiment "{name}" {{
  algorithm "random" {{
    seed = 3
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {trials}
  max_concurrent = {trials}
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py dir=. file={value_file} sleep={sleep} out=${{trial.model_dir}}"
    workdir = "."
  }}
}}
"""


def db(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "state" / "tunectl.db")


def shown(directory: Path, name: str, env: dict | None = None) -> list[dict]:
    result = run_cli(directory, "show", f"experiment.{name}", "--json", env=env)
    assert result.code == 0, result.text
    return json.loads(result.out)


def generation(directory: Path, name: str) -> int:
    result = run_cli(directory, "state", "show", f"experiment.{name}")
    assert result.code == 0, result.text
    return int(json.loads(result.out)["generation"])


def test_names_with_one_slug_get_their_own_trials(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": experiment("a_b", value_file="one.txt")
            + experiment("a-b", value_file="two.txt"),
            "trial.py": TRIAL,
            "one.txt": "0.25",
            "two.txt": "0.75",
        },
    )
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    # Each experiment ran its own trials and got its own results, not the other's.
    assert [t["value"] for t in shown(directory, "a_b")] == [0.25, 0.25]
    assert [t["value"] for t in shown(directory, "a-b")] == [0.75, 0.75]
    with db(directory) as conn:
        keys = conn.execute("SELECT experiment, key FROM tasks").fetchall()
        uris = [r[0] for r in conn.execute("SELECT model_uri FROM trials")]
    assert len({k for _, k in keys}) == 4
    assert all(re.fullmatch(r"[a-z0-9-]{1,64}", k) for _, k in keys)
    # ... and their own model directories, each holding its own value.
    assert len(set(uris)) == 4
    for name, value in (("a_b", "0.25"), ("a-b", "0.75")):
        for trial in shown(directory, name):
            path = Path(trial["model_uri"].removeprefix("file://")) / "model.txt"
            assert path.read_text() == value


def test_longest_names_keep_distinct_provider_safe_keys(tmp_path: Path) -> None:
    # Two 64-character names (the longest allowed) that differ only at the end, and in
    # case: their slugs are cut to one prefix, the digest of the exact name tells them apart.
    long_a = "Tune_" + "x" * 58 + "a"
    long_b = "tune-" + "x" * 58 + "A"
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": experiment(long_a, value_file="one.txt", trials=1)
            + experiment(long_b, value_file="two.txt", trials=1),
            "trial.py": TRIAL,
            "one.txt": "0.25",
            "two.txt": "0.75",
        },
    )
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert [t["value"] for t in shown(directory, long_a)] == [0.25]
    assert [t["value"] for t in shown(directory, long_b)] == [0.75]
    with db(directory) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM tasks")]
    assert len(set(keys)) == 2
    assert all(re.fullmatch(r"tk-[a-z0-9-]{1,61}", k) for k in keys), keys


@pytest.mark.parametrize("forget", ["destroy", "state rm"])
def test_recreated_experiment_never_adopts_old_results_local(tmp_path: Path, forget: str) -> None:
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": experiment("exp", value_file="v.txt"), "trial.py": TRIAL, "v.txt": "0.1"},
    )
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert [t["value"] for t in shown(directory, "exp")] == [0.1, 0.1]
    before = generation(directory, "exp")
    if forget == "destroy":
        result = run_cli(directory, "destroy", "--auto-approve")
    else:
        result = run_cli(directory, "state", "rm", "experiment.exp")
    assert result.code == 0, result.text
    (directory / "v.txt").write_text("0.9")
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    # New processes ran: the old tasks (whose files `state rm` leaves behind) were not
    # taken for the new trials.
    assert [t["value"] for t in shown(directory, "exp")] == [0.9, 0.9]
    after = generation(directory, "exp")
    assert after > before
    assert all(f"-g{after}-" in t["id"] for t in shown(directory, "exp"))
    # Destroying again counts only the new experiment's models.
    plan = run_cli(directory, "plan", "--destroy")
    assert "This deletes 2 stored model object(s)" in plan.out, plan.out


def test_generations_keep_growing_across_destroys(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": experiment("exp", value_file="v.txt", trials=1), "trial.py": TRIAL},
    )
    (directory / "v.txt").write_text("0.5")
    seen = []
    for _ in range(3):
        assert run_cli(directory, "apply", "--auto-approve").code == 0
        seen.append(generation(directory, "exp"))
        assert run_cli(directory, "destroy", "--auto-approve").code == 0
    assert seen == sorted(set(seen)) and len(seen) == 3


def test_state_from_the_previous_release_keeps_its_keys_and_model_layout(tmp_path: Path) -> None:
    """An upgraded state: its generation keeps the keys and model paths it was given, new
    generations take the new forms and start above every recorded generation."""
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": experiment("exp", value_file="v.txt", trials=1), "trial.py": TRIAL},
    )
    (directory / "v.txt").write_text("0.5")
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    # Turn it into what the previous release wrote: schema 1, a `tc-` key, the model under
    # <experiment>/trials/<n>/, and no record of the model's files.
    with db(directory) as conn:
        (old_uri,) = conn.execute("SELECT model_uri FROM trials").fetchone()
        legacy = directory / "state" / "models" / "exp" / "trials" / "0"
        legacy.mkdir(parents=True)
        os.replace(Path(old_uri.removeprefix("file://")) / "model.txt", legacy / "model.txt")
        conn.execute("UPDATE trials SET model_uri = ?", (legacy.resolve().as_uri(),))
        conn.execute("UPDATE tasks SET key = 'tc-0123abcd-exp-g1-t0-k0-a0'")
        conn.execute("UPDATE experiments SET generation = 1")
        conn.execute("UPDATE trials SET generation = 1")
        conn.execute("UPDATE tasks SET generation = 1")
        conn.execute("UPDATE metrics SET generation = 1")
        conn.execute("DROP TABLE model_objects")
        conn.execute("ALTER TABLE tasks DROP COLUMN host")
        conn.execute("ALTER TABLE experiments DROP COLUMN elapsed")
        conn.execute("ALTER TABLE experiments DROP COLUMN clock_since")
        for column in ("objective_values", "pbt_member", "pbt_round", "parent_trial"):
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        conn.execute("DELETE FROM meta WHERE key IN ('last_generation', 'legacy_generation')")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    # More trials for the old experiment (an update), and a new experiment.
    text = experiment("exp", value_file="v.txt", trials=2) + experiment("new", value_file="v.txt")
    (directory / "main.hcl").write_text(text)
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert (directory / "state" / "tunectl.db.schema-v1.backup").exists()
    with db(directory) as conn:
        keys = dict(conn.execute("SELECT trial_number, key FROM tasks WHERE experiment = 'exp'"))
    assert keys[0] == "tc-0123abcd-exp-g1-t0-k0-a0"  # recorded keys are never recomputed
    assert keys[1].startswith("tk-")
    exp = shown(directory, "exp")
    assert exp[1]["model_uri"].endswith("/state/models/exp/trials/1")  # the old layout
    assert generation(directory, "new") == 2
    assert "/g2/trials/" in shown(directory, "new")[0]["model_uri"]
    # Destroy counts and deletes the old trial's directory too (its files were never
    # recorded, but its model_uri was).
    plan = run_cli(directory, "plan", "--destroy", "--target", "experiment.exp")
    assert "This deletes 2 stored model object(s)" in plan.out, plan.out
    result = run_cli(directory, "destroy", "--auto-approve", "--target", "experiment.exp")
    assert result.code == 0, result.text
    assert not list((directory / "state" / "models" / "exp").rglob("model.txt"))
    assert list((directory / "state" / "models" / "new").rglob("model.txt"))


# -- DLC ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlc() -> Iterator:
    emulator = pytest.importorskip("tunectl_dlc.emulator")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    with emulator.Server(capacity=8, phase_seconds=0.02) as server:
        yield server


def dlc_config(endpoint: str, code: Path) -> str:
    return f"""
provider "dlc" {{
  region       = "cn-hangzhou"
  workspace_id = "ws-test"
  endpoint     = "{endpoint}"
  protocol     = "http"
  log_interval = 0
}}

experiment "dlcx" {{
  algorithm "random" {{
    seed = 2
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = 2
  max_concurrent = 2
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    provider = "dlc"
    image    = "registry.example.com/train:1"
    worker   = {{ count = 1, ecs_spec = "ecs.g6.xlarge" }}
    command  = "python3 {code}/trial.py dir={code} file=v.txt"
  }}
}}
"""


@pytest.mark.parametrize("forget", ["destroy", "state rm"])
def test_recreated_experiment_never_adopts_old_jobs_dlc(
    tmp_path: Path, dlc, forget: str
) -> None:
    from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET

    env = cli_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET
    )
    directory = tmp_path / "cfg"
    write(directory, {"trial.py": TRIAL, "v.txt": "0.1"})
    (directory / "main.hcl").write_text(dlc_config(dlc.endpoint, directory))
    result = run_cli(directory, "apply", "--auto-approve", env=env)
    assert result.code == 0, result.text
    assert [t["value"] for t in shown(directory, "dlcx", env)] == [0.1, 0.1]
    first = json.loads(run_cli(directory, "state", "show", "experiment.dlcx", env=env).out)
    if forget == "destroy":
        result = run_cli(directory, "destroy", "--auto-approve", env=env)
    else:
        result = run_cli(directory, "state", "rm", "experiment.dlcx", env=env)
    assert result.code == 0, result.text
    (directory / "v.txt").write_text("0.9")
    result = run_cli(directory, "apply", "--auto-approve", env=env)
    assert result.code == 0, result.text
    assert [t["value"] for t in shown(directory, "dlcx", env)] == [0.9, 0.9]
    second = json.loads(run_cli(directory, "state", "show", "experiment.dlcx", env=env).out)
    assert second["generation"] > first["generation"]
    with dlc.emulator.lock:
        names = [
            j.spec["DisplayName"]
            for j in dlc.emulator.jobs.values()
            if str(directory) in j.spec["UserCommand"]
        ]
    assert len(names) == len(set(names)) == 4  # two jobs per apply, none adopted


# -- two hosts, one S3 state ----------------------------------------------------------------

TRIAL_SECONDS = 15  # long enough that a second apply returning sooner cannot have waited


def shared_state(endpoint: str, bucket: str) -> str:
    return f"""
tunectl {{
  backend "s3" {{
    bucket           = "{bucket}"
    key              = "team/tunectl.db"
    endpoint         = "{endpoint}"
    region           = "us-east-1"
    force_path_style = true
  }}
}}
"""


@pytest.mark.parametrize(
    ("first", "second"),
    [("laptop", "ci-runner"), ("box", "box")],
    ids=["two-machines", "two-directories-on-one-machine"],
)
def test_second_host_never_relaunches_the_first_hosts_trials(
    tmp_path: Path, s3_server, first: str, second: str
) -> None:
    """A local task is reachable only from the machine *and* working directory that started
    it (its home): another machine, or another clone on the same machine, leaves it be."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    text = shared_state(s3_server.url, bucket) + experiment(
        "exp", value_file="v.txt", trials=2, sleep=TRIAL_SECONDS
    )
    files = {"main.hcl": text, "trial.py": TRIAL, "v.txt": "0.5"}
    # Two clones of one repository, on two machines (or both on one).
    laptop = write(tmp_path / "laptop" / "exp", files)
    ci = write(tmp_path / "ci" / "exp", files)
    laptop_env = cli_env(**S3_ENV, TUNECTL_HOST_ID=first)
    ci_env = cli_env(**S3_ENV, TUNECTL_HOST_ID=second)

    result = run_cli(laptop, "apply", "--auto-approve", "--once", env=laptop_env)
    assert result.code == 0, result.text
    assert "2 trial(s) running" in result.out, result.out

    started = time.monotonic()
    later = run_cli(ci, "apply", "--auto-approve", env=ci_env)
    assert later.code == 0, later.text
    # It did not wait for trials it cannot see: waiting would take at least as long as they run.
    assert time.monotonic() - started < TRIAL_SECONDS
    for number in (0, 1):
        assert f"trial {number} runs on host {first}:{laptop / 'state'}" in later.out, later.out
    assert "lost" not in later.out and "relaunch" not in later.out
    # Nothing ran on the second host: no task directory, no new task in the state.
    assert not list((ci / "state").rglob("spec.json"))
    plan = run_cli(ci, "plan", env=ci_env)
    assert plan.code == 0, plan.text
    assert "changed outside of tunectl" not in plan.out  # not taken for vanished
    # Destroy from the second host cannot stop them: refused, nothing changed.
    refused = run_cli(ci, "destroy", "--auto-approve", env=ci_env)
    assert refused.code == 1
    assert "Error: Tasks run on another host" in refused.err
    assert "Traceback" not in refused.text

    # The first host follows its trials to the end.
    result = run_cli(laptop, "apply", "--auto-approve", env=laptop_env)
    assert result.code == 0, result.text
    trials = shown(laptop, "exp", laptop_env)
    assert [t["status"] for t in trials] == ["complete", "complete"]
    with sqlite3.connect(next((laptop / "state" / "remote").glob("*.db"))) as conn:
        hosts = [r[0] for r in conn.execute("SELECT host FROM tasks")]
    # Exactly two tasks (none launched twice), both at home in the first clone's state dir.
    assert len(hosts) == 2 and hosts[0] == hosts[1], hosts
    assert hosts[0].startswith(f"{first}:{(laptop / 'state').resolve()}"), hosts


def test_host_identity_defaults_to_the_machine(tmp_path: Path) -> None:
    """Without TUNECTL_HOST_ID, two working directories on one machine are one host."""
    code = (
        "from tunectl.engine.hosts import this_host; import socket; h = this_host(); "
        "print(h); assert h.startswith(socket.gethostname())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=d, env=cli_env(), capture_output=True, text=True
        )
        for d in (tmp_path, Path.cwd())
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert runs[0].stdout == runs[1].stdout
