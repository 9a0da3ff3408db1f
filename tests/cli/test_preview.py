"""`tunectl plan --preview N` from the command line: the next parameter sets each
experiment's seeded sampler proposes. For random search at concurrency 1 it is exactly
what apply then runs; for TPE after some trials it is deterministic; it never writes the
state; it is shown in the human, JSON and markdown plans; a bad N is a diagnostic."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_apply import apply, config, setup, trials
from tests.conftest import run_cli

PARAMS = """param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  param "opt" {
    type   = "choice"
    values = ["adam", "sgd"]
  }"""


def hcl(algorithm: str, max_trials: int, extra: str = "") -> str:
    return config(
        max_trials=max_trials,
        concurrent=1,
        algorithm=f'algorithm "{algorithm}" {{\n    seed = 11\n  }}',
        params=PARAMS,
        extra=extra,
        args="steps=1 opt=${param.opt}",
    )


def preview(directory: Path, count: int) -> list[dict]:
    result = run_cli(directory, "plan", "--json", "--preview", str(count))
    assert result.code == 0, result.text
    (change,) = json.loads(result.out)["changes"]
    return change.get("preview", [])


def test_random_preview_is_what_apply_runs(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl("random", 3, extra='enqueue = [{ x = 0.5, opt = "sgd" }]'))
    shown = preview(directory, 5)
    assert len(shown) == 3  # no more than the plan's trials to run
    assert shown[0] == {"number": 0, "params": {"x": 0.5, "opt": "sgd"}}  # enqueued first
    plan = run_cli(directory, "plan", "--preview", "2")
    assert "next 2 parameter sets the sampler proposes:" in plan.out, plan.out
    assert "trial 0: x=0.5 opt=sgd" in plan.out
    assert apply(directory).code == 0
    assert [{"number": t["number"], "params": t["params"]} for t in trials(directory)] == shown

    # More trials on the same experiment: the preview continues from the state.
    (directory / "main.hcl").write_text(
        hcl("random", 6, extra='enqueue = [{ x = 0.5, opt = "sgd" }]')
    )
    shown = preview(directory, 3)
    assert [s["number"] for s in shown] == [3, 4, 5]
    assert apply(directory).code == 0
    ran = [{"number": t["number"], "params": t["params"]} for t in trials(directory)]
    assert ran[3:] == shown


def test_tpe_preview_is_deterministic_and_writes_nothing(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl("tpe", 4))
    assert apply(directory).code == 0
    (directory / "main.hcl").write_text(hcl("tpe", 8))
    state = directory / "state" / "tunectl.db"
    before = state.read_bytes()
    first = preview(directory, 4)
    assert [s["number"] for s in first] == [4, 5, 6, 7]
    assert preview(directory, 4) == first
    assert state.read_bytes() == before  # byte-identical: nothing was told or written
    assert len(trials(directory)) == 4

    markdown = run_cli(directory, "plan", "--markdown", "--preview", "2")
    assert markdown.code == 0, markdown.text
    assert "next 2 parameter sets the sampler proposes:" in markdown.out
    assert "trial 4: x=" in markdown.out, markdown.out


def test_a_bad_preview_count_is_a_diagnostic(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl("random", 3))
    for bad in ("0", "-2", "100000"):
        result = run_cli(directory, "plan", "--preview", bad)
        assert result.code == 1, result.text
        assert "Error: Invalid --preview" in result.err, result.err
        assert "Traceback" not in result.err
    result = run_cli(directory, "plan", "--preview", "many")
    assert result.code != 0 and "Traceback" not in result.err


def test_tpe_sets_asked_side_by_side_are_exact(tmp_path: Path) -> None:
    def tpe(max_trials: int) -> str:
        return config(
            max_trials=max_trials,
            concurrent=2,
            algorithm='algorithm "tpe" {\n    seed = 4\n    n_startup_trials = 2\n  }',
            params=PARAMS,
            args="steps=1 opt=${param.opt}",
        )

    directory = setup(tmp_path, tpe(4))
    assert apply(directory).code == 0
    (directory / "main.hcl").write_text(tpe(6))
    shown = preview(directory, 2)
    assert [s["number"] for s in shown] == [4, 5]
    assert apply(directory).code == 0
    ran = [{"number": t["number"], "params": t["params"]} for t in trials(directory)]
    assert ran[4:] == shown  # apply asks both before either result comes back
