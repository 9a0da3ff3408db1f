"""Knowledge carried across replacement, from the command line: the plan says how many
complete trials fit a changed space, `warm_start = true` carries them into the new
generation (the sampler learns from them; grid search does not run them again, also after
a kill -9), and `warm_start { from = experiment.X }` seeds one experiment from another's
best trials once that one has finished. Mistakes are located diagnostics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_apply import apply, config, launches, setup, trials
from tests.conftest import cli_env, run_cli, write

UNIFORM = 'param "x" {\n    type = "uniform"\n    low  = 0\n    high = %s\n  }'
RANDOM = 'algorithm "random" {\n    seed = 3\n  }'


def random_hcl(high: str = "1", warm: bool = False, max_trials: int = 6) -> str:
    return config(
        max_trials=max_trials,
        concurrent=1,
        algorithm=RANDOM,
        params=UNIFORM % high,
        extra="warm_start = true" if warm else "",
    )


def carried(rows: list[dict]) -> list[dict]:
    return [t for t in rows if t["message"].startswith("carried from")]


def test_plan_counts_the_trials_that_fit_and_apply_carries_them(tmp_path: Path) -> None:
    directory = setup(tmp_path, random_hcl())
    assert apply(directory).code == 0
    first = trials(directory)
    fit = [t for t in first if t["params"]["x"] <= 0.5]
    assert 0 < len(fit) < 6, first  # the seed gives some of each

    (directory / "main.hcl").write_text(random_hcl("0.5"))
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    sentence = f"{len(fit)} of 6 complete trials fit the new space: warm_start = true would"
    assert sentence in plan.out, plan.out

    (directory / "main.hcl").write_text(random_hcl("0.5", warm=True))
    plan = run_cli(directory, "plan")
    assert f"carries {len(fit)} of 6 trials into the new generation" in plan.out, plan.out
    # Carried trials count toward max_trials: the rest is what runs.
    assert f"will run up to {6 - len(fit)} trials" in plan.out, plan.out
    data = json.loads(run_cli(directory, "plan", "--json").out)
    assert data["changes"][0]["carry"] == {
        "source": "experiment.demo",
        "total": 6,
        "fit": len(fit),
        "carried": len(fit),
        "top": None,
        "waits": False,
    }
    markdown = run_cli(directory, "plan", "--markdown").out
    assert f"carries {len(fit)} of 6 trials" in markdown
    forced = run_cli(directory, "plan", "--replace", "experiment.demo")
    assert "carries" not in forced.out and "will run up to 6 trials" in forced.out, forced.out

    result = apply(directory)
    assert result.code == 0, result.text
    assert f"experiment.demo: carried {len(fit)} trial(s) over" in result.out
    after = trials(directory)
    assert len(after) == 6
    moved = carried(after)
    assert [t["params"] for t in moved] == [t["params"] for t in fit]
    assert [t["value"] for t in moved] == [t["value"] for t in fit]
    assert [t["number"] for t in moved] == list(range(len(fit)))
    assert all(t["system_attrs"]["tunectl:carried"]["generation"] == 1 for t in moved)
    assert all(0 <= t["params"]["x"] <= 0.5 for t in after)
    # Only the new trials were launched in the new generation.
    assert sum("-g2-" in line for line in launches(directory)) == 6 - len(fit)


GRID_PARAMS = 'param "x" {\n    type   = "choice"\n    values = [%s]\n  }'


def grid_hcl(values: str, max_trials: int, args: str = "steps=1") -> str:
    return config(
        max_trials=max_trials,
        concurrent=1,
        algorithm='algorithm "grid" {}',
        params=GRID_PARAMS % values,
        extra="warm_start = true",
        args=args,
    )


def test_grid_search_does_not_run_carried_combinations_again(tmp_path: Path) -> None:
    directory = setup(tmp_path, grid_hcl("0.1, 0.2, 0.3", 3))
    assert apply(directory).code == 0
    # One value dropped, two added: two of the three trials fit.
    (directory / "main.hcl").write_text(grid_hcl("0.2, 0.3, 0.4, 0.5", 4))
    plan = run_cli(directory, "plan")
    assert "carries 2 of 3 trials" in plan.out, plan.out
    result = apply(directory)
    assert result.code == 0, result.text
    rows = sorted(trials(directory), key=lambda t: t["number"])
    assert sorted(t["params"]["x"] for t in carried(rows)) == [0.2, 0.3]
    new = [t["params"]["x"] for t in rows if not t["message"]]
    assert sorted(new) == [0.4, 0.5]  # the sampler saw the carried ones
    assert "succeeded" in result.out


@pytest.mark.slow
def test_carried_trials_are_written_once_across_a_killed_apply(tmp_path: Path) -> None:
    directory = setup(tmp_path, grid_hcl("0.1, 0.2, 0.3", 3))
    assert apply(directory).code == 0
    slow = "steps=1 sleep=30"
    (directory / "main.hcl").write_text(grid_hcl("0.2, 0.3, 0.4, 0.5", 4, slow))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "--chdir", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not any("-g2-" in line for line in launches(directory)):
        assert time.monotonic() < deadline and proc.poll() is None, "no trial launched"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The next apply adopts the running trial; the carried ones are not carried again.
    plan = run_cli(directory, "plan")
    assert "has pending trials" in plan.out and "carries" not in plan.out, plan.out
    result = run_cli(directory, "apply", "--auto-approve", "--once")
    assert result.code == 0, result.text
    assert "carried" not in result.out and "created" not in result.out, result.out
    rows = trials(directory)
    numbers = [t["number"] for t in rows]
    assert len(numbers) == len(set(numbers))
    assert sorted(t["params"]["x"] for t in carried(rows)) == [0.2, 0.3]
    assert run_cli(directory, "destroy", "--auto-approve").code == 0


TWO = """\
experiment "coarse" {
  algorithm "random" {
    seed = 5
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 6
  %(coarse_extra)s
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py id=${trial.id} x=${param.x} steps=1"
  }
}

experiment "fine" {
  algorithm "tpe" {
    seed = 5
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 5
  warm_start {
    from = experiment.%(source)s
    top  = 2
  }
  param "x" {
    type = "uniform"
    low  = 0
    high = 0.6
  }
  trial {
    command = "python3 trial.py id=${trial.id} x=${param.x} steps=1"
  }
}
"""


def two(source: str = "coarse", coarse_extra: str = "") -> str:
    return TWO % {"source": source, "coarse_extra": coarse_extra}


def _rows(directory: Path, name: str) -> list[dict]:
    result = run_cli(directory, "trials", f"experiment.{name}", "--json", "--sort", "number")
    assert result.code == 0, result.text
    return json.loads(result.out)["trials"]


def test_an_experiment_seeded_from_another_runs_after_it(tmp_path: Path) -> None:
    directory = setup(tmp_path, two())
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert "waits for experiment.coarse to finish, then seeds its best trials that fit" in (
        plan.out
    ), plan.out
    result = apply(directory)
    assert result.code == 0, result.text
    assert "experiment.fine: seeded with 2 trial(s) of experiment.coarse" in result.out
    coarse, fine = _rows(directory, "coarse"), _rows(directory, "fine")
    best = sorted((t for t in coarse if t["params"]["x"] <= 0.6), key=lambda t: -t["value"])[:2]
    seeded = carried(fine)
    assert [t["params"] for t in seeded] == [t["params"] for t in best]
    assert all("experiment.coarse trial" in t["message"] for t in seeded)
    # Ordering: fine's own trials started after coarse's last trial ended.
    ended = max(t["finished"] for t in coarse)
    own = [t for t in fine if not t["message"]]
    assert len(own) == 3 and all(t["started"] >= ended for t in own)

    # Seeded once: applying again changes nothing.
    again = run_cli(directory, "plan")
    assert "No changes" in again.out, again.out


def test_warm_start_mistakes_are_located(tmp_path: Path) -> None:
    directory = setup(tmp_path, two(coarse_extra="warm_start {\n    from = experiment.fine\n  }"))
    result = run_cli(directory, "plan")
    assert result.code == 1
    assert "Error: Cycle in warm_start" in result.err
    assert 'on main.hcl line 11, in experiment "coarse"' in result.err, result.err
    assert "experiment.coarse -> experiment.fine -> experiment.coarse" in result.err
    assert result.err.count("Cycle in warm_start") == 1
    assert "Traceback" not in result.err

    (directory / "main.hcl").write_text(two(source="corse"))
    result = run_cli(directory, "validate")
    assert result.code == 1
    assert "Reference to undeclared experiment" in result.err
    assert 'Did you mean "coarse"?' in result.err and "line 31" in result.err, result.err

    (directory / "main.hcl").write_text(two(source="fine"))
    result = run_cli(directory, "validate")
    assert "experiment.fine -> experiment.fine" in result.err, result.err

    text = two().replace("top  = 2", "top  = 0")
    (directory / "main.hcl").write_text(text)
    result = run_cli(directory, "validate")
    assert result.code == 1 and "top must be at least 1, got 0" in result.err, result.err

    text = two().replace("max_trials = 5", "max_trials = 5\n  warm_start = true")
    (directory / "main.hcl").write_text(text)
    result = run_cli(directory, "validate")
    assert result.code == 1 and "Conflicting warm_start" in result.err, result.err
    assert "line 30" in result.err, result.err

    text = two().replace("from = experiment.coarse", 'from = "coarse"')
    (directory / "main.hcl").write_text(text)
    result = run_cli(directory, "validate")
    assert result.code == 1 and "Invalid warm_start source" in result.err, result.err


def test_a_seeded_experiment_waits_while_its_source_runs(tmp_path: Path) -> None:
    slow = two().replace("x=${param.x} steps=1", "x=${param.x} steps=1 sleep=20", 1)
    directory = setup(tmp_path, slow)
    result = run_cli(directory, "apply", "--auto-approve", "--once")
    assert result.code == 0, result.text
    assert "experiment.fine waits for experiment.coarse to finish." in result.out, result.out
    assert _rows(directory, "fine") == []  # not seeded, nothing asked
    plan = run_cli(directory, "plan")
    assert "waits for experiment.coarse to finish" in plan.out, plan.out
    assert run_cli(directory, "destroy", "--auto-approve").code == 0


def test_warm_start_is_refused_with_pbt_and_with_several_objectives(tmp_path: Path) -> None:
    pbt = """
experiment "p" {
  algorithm "pbt" {
    population = 2
  }
  objective {
    metric = "acc"
  }
  max_trials = 4
  warm_start = true
  param "lr" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "echo"
  }
}
"""
    several = pbt.replace('algorithm "pbt" {\n    population = 2\n  }', 'algorithm "random" {}')
    several = several.replace(
        'metric = "acc"', 'metrics    = ["acc", "ms"]\n    directions = ["maximize", "minimize"]'
    )
    for text, why in ((pbt, "PBT's members start from checkpoints"), (several, "has several")):
        directory = write(tmp_path / why[:3], {"main.hcl": text})
        result = run_cli(directory, "validate")
        assert result.code == 1, result.text
        assert "Error: Invalid warm_start" in result.err and why in result.err, result.err
        assert 'in experiment "p":' in result.err and "warm_start = true\n" in result.err
        assert "Traceback" not in result.text
