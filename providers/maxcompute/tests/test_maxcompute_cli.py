"""tunectl on MaxCompute from the command line: the real CLI, pyodps, the emulator over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tunectl_maxcompute.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Faults, Server
from tunectl_maxcompute.state import Instance

REPO = Path(__file__).resolve().parents[3]
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")

# Each trial: a PAI command that runs `seconds`, then a SQL script that writes the
# trial's score into a table; the metric is read from that table.
CONFIG = """\
provider "maxcompute" {{
  project          = "{project}"
  endpoint         = "{endpoint}"
  metrics_interval = 0
}}

experiment "mcx" {{
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
    provider = "maxcompute"
    task "train" {{
      pai = "-name echo -project algo_public -Doutput=trained -Dseconds={seconds}"
    }}
    task "score" {{
      sql = [
        "create table if not exists score_${{trial.number}} (acc double)",
        "insert overwrite table score_${{trial.number}} values (${{param.x}})",
      ]
      metrics "table" {{
        sql = "select acc from score_${{trial.number}}"
      }}
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    for name in PROXIES:
        os.environ.pop(name, None)
    with Server(sql_seconds=0.02, algo_seconds=0.2) as running:
        yield running


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("TUNECTL_", "ALIBABA_"))}
    for name in PROXIES:
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


def setup(
    tmp_path: Path,
    server: Server,
    *,
    trials: int = 3,
    concurrent: int = 2,
    seconds: float = 0,
    extra: str = "",
    text: str | None = None,
) -> Path:
    directory = tmp_path / "cfg"
    directory.mkdir()
    project = "p_" + uuid.uuid4().hex[:10]  # the instances of this test, and no other's
    fields = {"project": project, "endpoint": server.endpoint}
    config = text or CONFIG
    (directory / "main.hcl").write_text(
        config.format(**fields, trials=trials, concurrent=concurrent, seconds=seconds, extra=extra)
    )
    (directory / ".project").write_text(project)
    return directory


def instances_of(server: Server, directory: Path) -> list[Instance]:
    project = (directory / ".project").read_text()
    with server.emulator.lock:
        return [i for i in server.emulator.instances.values() if i.project == project]


def keys(instances: list[Instance]) -> list[str]:
    return [i.settings["EXT_TASK_ID"] for i in instances]


def trials(directory: Path) -> list[dict]:
    return json.loads(tunectl(directory, "show", "experiment.mcx", "--json").stdout)


def test_the_readme_command_applies_the_example(tmp_path: Path) -> None:
    example = tmp_path / "maxcompute-xgboost"
    shutil.copytree(
        REPO / "examples" / "maxcompute-xgboost", example, ignore=shutil.ignore_patterns("state")
    )
    command = [
        "tunectl-maxcompute-emulator",
        *("--port", "0", "--demo-data", "tunectl_demo", "--algo-seconds", "0.3"),
        *("--", "tunectl", "-C", str(example), "apply", "--auto-approve"),
    ]
    bin_dir = Path(sys.executable).parent
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    outside = {k: v for k, v in env(PATH=path).items() if not k.startswith("ALIBABA_")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=outside)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apply complete." in result.stdout
    assert "succeeded — 8 complete, 0 pruned, 0 failed" in result.stdout
    assert "best_auc = 0.9" in result.stdout  # from the evaluation tables, via SQL


def test_a_trial_runs_its_tasks_as_instances_and_reads_the_table(
    tmp_path: Path, server: Server
) -> None:
    directory = setup(tmp_path, server, trials=3)
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 3
    for record in records:  # the table's row is the trial's value
        assert record["value"] == pytest.approx(record["params"]["x"], abs=1e-9)
    instances = instances_of(server, directory)
    # Per trial: the PAI command, the script, and the metrics queries (no key).
    tasks = [i for i in instances if "EXT_TASK_ID" in i.settings]
    assert sorted(i.task_type for i in tasks) == ["AlgoTask"] * 3 + ["SQL"] * 3
    assert len(set(keys(tasks))) == 6
    script = next(i for i in tasks if i.task_type == "SQL")
    assert script.settings["odps.sql.submit.mode"] == "script"
    assert script.settings["EXT_PLATFORM_ID"] == "tunectl"
    logs = tunectl(directory, "logs", "experiment.mcx", "--trial", "0")
    assert logs.returncode == 0, logs.stderr
    assert "MaxCompute instance " in logs.stdout and "Logview: http" in logs.stdout
    assert "trained" in logs.stdout


@pytest.mark.slow
@pytest.mark.parametrize("guid_dedup", [True, False], ids=["guid-dedup", "no-guid-dedup"])
def test_crash_resume_adopts_instances(tmp_path: Path, server: Server, guid_dedup: bool) -> None:
    # Without the service's Guid deduplication, only tunectl's own lookup prevents a
    # second instance for a key an apply recorded just before it was killed.
    server.emulator.guid_dedup = guid_dedup
    try:
        _crash_resume(tmp_path, server)
    finally:
        server.emulator.guid_dedup = True


def _crash_resume(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=4, concurrent=2, seconds=1.5)
    for _ in range(3):  # kill apply while instances run, three times
        before = len(instances_of(server, directory))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(),
        )
        deadline = time.monotonic() + 30
        while len(instances_of(server, directory)) <= before and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [t["status"] for t in trials(directory)] == ["complete"] * 4
    found = keys([i for i in instances_of(server, directory) if "EXT_TASK_ID" in i.settings])
    assert len(found) == len(set(found)) == 8  # adopted, never created twice


def test_destroy_stops_running_instances(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=2, concurrent=2, seconds=60)
    result = tunectl(directory, "apply", "--auto-approve", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    running = instances_of(server, directory)
    assert len(running) == 2 and all(i.status == "Running" for i in running)
    result = tunectl(directory, "destroy", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(i.task_status == "Cancelled" for i in instances_of(server, directory))
    assert json.loads(tunectl(directory, "show", "--json").stdout)["experiments"] == {}


def test_an_instance_stopped_outside_or_gone_is_shown_by_plan(
    tmp_path: Path, server: Server
) -> None:
    directory = setup(tmp_path, server, trials=2, concurrent=2, seconds=60)
    assert tunectl(directory, "apply", "--auto-approve", "--once").returncode == 0
    victim, gone = instances_of(server, directory)
    server.emulator.stop_outside(victim.id)
    server.emulator.vanish(gone.id)
    plan = tunectl(directory, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "Objects have changed outside of tunectl" in plan.stdout
    assert '-> "cancelled"' in plan.stdout and '-> "lost"' in plan.stdout
    assert tunectl(directory, "destroy", "--auto-approve").returncode == 0


@pytest.mark.slow
def test_thirty_percent_faults_lose_nothing(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=5, concurrent=3)
    server.emulator.faults = Faults(throttle=0.1, unavailable=0.1, error=0.1, seed=7)
    try:
        result = tunectl(directory, "apply", "--auto-approve", timeout=300)
    finally:
        server.emulator.faults = Faults()
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 5, (records, result.stdout)
    assert all(t["value"] == pytest.approx(t["params"]["x"], abs=1e-9) for t in records)
    found = keys([i for i in instances_of(server, directory) if "EXT_TASK_ID" in i.settings])
    assert len(found) == len(set(found)) == 10


HOSTILE = [
    'x" -DevilParam=1',
    "a</Value></Parameter><Parameter><Key>k</Key><Value>v",
    "'); drop table victim; --",
    "back\\slash\\' and \\\\'",
    "two\nlines\r\n",
    "${param.v} $(id) `id`",
    "naïve ✓ 😀",
]

INJECTION = """\
provider "maxcompute" {{
  project          = "{project}"
  endpoint         = "{endpoint}"
  metrics_interval = 0
}}

experiment "mcx" {{
  algorithm "grid" {{
    seed = 1
  }}
  objective {{
    metric    = "n"
    direction = "maximize"
  }}
  max_trials     = {trials}
  max_concurrent = 4
  param "v" {{
    type   = "choice"
    values = {values}
  }}
  trial {{
    provider = "maxcompute"
    task "echo" {{
      pai = "-name echo -project algo_public -Doutput=${{param.v}} -Dseconds=0"
    }}
    task "store" {{
      sql = [
        "create table if not exists victim (v string)",
        "create table if not exists seen_${{trial.number}} (v string, n double)",
        "insert into seen_${{trial.number}} values ('${{param.v}}', ${{trial.number}})",
      ]
      metrics "table" {{
        sql = "select n from seen_${{trial.number}} where v = '${{param.v}}'"
      }}
    }}
  }}
}}
"""


def test_values_cannot_change_a_pai_command_or_a_query(tmp_path: Path, server: Server) -> None:
    # As HCL: `$${` is a literal `${`; braces doubled for str.format.
    values = json.dumps(HOSTILE, ensure_ascii=False).replace("${", "$${")
    values = values.replace("{", "{{").replace("}", "}}")
    directory = setup(
        tmp_path, server, trials=len(HOSTILE), text=INJECTION.replace("{values}", values)
    )
    result = tunectl(directory, "apply", "--auto-approve", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * len(HOSTILE)
    # The metrics query found each value again, by the value: it arrived byte for byte.
    assert sorted(t["value"] for t in records) == list(range(len(HOSTILE)))
    instances = instances_of(server, directory)
    sent = []
    for instance in instances:
        if instance.task_type != "AlgoTask":
            continue
        params = {
            p.findtext("Key"): p.findtext("Value")
            for p in ET.fromstring(instance.source).iter("Parameter")
        }
        assert set(params) == {"output", "seconds"}  # no value added a parameter
        sent.append(params["output"])
    assert sorted(sent) == sorted(HOSTILE)
    project = (directory / ".project").read_text()
    database = server.emulator.database(project)
    assert database.count("victim") == 0  # the table no value could drop is still there
    stored = []
    for number in range(len(HOSTILE)):
        stored += [row[0] for row in database.head(f"seen_{number}", 10).rows]
    assert sorted(stored) == sorted(HOSTILE)


def test_credentials_stay_out_of_files_and_output(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=1)
    plan = tunectl(directory, "plan", "--out", "p.plan")
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    logs = tunectl(directory, "logs", "experiment.mcx")
    outputs = plan.stdout + plan.stderr + result.stdout + result.stderr + logs.stderr
    files = [directory / "p.plan", *sorted((directory / "state").rglob("*"))]
    for secret in (TEST_KEY_SECRET, TEST_KEY_ID):
        assert secret not in outputs
        for path in files:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    for instance in instances_of(server, directory):  # nor do the jobs carry them
        assert TEST_KEY_SECRET.encode() not in instance.source


def test_missing_credentials_stop_apply_with_the_fix(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=2)
    outside = {k: v for k, v in env().items() if not k.startswith("ALIBABA_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**outside, "HOME": str(tmp_path)},  # no ~/.alibabacloud profile either
    )
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Error: Provider refused the trial" in result.stderr
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert instances_of(server, directory) == []


def test_wrong_credentials_are_a_clear_error(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, trials=1)
    result = tunectl(directory, "apply", "--auto-approve", ALIBABA_CLOUD_ACCESS_KEY_SECRET="nope")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Error: Provider refused the trial" in result.stderr
    assert "SignatureNotMatch" in text and "Traceback" not in text and "nope" not in text
    assert instances_of(server, directory) == []


BAD_BODIES = [
    ('pai = "-project algo_public -Deta=1"', "no algorithm: a PAI command starts -name"),
    ('pai = "-name ${param.a} -Deta=1"', "outside the value of a -Dkey=value parameter"),
    ('pai = "-name xgboost --eta 1"', "'--eta' is not an argument of a PAI command"),
    ('sql = "select 1; select 2"', "write one per string, and several as a list"),
    ('sql = "select \'${param.a}"', "A quote or a /* comment is not closed"),
    ('sql = "select * from t_${param.a}"', "outside a string literal, where only a number"),
    ('pai = "-name echo"\n      sql = "select 1"', 'sets both "pai" and "sql"'),
    ('command = "echo hi"', "Unsupported argument"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_validate_refuses_bad_bodies(tmp_path: Path, body: str, message: str) -> None:
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / "main.hcl").write_text(
        textwrap.dedent(
            """\
            provider "maxcompute" {
              project  = "demo_p"
              endpoint = "http://127.0.0.1:9/api"
            }
            experiment "mcx" {
              algorithm "random" {}
              objective {
                metric    = "acc"
                direction = "maximize"
              }
              max_trials = 1
              param "a" {
                type   = "choice"
                values = ["x", "y"]
              }
              trial {
                provider = "maxcompute"
                task "t" {
                  BODY
                }
              }
            }
            """
        ).replace("BODY", body)
    )
    result = tunectl(directory, "validate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "on main.hcl line" in result.stderr and "Traceback" not in result.stderr


PRUNING = """\
provider "maxcompute" {{
  project          = "{project}"
  endpoint         = "{endpoint}"
  metrics_interval = 0
}}

experiment "mcx" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials = 2
  early_stopping "median" {{
    n_startup_trials = 1
    start_step       = 1
  }}
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    provider = "maxcompute"
    task "curve" {{
      sql = [
        "create table if not exists curve_${{trial.number}} (step bigint, acc double)",
        "insert overwrite table curve_${{trial.number}} values (1, 1.0 / (${{trial.number}} + 1))",
        "insert into table curve_${{trial.number}} values (2, 1.0 / (${{trial.number}} + 1))",
      ]
    }}
    task "train" {{
      # Trial 0 runs at once; trial 1 would run 100 s, but its curve is worse.
      pai = "-name echo -Doutput=done -Dseconds=${{trial.number}}00"
      metrics "table" {{
        sql = "select step, acc from curve_${{trial.number}} order by step"
      }}
    }}
  }}
}}
"""


def test_early_stopping_on_table_metrics_stops_the_instance(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, text=PRUNING)
    started = time.monotonic()
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60  # did not wait out the 100 s
    assert [t["status"] for t in trials(directory)] == ["complete", "pruned"]
    echo = [i for i in instances_of(server, directory) if i.task_type == "AlgoTask"]
    assert [i.task_status for i in sorted(echo, key=lambda i: i.created)] == [
        "Success",
        "Cancelled",
    ]
