"""`max_cost` with the local provider (its time costs 0), and bad values, from the CLI.
The DLC and MaxCompute cases are in their providers' tests (test_*_budget.py)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_apply import TRIAL, config
from tests.conftest import run_cli, write


def setup(tmp_path: Path, extra: str) -> Path:
    hcl = config(max_trials=2, concurrent=1, extra=extra, trial_extra='timeout = "1m"')
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def test_local_trials_cost_nothing_and_never_reach_max_cost(tmp_path: Path) -> None:
    directory = setup(tmp_path, "max_cost = 0.01")
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert "spent 0.00 of max_cost 0.01, estimated 0.00 to 0.00" in plan.out, plan.out
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert "reached max_trials" in result.out, result.out
    table = run_cli(directory, "trials", "experiment.demo")
    assert " cost " not in table.out  # all free: no column
    csv = run_cli(directory, "trials", "experiment.demo", "--csv").out.splitlines()
    assert csv[0].endswith(",cost") and all(r.endswith(",0") for r in csv[1:]), csv


def test_max_cost_must_be_a_positive_number(tmp_path: Path) -> None:
    for value, words in (("0", "max_cost must be more than zero."), ('"a lot"', "number")):
        directory = setup(tmp_path / value.strip('"').replace(" ", "_"), f"max_cost = {value}")
        result = run_cli(directory, "validate")
        assert result.code == 1, result.text
        assert words in result.err and "main.hcl line 11" in result.err, result.err
        assert "Traceback" not in result.err
