"""What `tunectl apply` prints where there is no terminal (CI, cron): the output is a pipe.

Status lines at `--progress-interval`, `[done/total]` before each trial event, and a failed
trial's last output lines with the command that prints the rest.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_env, run_cli, write

# Trial n sleeps `sleep` seconds, reports acc = x, and trial `fail` exits 3 after printing
# a traceback to stderr.
TRIAL = """\
import sys, time
n, x, sleep, fail = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"trial {n} loading data", flush=True)
time.sleep(sleep)
print(f"acc={x:.4f}", flush=True)
if n == fail:
    for i in range(8):
        print(f"noise {i}", flush=True)
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "trial.py", line 9, in <module>', file=sys.stderr)
    print("ValueError: learning rate too high", file=sys.stderr, flush=True)
    sys.exit(3)
"""


def config(*, max_trials: int = 4, sleep: float = 0.0, fail: int = -1) -> str:
    return f"""\
experiment "demo" {{
  algorithm "random" {{
    seed = 7
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials        = {max_trials}
  max_concurrent    = 2
  max_failed_trials = 2
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py ${{trial.number}} ${{param.x}} {sleep} {fail}"
  }}
}}
"""


def setup(tmp_path: Path, hcl: str) -> Path:
    directory = write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})
    assert run_cli(directory, "init").code == 0
    return directory


STATUS = re.compile(
    r"^(\d\d):(\d\d):(\d\d) experiment\.demo: \[(\d+)/4\] (\d+) running"
    r"(?:, \d+ pruned)?(?:, \d+ failed)?(?:, best ([0-9.]+) \(trial (\d+)\))?"
    r", (\S+) elapsed(?:, ETA (\S+))?$"
)
EVENT = re.compile(r"^\d\d:\d\d:\d\d experiment\.demo: \[(\d+)/4\] trial (\d+) (\w+)")


def test_status_line_at_the_interval(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(sleep=2.5))
    result = run_cli(directory, "apply", "--auto-approve", "--progress-interval", "1s")
    assert result.code == 0, result.text
    status = [m for m in map(STATUS.match, result.out.splitlines()) if m]
    # About 5 s of trials (2 rounds of 2.5 s): a line about every second.
    assert len(status) >= 3, result.out
    seconds = [int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) for m in status]
    assert all(b - a >= 1 for a, b in zip(seconds, seconds[1:], strict=False)), result.out
    first = status[0]
    assert (first[4], first[5], first[6]) == ("0", "2", None), first[0]  # nothing ended yet
    assert first[9] is None, "no ETA before a trial has ended"
    later = [m for m in status if m[4] != "0"]
    assert later, result.out
    assert later[0][6] is not None and later[0][9] is not None, later[0][0]  # best and ETA
    assert "\x1b" not in result.out  # no live table, no colour: a pipe is not a terminal


def test_progress_interval_zero_and_invalid(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=2, sleep=1.5))
    result = run_cli(directory, "apply", "--auto-approve", "--progress-interval", "0")
    assert result.code == 0, result.text
    assert not any(STATUS.match(line) for line in result.out.splitlines()), result.out
    bad = run_cli(directory, "apply", "--auto-approve", "--progress-interval", "often")
    assert bad.code == 1
    assert "Error: Invalid --progress-interval" in bad.err, bad.err
    assert '"often" is not a duration' in bad.err
    assert "Traceback" not in bad.text


def test_trial_events_are_prefixed_with_done_of_total(tmp_path: Path) -> None:
    directory = setup(tmp_path, config())
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    lines = [line for line in result.out.splitlines() if "experiment.demo: [" in line]
    events = [m for m in map(EVENT.match, lines) if m]
    assert len(events) == 8, result.out  # 4 started, 4 complete
    done = [int(m[1]) for m in events]
    assert done == sorted(done) and done[-1] == 4, result.out
    ended = [int(m[1]) for m in events if m[3] == "complete"]
    assert sorted(ended) == [1, 2, 3, 4], result.out  # each end counts itself
    assert re.search(r"experiment\.demo: \[4/4\] succeeded: reached max_trials", result.out)


def test_failed_trial_shows_its_last_output_and_the_logs_command(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=3, fail=1))
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    lines = result.out.splitlines()
    at = next(i for i, line in enumerate(lines) if "trial 1 failed" in line)
    assert re.match(r"^\d\d:\d\d:\d\d experiment\.demo: \[\d/3\] trial 1 failed \(", lines[at])
    assert lines[at + 1 : at + 7] == [
        "    | noise 6",
        "    | noise 7",
        "    | Traceback (most recent call last):",
        '    |   File "trial.py", line 9, in <module>',
        "    | ValueError: learning rate too high",
        "    whole output: tunectl logs experiment.demo --trial 1",
    ], result.out
    # The command it names prints the whole output.
    logs = run_cli(directory, "logs", "experiment.demo", "--trial", "1")
    assert logs.code == 0, logs.text
    assert "trial 1 loading data" in logs.out
    assert "ValueError: learning rate too high" in logs.out
    # Trials that did not fail show no output.
    assert "    | trial 0 loading data" not in result.out


def test_on_a_terminal_the_live_table_replaces_prefixes_and_status_lines(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=3, sleep=1.0, fail=1))
    env = cli_env(TERM="xterm", COLUMNS="120")
    env.pop("NO_COLOR")
    main, child = pty.openpty()
    args = ["--chdir", str(directory), "apply", "--auto-approve", "--progress-interval", "1s"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(main)
    out = b"".join(chunks).decode(errors="replace")
    assert "tunectl apply" in out  # the live table's title
    assert re.search(r"experiment\.demo: trial 0 complete", out), out
    assert not re.search(r"experiment\.demo: \[\d/3\]", out), out  # no prefixes, no status lines
    assert "    | ValueError: learning rate too high" in out  # a failed trial's output still
    assert "whole output: tunectl logs experiment.demo --trial 1" in out
