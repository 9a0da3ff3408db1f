"""`enqueue = [{ ... }, ...]` from the command line: known parameter sets run before the
algorithm's own proposals, once each (across a killed apply too), shown by plan, and
checked against the search space by validate."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_apply import apply, config, launches, setup, trials
from tests.conftest import cli_env, run_cli

PARAMS = """param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  param "layers" {
    type = "randint"
    low  = 1
    high = 5
  }
  param "opt" {
    type   = "choice"
    values = ["adam", "sgd"]
    when   = { layers = 3 }
  }"""

SETS = '{ x = 0.25, layers = 2 },\n    { x = 0.5, layers = 3, opt = "sgd" },'


def hcl(sets: str = SETS, max_trials: int = 3, args: str = "steps=1", **kw) -> str:
    return config(
        max_trials=max_trials,
        concurrent=1,
        params=PARAMS,
        extra=f"enqueue = [\n    {sets}\n  ]",
        args=args,
        **kw,
    )


def params(directory: Path) -> list[dict]:
    return [t["params"] for t in trials(directory)]


def test_enqueued_sets_run_first_and_plan_shows_them(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl())
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert (
        '+ enqueue        = [{ layers = 2, x = 0.25 }, { layers = 3, opt = "sgd", x = 0.5 }]'
        in plan.out
    ), plan.out

    result = apply(directory)
    assert result.code == 0, result.text
    assert "trial 0 started x=0.25 layers=2" in result.out
    assert "trial 1 started x=0.5 layers=3 opt=sgd" in result.out
    first = params(directory)
    assert first[:2] == [{"x": 0.25, "layers": 2}, {"x": 0.5, "layers": 3, "opt": "sgd"}]
    assert len(first) == 3 and first[2] not in first[:2]  # then the algorithm's own

    # A set added later is an in-place update: it runs next, and the others not again.
    more = SETS + "\n    { x = 0.75, layers = 4 },"
    (directory / "main.hcl").write_text(hcl(more, max_trials=5))
    plan = run_cli(directory, "plan")
    assert "~ update in-place" in plan.out and "~ enqueue" in plan.out, plan.out
    result = apply(directory)
    assert result.code == 0, result.text
    after = params(directory)
    assert after[:3] == first and after[3] == {"x": 0.75, "layers": 4}
    assert len(after) == 5 and after[4] not in after[:4]


@pytest.mark.slow
def test_a_killed_apply_does_not_run_an_enqueued_set_twice(tmp_path: Path) -> None:
    layers = [1, 2, 4, 1]
    sets = "\n    ".join(f"{{ x = 0.{i}, layers = {n} }}," for i, n in enumerate(layers, 1))
    directory = setup(tmp_path, hcl(sets, max_trials=4, args="steps=3 sleep=0.3"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    while len(launches(directory)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # while the second set's trial runs
    _, err = proc.communicate(timeout=60)
    assert len(launches(directory)) == 2, err.decode()

    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["params"] for t in records] == [
        {"x": i / 10, "layers": n} for i, n in enumerate(layers, 1)
    ]
    assert all(t["status"] == "complete" for t in records), records
    # Every trial's process was started exactly once.
    assert sorted(launches(directory)) == sorted(t["id"] for t in records)


def test_sets_outside_the_space_are_located_errors(tmp_path: Path) -> None:
    bad = (
        "{ x = 1.5, layers = 2 },\n"
        "    { x = 0.5 },\n"
        '    { x = 0.5, layers = 2, opt = "sgd" },\n'
        '    { x = 0.5, layers = 3, opt = "rmsprop" },\n'
        "    { x = 0.5, layers = 5, depth = 3 },\n"
        '    "x = 0.5",'
    )
    directory = setup(tmp_path, hcl(bad))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    text = result.text
    assert "Traceback" not in text
    expected = [
        (
            12,
            'enqueue[0]: x = 1.5 is outside the space of "x": it takes numbers from 0.0 to 1.0.',
        ),
        (13, 'enqueue[1]: The set gives no value for "layers": add one.'),
        (14, 'enqueue[2]: "opt" exists only when layers = 3, which this set does not give'),
        (15, 'enqueue[3]: opt = "rmsprop" is outside the space of "opt": its values are'),
        (16, 'enqueue[4]: "depth" is not a parameter of this experiment.'),
        (16, 'enqueue[4]: layers = 5 is outside the space of "layers": it takes whole'),
        (17, "enqueue[5] must be a map of parameter values such as { lr = 0.01 }, got string."),
    ]
    for line, sentence in expected:
        assert sentence in text, (sentence, text)
        assert f'on main.hcl line {line}, in experiment "demo"' in text, (line, text)
    assert text.count("Error: Invalid enqueue") == len(expected)


def test_repeated_sets_and_sets_beyond_max_trials_are_warnings(tmp_path: Path) -> None:
    sets = "{ x = 0.5, layers = 1 },\n    { x = 0.25, layers = 2 },\n    { layers = 1, x = 0.5 },"
    directory = setup(tmp_path, hcl(sets, max_trials=2))
    result = run_cli(directory, "validate")
    assert result.code == 0, result.text
    text = result.text
    assert "Warning: Enqueued set repeated" in text
    assert "enqueue[2] repeats enqueue[0]: a set runs once, so this one never runs." in text
    assert "Warning: Enqueued sets beyond max_trials" in text
    assert "enqueue lists 3 parameter sets, more than max_trials (2): the last 1 run" in text
