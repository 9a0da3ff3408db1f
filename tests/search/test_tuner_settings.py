"""NNI's and PAI's tuner arguments, mapped to Optuna's settings where Optuna has them."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest

from tunectl.engine.search import make_sampler
from tunectl.search.algorithms import _forgetting_weights, _good_count
from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.space import validate_space

X = [ParamSpec("x", "uniform", low=0, high=1)]


def sentences(name: str, **settings) -> list[str]:
    return [s for _, s in validate_space(Algorithm(name, tuple(settings.items())), X)]


def test_tpe_takes_nnis_tpe_args() -> None:
    settings = {"gamma": 0.25, "prior_weight": 2.0, "n_ei_candidates": 12, "linear_forgetting": 9}
    assert sentences("tpe", **settings, n_startup_trials=20, constant_liar=True) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's deprecation notices are not for users
        sampler = make_sampler(Algorithm("tpe", tuple(settings.items())), seed=1)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    params = sampler._parzen_estimator_parameters
    assert params.prior_weight == 2.0 and sampler._n_ei_candidates == 12
    # NNI's split: ceil(gamma * sqrt(n)), at most linear_forgetting.
    assert [sampler._gamma(n) for n in (1, 16, 100, 10_000)] == [1, 1, 3, 9]
    weights = params.weights(12)
    assert len(weights) == 12 and list(weights[-9:]) == [1.0] * 9 and weights[0] < 1


def test_the_split_and_weights_alone() -> None:
    assert _good_count(0.25, 25)(400) == 5 == math.ceil(0.25 * 20)
    assert list(_forgetting_weights(3)(2)) == [1.0, 1.0]


@pytest.mark.parametrize(
    ("name", "settings", "says"),
    [
        ("tpe", {"gamma": 0}, 'gamma of the "tpe" algorithm must be a number from 0 to 1'),
        ("tpe", {"prior_weight": -1}, 'prior_weight of the "tpe" algorithm must be a number'),
        ("tpe", {"n_startup_jobs": 20}, "NNI's n_startup_jobs is n_startup_trials here."),
        ("tpe", {"constant_liar_type": "best"}, "no Optuna equivalent"),
        ("tpe", {"optimize_mode": "maximize"}, "set objective { direction }"),
        ("gp", {"utility": "ucb"}, "NNI's utility has no equivalent there; remove it."),
        ("gp", {"cold_start_num": 5}, "NNI's cold_start_num is n_startup_trials here."),
        ("evolution", {"populaton_size": 5}, 'Did you mean "population_size"?'),
        ("random", {"gamma": 0.2}, "Known settings: seed."),
    ],
)
def test_unknown_settings_list_the_known_ones(name, settings, says) -> None:
    found = [s for s in sentences(name, **settings) if "not installed" not in s]
    assert len(found) == 1 and says in found[0], found
    if "is not a setting" in found[0]:
        assert "Known settings: seed" in found[0]
