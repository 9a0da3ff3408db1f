"""Population based training from the CLI: members exploit and explore through real
checkpoints, `kill -9` of apply between rounds loses and duplicates no member, bad settings
are located diagnostics, and `plan` says what PBT runs."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.cli.test_apply import launches, trials
from tests.conftest import cli_env, run_cli, write

# A member's training: it loads the parent's checkpoint (the history of trials it
# descends from and its global step), trains `steps` steps whose score rewards a learning
# rate that falls with the step, and saves its own checkpoint. It records what it was
# given for the parent twice, the placeholder and the variable, which must agree.
TRIAL = """\
import json, os, sys, time
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[1:])
with open("launches.log", "a") as f:
    f.write(args["id"] + "\\n")
parent = os.environ["TUNECTL_PARENT_MODEL_DIR"]
state = {"history": [], "step": 0}
if parent:
    state = json.loads((Path(parent) / "ckpt.json").read_text())
lr = float(args["lr"])
for _ in range(int(args["steps"])):
    time.sleep(float(args.get("sleep", 0)))
    state["step"] += 1
    target = 1.0 / state["step"]
    print(f"step={state['step']} score={-abs(lr - target):.6f}", flush=True)
state["history"] = state["history"] + [args["id"]]
state["parent_arg"], state["parent_env"] = args.get("parent", ""), parent
out = Path(args["out"])
out.mkdir(parents=True, exist_ok=True)
(out / "ckpt.json").write_text(json.dumps(state))
"""


ARGS = (
    "id=${trial.id} lr=${param.lr} steps=2 out=${trial.model_dir} parent=${trial.parent_model_dir}"
)


def config(
    *,
    population: int = 4,
    max_trials: int = 12,
    concurrent: int = 4,
    settings: str = "",
    quantile: float = 0.25,
    extra: str = "",
    sleep: float = 0.0,
) -> str:
    return f"""\
experiment "demo" {{
  algorithm "pbt" {{
    seed                  = 5
    population            = {population}
    perturbation_interval = 2
    quantile              = {quantile}
    {settings}
  }}
  objective {{
    metric    = "score"
    direction = "maximize"
  }}
  max_trials     = {max_trials}
  max_concurrent = {concurrent}
  {extra}
  param "lr" {{
    type = "loguniform"
    low  = 0.01
    high = 1
  }}
  trial {{
    command = "python3 trial.py {ARGS} sleep={sleep}"
    workdir = "."
  }}
}}
"""


def checkpoint(trial: dict) -> dict:
    path = Path(urlparse(trial["model_uri"]).path) / "ckpt.json"
    return json.loads(path.read_text())


def check_lineage(records: list[dict], population: int, rounds: int) -> None:
    """Every member of every round exactly once, each trial descending from its parent."""
    assert [t["number"] for t in records] == list(range(population * rounds))
    assert all(t["status"] == "complete" for t in records), records
    slots = sorted((t["pbt_round"], t["pbt_member"]) for t in records)
    assert slots == [(r, m) for r in range(rounds) for m in range(population)]
    by_number = {t["number"]: t for t in records}
    for t in records:
        ckpt = checkpoint(t)
        if t["pbt_round"] == 0:
            assert t["parent_trial"] is None and ckpt["history"] == [t["id"]]
            assert ckpt["parent_env"] == ""
            continue
        parent = by_number[t["parent_trial"]]
        assert parent["pbt_round"] == t["pbt_round"] - 1
        # The child's parent directory held the parent's checkpoint: it continued it.
        assert ckpt["history"] == [*checkpoint(parent)["history"], t["id"]]
        assert ckpt["step"] == 2 * (t["pbt_round"] + 1)
        assert ckpt["parent_env"] == ckpt["parent_arg"] != ""
        if parent["pbt_member"] == t["pbt_member"]:
            assert t["params"] == parent["params"]  # continued with its own parameters
        else:
            assert t["params"] != parent["params"]  # exploited, then explored


def test_members_exploit_checkpoints_and_explore(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(), "trial.py": TRIAL})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    records = trials(directory)
    check_lineage(records, population=4, rounds=3)
    exploited = [
        t
        for t in records
        if t["parent_trial"] is not None
        and records[t["parent_trial"]]["pbt_member"] != t["pbt_member"]
    ]
    # One of four members (quantile 0.25) exploits another at each of rounds 1 and 2.
    assert len(exploited) == 2, records
    for t in exploited:
        parent = records[t["parent_trial"]]
        same_round = [p for p in records if p["pbt_round"] == parent["pbt_round"]]
        best = max(p["value"] for p in same_round)
        assert parent["value"] == best  # the top quantile of one is the best member
    assert sorted(launches(directory)) == sorted(t["id"] for t in records)
    table = run_cli(directory, "trials", "experiment.demo", "--sort", "number")
    assert table.code == 0, table.text
    assert "lineage" in table.out and "m0 r0" in table.out and " <- " in table.out
    assert any("(m" in line for line in table.out.splitlines()), table.out
    doc = json.loads(run_cli(directory, "trials", "experiment.demo", "--json").out)
    assert {t["pbt"]["round"] for t in doc["trials"]} == {0, 1, 2}
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out, plan.text


def test_plan_says_what_pbt_runs(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(max_trials=20), "trial.py": TRIAL})
    result = run_cli(directory, "plan")
    assert result.code == 0, result.text
    assert "PBT: 4 members x 5 rounds of 2 step(s) = 20 trials" in result.out, result.out
    assert "the bottom 1 copy a top-1 member's checkpoint" in result.out
    doc = json.loads(run_cli(directory, "plan", "--json").out)
    intents = [c["intent"] for c in doc["changes"] if c.get("intent")]
    assert intents and intents[0]["search"].startswith("PBT: 4 members")


def test_bad_settings_are_located_diagnostics(tmp_path: Path) -> None:
    cases = [
        (config(max_trials=10), "max_trials must be a multiple of population (4), got 10", 13),
        (config(max_trials=2), "less than one round of the population (4)", 13),
        (config(quantile=0.75), 'quantile of the "pbt" algorithm', 2),
        (config(settings="population_size = 8"), "population_size is population here", 2),
        (
            config(extra='early_stopping "median" {\n    start_step = 1\n  }'),
            "remove the early_stopping block",
            15,
        ),
    ]
    for hcl, message, line in cases:
        directory = write(tmp_path / f"c{line}-{len(hcl)}", {"main.hcl": hcl, "trial.py": TRIAL})
        result = run_cli(directory, "validate")
        assert result.code == 1, result.text
        assert message in result.err, result.err
        assert f"on main.hcl line {line}," in result.err, result.err
        assert "Traceback" not in result.text


@pytest.mark.slow
def test_kill_during_exploit_steps_loses_and_duplicates_no_member(tmp_path: Path) -> None:
    """apply is killed right after a round's last trial ended — while it ranks the round,
    records the next round's trials and submits them — several times; a final apply ends
    with each member of each round run once, and every lineage intact."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    population, rounds = 4, 3
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": config(population=population, max_trials=population * rounds, sleep=0.15),
            "trial.py": TRIAL,
        },
    )
    kills = 0
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        # Wait for a round to end (its trials' checkpoints are written), then kill apply
        # while it starts the next one.
        target = population * (kills + 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            done = len(list((directory / "state" / "models").rglob("ckpt.json")))
            if done >= target:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
        if proc.returncode == 0:
            break
    assert kills >= 2, f"only {kills} kills landed (seed {seed})"
    result = run_cli(directory, "apply", "--auto-approve", timeout=120)
    assert result.code == 0, result.text
    records = trials(directory)
    check_lineage(records, population, rounds)
    started = launches(directory)
    # A trial killed with apply is adopted, not started again; none started twice.
    assert len(started) == len(set(started)), f"seed {seed}: {started}"
    assert set(started) == {t["id"] for t in records}, f"seed {seed}"


def test_parent_checkpoint_is_downloaded_from_s3_model_storage(
    tmp_path: Path, s3_server, bucket: str
) -> None:
    """With `storage "s3"`, a trial on this machine reads a downloaded copy of its parent's
    stored objects: the same lineage holds as with local storage."""
    from tunectl.testing.s3 import S3_ENV

    storage = (
        'variable "endpoint" {\n  type = string\n}\n'
        'variable "bucket" {\n  type = string\n}\n'
        'storage "s3" {\n  bucket = var.bucket\n  prefix = "m"\n  endpoint = var.endpoint\n'
        '  region = "us-east-1"\n  force_path_style = true\n}\n'
    )
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": storage + config(population=2, max_trials=4), "trial.py": TRIAL},
    )
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=s3_server.url, TUNECTL_VAR_bucket=bucket)
    result = run_cli(directory, "apply", "--auto-approve", env=env)
    assert result.code == 0, result.text
    shown = run_cli(directory, "show", "experiment.demo", "--json", env=env)
    records = json.loads(shown.out)
    assert [(t["pbt_round"], t["pbt_member"]) for t in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    client = s3_server.client()
    for t in records[2:]:
        key = t["model_uri"].split(f"s3://{bucket}/", 1)[1] + "ckpt.json"
        ckpt = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        parent = records[t["parent_trial"]]
        pkey = parent["model_uri"].split(f"s3://{bucket}/", 1)[1] + "ckpt.json"
        before = json.loads(client.get_object(Bucket=bucket, Key=pkey)["Body"].read())
        assert ckpt["history"] == [*before["history"], t["id"]]
        assert "/parents/" in ckpt["parent_env"] and ckpt["parent_env"] == ckpt["parent_arg"]
