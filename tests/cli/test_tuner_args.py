"""Tuner arguments from the command line: NNI's and PAI's names are accepted where Optuna
has the setting, and anything else is a located error listing the known settings."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_apply import apply, config, setup, trials
from tests.conftest import run_cli

TPE = """algorithm "tpe" {
    seed              = 7
    n_startup_trials  = 2
    gamma             = 0.25
    prior_weight      = 1.0
    linear_forgetting = 25
    n_ei_candidates   = 12
    constant_liar     = true
  }"""


def test_tpe_with_nnis_arguments_applies_quietly(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(max_trials=4, concurrent=2, algorithm=TPE))
    result = apply(directory)
    assert result.code == 0, result.text
    assert "Warning" not in result.err and "deprecated" not in result.text, result.err
    assert [t["status"] for t in trials(directory)] == ["complete"] * 4


def test_unknown_tuner_arguments_are_located_and_list_the_known_ones(tmp_path: Path) -> None:
    algorithm = (
        'algorithm "tpe" {\n    seed = 7\n    n_startup_jobs = 20\n'
        '    optimize_mode = "maximize"\n  }'
    )
    directory = setup(tmp_path, config(algorithm=algorithm))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    text = result.text
    assert "Traceback" not in text
    known = (
        "Known settings: seed, n_startup_trials, n_ei_candidates, multivariate, "
        "constant_liar, gamma, prior_weight, linear_forgetting."
    )
    assert (
        '"n_startup_jobs" is not a setting of the "tpe" algorithm. NNI\'s n_startup_jobs is '
        "n_startup_trials here. " + known
    ) in text
    assert (
        '"optimize_mode" is not a setting of the "tpe" algorithm. The direction is the '
        "objective's: set objective { direction }. " + known
    ) in text
    assert text.count('on main.hcl line 2, in experiment "demo"') == 2, text
