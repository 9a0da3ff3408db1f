"""One trial at a time, from the command line: `apply --replace experiment.X.trial[N]`
runs one ended trial again (same parameters, a new attempt, its old result replaced);
`state rm experiment.X.trial[N]` forgets one (apply runs another in its place). Both
are shown by plan; bad addresses are located diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_apply import TRIAL, config
from tests.conftest import run_cli, write

# Each trial appends its id to launches.log: which trials ran, in order, is seen there.
HCL = config(max_trials=3, concurrent=1, args="steps=2 n=${trial.number}")


def setup(tmp_path: Path, hcl: str = HCL) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def trials_json(directory: Path) -> dict:
    result = run_cli(directory, "trials", "experiment.demo", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def launches(directory: Path) -> list[str]:
    return (directory / "launches.log").read_text().split()


def test_replace_one_trial_runs_exactly_it_again(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    first = run_cli(directory, "apply", "--auto-approve")
    assert first.code == 0, first.text
    before = {t["number"]: t for t in trials_json(directory)["trials"]}
    assert sorted(before) == [0, 1, 2]
    assert launches(directory) == [before[n]["id"] for n in (0, 1, 2)]

    plan = run_cli(directory, "plan", "--replace", "experiment.demo.trial[1]")
    assert plan.code == 0, plan.text
    assert "# experiment.demo has pending trials" in plan.out, plan.out
    assert "will run trial 1 again (a new attempt with the same parameters) (2 done)" in plan.out
    planned = run_cli(directory, "plan", "--replace=experiment.demo.trial[1]", "--json")
    intent = json.loads(planned.out)["changes"][0]["intent"]
    assert intent["rerun"] == [1] and intent["running"] == 1 and intent["done"] == 2

    result = run_cli(directory, "apply", "--auto-approve", "--replace", "experiment.demo.trial[1]")
    assert result.code == 0, result.text
    assert "trial 1 replaced (attempt 2)" in result.out, result.out
    after = {t["number"]: t for t in trials_json(directory)["trials"]}
    assert sorted(after) == [0, 1, 2]  # no new trial: trial 1 ran again
    assert launches(directory) == [before[n]["id"] for n in (0, 1, 2, 1)]
    assert after[1]["params"] == before[1]["params"]
    assert after[1]["attempts"] == 2 and after[1]["state"] == "complete"
    assert after[1]["value"] == before[1]["value"]  # the same parameters, the same score
    assert len(after[1]["intermediate_values"]) == 2  # the new attempt's curve only
    assert after[1]["started"] > before[2]["finished"]
    for n in (0, 2):
        assert after[n] == before[n]
    # Nothing left to do afterwards.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text


def test_replace_of_a_bad_trial_address_is_refused(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    for address, words in (
        ("experiment.demo.trial[7]", "--replace experiment.demo.trial[7]: it is not in the state."),
        ("experiment.nope.trial[0]", "no experiment with that address"),
        ("experiment.demo.trial[01]", "has leading zeros"),
        ("experiment.demo.trail[1]", "only .trial[N] may follow"),
    ):
        for command in ("plan", "apply"):
            flags = ["--auto-approve"] if command == "apply" else []
            result = run_cli(directory, command, *flags, "--replace", address)
            assert result.code == 1, (address, result.text)
            assert "Invalid --replace address" in result.text, result.text
            assert words in result.text, result.text
            assert "Traceback" not in result.text
    assert len(launches(directory)) == 3  # nothing ran


def test_state_rm_forgets_one_trial(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    before = {t["number"]: t for t in trials_json(directory)["trials"]}

    removed = run_cli(directory, "state", "rm", "experiment.demo.trial[2]")
    assert removed.code == 0, removed.text
    assert "Removed experiment.demo.trial[2]" in removed.out
    assert any(".backup" in p.name for p in directory.rglob("*")), "no backup made"
    left = trials_json(directory)["trials"]
    assert sorted(t["number"] for t in left) == [0, 1]
    assert before[2]["id"] not in {t["id"] for t in left}
    shown = run_cli(directory, "state", "show", "experiment.demo.trial[2]")
    assert shown.code == 1 and "is not in the state" in shown.err
    # The report and the export no longer have it.
    report = run_cli(directory, "report", "experiment.demo", "-o", str(tmp_path / "r.html"))
    assert report.code == 0, report.text
    html = (tmp_path / "r.html").read_text()
    assert "experiment.demo (succeeded): 2 trials" in html
    storage = f"sqlite:///{tmp_path / 's.db'}"
    export = run_cli(directory, "export", "experiment.demo", "--storage", storage)
    assert export.code == 0, export.text
    import optuna

    study = optuna.load_study(study_name="demo", storage=storage)
    assert [t.number for t in study.trials] == [0, 1]

    # The plan: one more trial to reach max_trials; apply runs it, under a new number.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "will run up to 1 trials" in plan.out and "(2 done, 0 running)" in plan.out
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    numbers = sorted(t["number"] for t in trials_json(directory)["trials"])
    assert numbers == [0, 1, 3]  # number 2 is never given again (its task key neither)
    assert len(launches(directory)) == 4


def test_state_rm_of_a_trial_edges(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=1, concurrent=1, args="steps=1 sleep=30"))
    for address, summary in (
        ("experiment.demo.trial[0]", "No such address"),  # no state yet / no such trial
        ("experiment.demo.trial[x]", "Invalid address"),
        ("demo.trial[0]", "Invalid address"),
    ):
        result = run_cli(directory, "state", "rm", address)
        assert result.code == 1, result.text
        assert summary in result.err or "No state" in result.err, result.text
        assert "Traceback" not in result.err
    # A running trial is refused: forgetting it would leave its task running unseen.
    started = run_cli(directory, "apply", "--auto-approve", "--once")
    assert started.code == 0, started.text
    refused = run_cli(directory, "state", "rm", "experiment.demo.trial[0]")
    assert refused.code == 1, refused.text
    assert "Trial is running" in refused.err and "Nothing was changed" in refused.err
    missing = run_cli(directory, "state", "rm", "experiment.demo.trial[5]")
    assert missing.code == 1 and "No such address" in missing.err
    assert run_cli(directory, "destroy", "--auto-approve").code == 0
