"""Trials end completely: what a task started, even in a new session, ends with the task.

Each trial starts a grandchild that calls `setsid` (leaving the task's process group and
session, as a daemonising tool does) and ignores SIGTERM, then the trial sleeps. The real
CLI runs apply and destroy; the test then looks the grandchild up in /proc.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tunectl_local.stop import GRACE

from tests.conftest import run_cli, write

# Started by a trial: leaves the session, ignores SIGTERM, writes its pid, sleeps.
GRANDCHILD = """\
import os, signal, sys, time
os.setsid()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def config(*, max_trials: int, concurrent: int, timeout: str = "") -> str:
    # The trial itself ignores SIGTERM too (`trap '' TERM`), so only SIGKILL stops it.
    command = (
        "trap '' TERM; python3 grandchild.py gc-${trial.number}.pid & "
        "echo started; sleep 600"
    )
    timeout_line = f'timeout = "{timeout}"' if timeout else ""
    return f"""\
provider "local" {{
  slots = 4
}}

experiment "demo" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials        = {max_trials}
  max_concurrent    = {concurrent}
  max_failed_trials = {max_trials}
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "{command}"
    workdir = "."
    {timeout_line}
  }}
}}
"""


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie has ended: only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def grandchildren(directory: Path, count: int, within: float = 60) -> list[int]:
    give_up = time.monotonic() + within
    while True:
        paths = sorted(directory.glob("gc-*.pid"))
        if len(paths) >= count:
            return [int(p.read_text()) for p in paths]
        assert time.monotonic() < give_up, f"only {len(paths)} grandchildren started"
        time.sleep(0.1)


def test_setsid_grandchild_dies_with_a_timed_out_trial(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": config(max_trials=1, concurrent=1, timeout="2s"), "grandchild.py": GRANDCHILD},
    )
    result = run_cli(directory, "apply", "--auto-approve", timeout=180)
    assert "Traceback" not in result.text, result.text
    trials = json.loads(run_cli(directory, "show", "experiment.demo", "--json").out)
    assert [t["status"] for t in trials] == ["failed"]
    assert "timed out" in json.dumps(trials)
    (pid,) = grandchildren(directory, 1, within=1)
    assert not alive(pid), f"the setsid grandchild {pid} outlived its timed-out trial"


def test_destroy_ends_every_descendant_in_one_grace_period(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {"main.hcl": config(max_trials=4, concurrent=4), "grandchild.py": GRANDCHILD},
    )
    # One pass launches the four trials and leaves them running.
    result = run_cli(directory, "apply", "--auto-approve", "--once", timeout=180)
    assert result.code == 0, result.text
    pids = grandchildren(directory, 4)
    assert all(alive(pid) for pid in pids)

    started = time.monotonic()
    result = run_cli(directory, "destroy", "--auto-approve", timeout=180)
    took = time.monotonic() - started
    assert result.code == 0, result.text
    assert [pid for pid in pids if alive(pid)] == []
    # Four tasks that ignore SIGTERM share one grace period; one after another they
    # would take 4 x GRACE. (The rest is the CLI's own start-up.)
    assert took < 2.5 * GRACE, f"destroy took {took:.1f}s"
