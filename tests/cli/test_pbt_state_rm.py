"""PBT after `state rm experiment.X.trial[N]`: the next apply runs the forgotten member of
that round again, decided as the first time, and then ends (it must not wait forever for a
slot no round has left)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_apply import trials
from tests.cli.test_pbt import TRIAL, config
from tests.conftest import run_cli, write


def slots(records: list[dict]) -> list[tuple[int, int]]:
    return sorted((t["pbt_round"], t["pbt_member"]) for t in records)


def test_state_rm_of_a_member_runs_it_again_and_ends(tmp_path: Path) -> None:
    cfg = config(population=2, max_trials=6)
    directory = write(tmp_path / "cfg", {"main.hcl": cfg, "trial.py": TRIAL})
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    before = {(t["pbt_round"], t["pbt_member"]): t for t in trials(directory)}
    # Forget member 0 of round 0 and member 1 of round 1: earlier rounds than the last.
    forgotten = [before[(0, 0)]["number"], before[(1, 1)]["number"]]
    for number in forgotten:
        result = run_cli(directory, "state", "rm", f"experiment.demo.trial[{number}]")
        assert result.code == 0, result.text
    result = run_cli(directory, "apply", "--auto-approve", timeout=30)
    assert result.code == 0, result.text
    records = trials(directory)
    assert slots(records) == [(r, m) for r in range(3) for m in range(2)], records
    assert all(t["status"] == "complete" for t in records), records
    again = {(t["pbt_round"], t["pbt_member"]): t for t in records if t["number"] >= 6}
    assert sorted(again) == [(0, 0), (1, 1)], records
    assert again[(0, 0)]["parent_trial"] is None
    # Round 1 was decided from round 0's values as before: the same parent member.
    parent = {t["number"]: t for t in records}[again[(1, 1)]["parent_trial"]]
    old_parent = {t["number"]: t for t in before.values()}[before[(1, 1)]["parent_trial"]]
    assert (parent["pbt_round"], parent["pbt_member"]) == (0, old_parent["pbt_member"])
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out, plan.text
