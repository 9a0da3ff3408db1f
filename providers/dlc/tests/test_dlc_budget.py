"""`max_cost` on DLC from the command line: the real CLI against the emulator, priced by
the provider's price table (here one instance type at 3600 a hour: 1 a second)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from test_dlc_cli import tunectl
from tunectl_dlc.emulator import Server

TRIAL = """\
import sys, time
x = float(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.4
for step in range(1, 4):
    time.sleep(pause)
    print(f"acc={(1 - (x - 0.3) ** 2) * step / 3:.6f}", flush=True)
"""


def config(
    endpoint: str,
    code: Path,
    *,
    budget: str = "max_cost = 3",
    spec: str = "ecs.g6.xlarge",
    pause: str = "0.4",
) -> str:
    return textwrap.dedent(
        f"""\
        provider "dlc" {{
          region       = "cn-hangzhou"
          workspace_id = "ws-test"
          endpoint     = "{endpoint}"
          protocol     = "http"
          log_interval = 0
          log_delay    = 0
          prices       = {{ "ecs.g6.xlarge" = 3600 }}
        }}

        experiment "paid" {{
          algorithm "random" {{
            seed = 3
          }}
          objective {{
            metric    = "acc"
            direction = "maximize"
          }}
          max_trials     = 20
          max_concurrent = 2
          {budget}
          param "x" {{
            type = "uniform"
            low  = 0
            high = 1
          }}
          trial {{
            provider = "dlc"
            image    = "registry.example.com/train:1"
            worker   = {{ count = 1, ecs_spec = "{spec}" }}
            timeout  = "10s"
            command  = "python3 {code}/trial.py ${{param.x}} {pause}"
          }}
        }}
        """
    )


def setup(tmp_path: Path, server: Server, **kwargs: str) -> Path:
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / "trial.py").write_text(TRIAL)
    (directory / "main.hcl").write_text(config(server.endpoint, directory, **kwargs))
    return directory


def test_max_cost_stops_the_experiment(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server)
    # The plan: nothing spent, and the 20 trials at their 10 s timeout may cost 200.
    plan = tunectl(directory, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "spent ¥0.00 of max_cost ¥3.00, estimated ¥0.00 to ¥200.00" in plan.stdout
    assert "more than max_cost: it may stop the experiment first" in plan.stdout

    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped: reached max_cost" in result.stdout, result.stdout
    shown = json.loads(tunectl(directory, "show", "--json").stdout)["experiments"]["paid"]
    assert shown["status"] == "stopped"
    assert shown["stop_reason"] == "max_cost"
    show = tunectl(directory, "show")
    assert "# experiment.paid: stopped (reached max_cost)" in show.stdout, show.stdout

    doc = json.loads(tunectl(directory, "trials", "experiment.paid", "--json").stdout)
    costs = [t["cost"] for t in doc["trials"]]
    # Far fewer than max_trials ran; each costs its running time (~1.2 s or more) at 1 a
    # second, and together they reached the budget.
    assert 2 <= len(costs) < 8, costs
    assert all(c is not None and c > 0 for c in costs), costs
    assert sum(costs) >= 3
    assert sum(c > 1 for c in costs) >= 1
    table = tunectl(directory, "trials", "experiment.paid")
    assert " cost " in table.stdout.splitlines()[2], table.stdout
    csv = tunectl(directory, "trials", "experiment.paid", "--csv").stdout.splitlines()
    assert csv[0].endswith(",cost") and all(row.split(",")[-1] for row in csv[1:])

    # Stopped by its budget: the plan shows the spend and nothing to run.
    plan = tunectl(directory, "plan", "--detailed-exitcode")
    assert plan.returncode == 0 and "No changes" in plan.stdout, plan.stdout

    # Raising max_cost above the spend lets it continue.
    text = (directory / "main.hcl").read_text().replace("max_cost = 3", "max_cost = 500")
    (directory / "main.hcl").write_text(text)
    plan = tunectl(directory, "plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "will run up to" in plan.stdout and "of max_cost ¥500.00" in plan.stdout


def test_max_cost_refused_for_an_unpriced_instance_type(tmp_path: Path, server: Server) -> None:
    directory = setup(tmp_path, server, spec="ecs.unknown")
    result = tunectl(directory, "validate")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Error: Invalid max_cost" in result.stderr, result.stderr
    assert "main.hcl line 21" in result.stderr, result.stderr
    assert 'the price of task "main"' in result.stderr
    assert 'Give its prices with "prices" in the provider "dlc" block.' in result.stderr
    # Without max_cost, an unknown price is no error (no estimate, as before).
    (directory / "main.hcl").write_text(config(server.endpoint, directory, budget="", spec="x"))
    assert tunectl(directory, "validate").returncode == 0


def test_reaching_max_cost_stops_the_running_jobs(tmp_path: Path, server: Server) -> None:
    # Two trials of 6 s at once, at 1 a second each: the budget of 2 is spent in about 1 s.
    directory = setup(tmp_path, server, budget="max_cost = 2", pause="2")
    result = tunectl(directory, "apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(tunectl(directory, "trials", "experiment.paid", "--json").stdout)
    assert [t["state"] for t in doc["trials"]] == ["pruned", "pruned"], doc["trials"]
    assert all("reached max_cost" in t["message"] for t in doc["trials"])
    assert all(t["cost"] < 5 for t in doc["trials"])  # stopped long before their 6 s
    with server.emulator.lock:
        jobs = [j for j in server.emulator.jobs.values() if str(directory) in j.spec["UserCommand"]]
    assert sorted(j.status for j in jobs) == ["Stopped", "Stopped"]
