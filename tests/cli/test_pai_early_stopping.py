"""`early_stopping "pai"` from the command line: a local apply stops a hopeless trial, and
bad settings are located diagnostics."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_apply import apply, config, setup, trials
from tests.conftest import run_cli


def test_pai_rule_prunes_a_hopeless_trial(tmp_path: Path) -> None:
    # Three good trials, then hopeless ones (0.3 s a step): from step 2 on, a hopeless
    # trial's best is below the others' median, so it stops long before its 8 steps.
    rule = 'early_stopping "pai" {\n    start_step = 2\n    moving_avg = true\n  }'
    directory = setup(
        tmp_path,
        config(
            max_trials=5,
            concurrent=1,
            algorithm='algorithm "random" {\n    seed = 1\n  }',
            extra=rule,
            args="steps=8 n=${trial.number} bad_from=3",
        ),
    )
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 3 + ["pruned"] * 2, records
    assert all(t["last_step"] is not None and t["last_step"] < 8 for t in records[3:])
    assert "trial 3 pruned" in result.out
    # The pruned processes were stopped, not waited for: each ended well before its 8
    # steps of 0.3 s would have (the trial's own time, not apply's, which load stretches).
    assert all(t["finished_at"] - t["started_at"] < 8 * 0.3 for t in records[3:]), records


def test_pai_patience_stops_a_trial_that_stopped_improving(tmp_path: Path) -> None:
    # Trial 0 has nobody to compare with: only patience can stop it. Its score falls at
    # every step. Trial 1 rises, above trial 0 throughout, and completes.
    trial = (
        "import sys, time\n"
        "n = int(sys.argv[1])\n"
        "for step in range(1, 9):\n"
        "    time.sleep(0.2)\n"
        "    print(f'acc={1 - step / 10 if n == 0 else 0.9 + step / 100}', flush=True)\n"
    )
    hcl = config(
        max_trials=2,
        concurrent=1,
        extra='early_stopping "pai" {\n    patience = 2\n  }',
    ).replace(
        "python3 trial.py id=${trial.id} x=${param.x} steps=1", "python3 falling.py ${trial.number}"
    )
    directory = setup(tmp_path, hcl)
    (directory / "falling.py").write_text(trial)
    result = apply(directory)
    assert result.code == 0, result.text
    first, second = trials(directory)
    assert first["status"] == "pruned", first
    assert first["last_step"] == 3, first  # steps 2 and 3 are worse than step 1
    assert second["status"] == "complete", second


def test_bad_pai_settings_are_located_diagnostics(tmp_path: Path) -> None:
    rule = (
        'early_stopping "pai" {\n    proportion = 2\n    patience = 0\n'
        "    moving_average = true\n  }"
    )
    directory = setup(tmp_path, config(extra=rule))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    text = result.text
    assert "Invalid early stopping" in text
    assert 'proportion of early_stopping "pai" must be a number from 0 to 1, got 2.' in text
    assert 'patience of early_stopping "pai" must be a whole number of at least 1' in text
    assert '"moving_average" is not a setting of early_stopping "pai". Did you mean' in text
    assert text.count('on main.hcl line 11, in experiment "demo"') == 3, text
    assert '11:   early_stopping "pai" {' in text
