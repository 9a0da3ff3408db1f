"""`schedule { days, start, end, timezone }` from the command line: apply launches trials
only inside a window (trials already running go on), `--once` exits outside one, and plan
says when the next window opens.

The windows are placed hours away from the moment the test runs (or on a day that is not
today, or in a time zone where the hour is another), so the tests never depend on when
they run and never wait for a real window.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.cli.test_apply import apply, config, setup, trials
from tests.conftest import cli_env, run_cli

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window(hours_from_now: float, length: float, zone: str = "UTC") -> tuple[str, str]:
    """(start, end) as "HH:MM" in `zone`: opening `hours_from_now` (negative: already
    open), lasting `length` hours."""
    now = datetime.now(ZoneInfo(zone))
    start = now + timedelta(hours=hours_from_now)
    return start.strftime("%H:%M"), (start + timedelta(hours=length)).strftime("%H:%M")


def hcl(start: str, end: str, zone: str = "UTC", days: str = "", **kw) -> str:
    days_line = f"\n    days     = {days}" if days else ""
    block = (
        f'schedule {{{days_line}\n    start    = "{start}"\n    end      = "{end}"\n'
        f'    timezone = "{zone}"\n  }}'
    )
    return config(extra=block, **kw)


def opening(hours_from_now: float, zone: str = "UTC") -> str:
    start = datetime.now(ZoneInfo(zone)) + timedelta(hours=hours_from_now)
    return start.strftime("%a %Y-%m-%d %H:%M ") + zone


def test_outside_the_window_plan_says_when_it_opens_and_apply_once_launches_nothing(
    tmp_path: Path,
) -> None:
    start, end = window(6, 1)
    directory = setup(tmp_path, hcl(start, end, max_trials=2))
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    said = f"outside its schedule: the next window opens {opening(6)}"
    assert said in plan.out, plan.out
    assert f'start = "{start}"' in plan.out

    result = apply(directory, "--once")
    assert result.code == 0, result.text
    assert f"no new trials until the next window opens {opening(6)}" in result.out, result.out
    assert "One pass done (--once); 0 trial(s) running" in result.out
    assert trials(directory) == []


def test_inside_the_window_apply_runs_every_trial(tmp_path: Path) -> None:
    start, end = window(-3, 6)
    directory = setup(tmp_path, hcl(start, end, max_trials=3))
    plan = run_cli(directory, "plan")
    assert f"its schedule window is open until {opening(3)}" in plan.out, plan.out
    result = apply(directory)
    assert result.code == 0, result.text
    assert [t["status"] for t in trials(directory)] == ["complete"] * 3


def test_the_window_is_read_in_its_time_zone(tmp_path: Path) -> None:
    # Open now on Shanghai's clock; the same hours on New York's clock (13 hours behind
    # in December, 12 in summer) are not now.
    start, end = window(-1, 2, "Asia/Shanghai")
    directory = setup(tmp_path, hcl(start, end, "America/New_York", max_trials=1))
    result = apply(directory, "--once")
    assert "outside its schedule" in result.out, result.out
    assert trials(directory) == []

    (directory / "main.hcl").write_text(hcl(start, end, "Asia/Shanghai", max_trials=1))
    plan = run_cli(directory, "plan")
    assert "~ schedule" in plan.out and "update in-place" in plan.out, plan.out
    result = apply(directory)
    assert result.code == 0, result.text
    assert [t["status"] for t in trials(directory)] == ["complete"]


def test_days_other_than_today(tmp_path: Path) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    days = f'["{DAYS[later.weekday()]}"]'
    directory = setup(tmp_path, hcl("00:00", "00:00", days=days, max_trials=1))
    plan = run_cli(directory, "plan")
    expected = later.strftime("%a %Y-%m-%d") + " 00:00 UTC"
    assert f"the next window opens {expected}" in plan.out, plan.out
    assert apply(directory, "--once").code == 0
    assert trials(directory) == []


def test_running_trials_go_on_when_the_window_closes(tmp_path: Path) -> None:
    open_ = window(-3, 6)
    directory = setup(tmp_path, hcl(*open_, max_trials=4, concurrent=2, args="steps=3 sleep=0.5"))
    (directory / "trial.py").write_text(
        (directory / "trial.py")
        .read_text()
        .replace('time.sleep(float(args.get("sleep", 0)))', "time.sleep(0.5)")
    )
    assert apply(directory, "--once").code == 0
    assert len(trials(directory)) == 2
    # The window closes (an in-place update): the two running trials are followed to
    # their end, and no other starts.
    (directory / "main.hcl").write_text(
        hcl(*window(6, 1), max_trials=4, concurrent=2, args="steps=3 sleep=0.5")
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = apply(directory, "--once")
        assert result.code == 0, result.text
        if all(t["status"] == "complete" for t in trials(directory)):
            break
        time.sleep(0.3)
    assert [t["status"] for t in trials(directory)] == ["complete"] * 2


def test_apply_waits_outside_the_window_until_interrupted(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl(*window(6, 1), max_trials=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "--chdir", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "outside its schedule" in line or not line:
                break
        assert "outside its schedule" in lines[-1], lines
        time.sleep(1.0)
        assert proc.poll() is None  # waiting for the window, not exited
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert trials(directory) == []


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('days = ["funday"]', '"funday" is not a day'),
        ('days = ["sat", "sunday", "weekend", "frii"]', 'Did you mean "fri"?'),
        ('start = "25:00"', 'start must be a time of day as "HH:MM"'),
        ('end = "6pm"', 'end must be a time of day as "HH:MM"'),
        ('timezone = "Mars/Olympus"', '"Mars/Olympus" is not a time zone'),
        ("days = []", "days is empty"),
    ],
)
def test_bad_schedules_are_clear_errors(tmp_path: Path, block: str, message: str) -> None:
    directory = setup(tmp_path, config(extra=f"schedule {{\n    {block}\n  }}"))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert message in result.err, result.text
    assert "Traceback" not in result.err
