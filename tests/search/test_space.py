"""Tests for tunectl.search.space and its registries: NNI semantics, checks, grids.

No optuna involved."""

from __future__ import annotations

import math
import random
import statistics
import subprocess
import sys
from decimal import Decimal

import pytest

from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.pruners import validate_pruner
from tunectl.search.space import (
    MAX_GRID,
    active_params,
    discrete_values,
    grid_combinations,
    internal_distribution,
    is_active,
    ordered_params,
    space_size,
    to_external,
    validate_param,
    validate_space,
)

N = 2000


def draw(p: ParamSpec, rng: random.Random, discrete: bool = False):
    """An internal value drawn uniformly from p's internal distribution (as a sampler would)."""
    kind, kw = internal_distribution(p, discrete)
    if kind == "categorical":
        return rng.choice(kw["choices"])
    if kind == "int" and kw["log"]:
        x = math.exp(rng.uniform(math.log(kw["low"] - 0.5), math.log(kw["high"] + 0.5)))
        return min(max(round(x), kw["low"]), kw["high"])
    if kind == "int":
        return rng.randrange(kw["low"], kw["high"] + 1, kw["step"])
    if kw["step"] is not None:
        count = round((kw["high"] - kw["low"]) / kw["step"])
        return kw["low"] + rng.randint(0, count) * kw["step"]
    if kw["log"]:
        return math.exp(rng.uniform(math.log(kw["low"]), math.log(kw["high"])))
    return rng.uniform(kw["low"], kw["high"])


def sample(p: ParamSpec, n: int = N, seed: int = 1, discrete: bool = False) -> list:
    rng = random.Random(seed)
    return [to_external(p, draw(p, rng, discrete)) for _ in range(n)]


def is_multiple(x: float, q: float) -> bool:
    return Decimal(str(x)) % Decimal(str(q)) == 0


# -- NNI semantics ------------------------------------------------------------------------


def test_choice_returns_the_values_themselves():
    p = ParamSpec("c", "choice", values=("sgd", 3, 2.5, True, None))
    values = sample(p)
    assert {type(v) for v in values} == {str, int, float, bool, type(None)}
    assert {repr(v) for v in values} == {repr(v) for v in p.values}


def test_randint_excludes_high():
    values = sample(ParamSpec("r", "randint", low=1, high=6))
    assert all(type(v) is int for v in values)
    assert set(values) == {1, 2, 3, 4, 5}


def test_uniform_stays_in_range():
    values = sample(ParamSpec("u", "uniform", low=-2.5, high=4))
    assert all(isinstance(v, float) and -2.5 <= v <= 4 for v in values)
    assert statistics.mean(values) == pytest.approx(0.75, abs=0.2)


def test_quniform_quantizes_and_clips():
    p = ParamSpec("q", "quniform", low=0.04, high=0.96, q=0.1)
    values = sample(p)
    assert all(0.04 <= v <= 0.96 for v in values)
    assert all(is_multiple(v, 0.1) or v in (0.04, 0.96) for v in values)
    # round(u/q) is 0 below 0.05 and 10 above 0.95: clipped to the bounds
    assert 0.04 in values and 0.96 in values and 0.0 not in values and 1.0 not in values
    # clean decimals, never 0.30000000000000004
    assert all(len(repr(v)) <= 4 for v in values)
    assert 0.3 in values


def test_quniform_keeps_integers():
    values = sample(ParamSpec("bs", "quniform", low=16, high=256, q=16))
    assert all(type(v) is int and v % 16 == 0 and 16 <= v <= 256 for v in values)
    assert set(values) == set(range(16, 257, 16))


def test_loguniform_is_log_distributed():
    values = sample(ParamSpec("lr", "loguniform", low=1e-4, high=1))
    assert all(1e-4 <= v <= 1 for v in values)
    assert statistics.median(math.log10(v) for v in values) == pytest.approx(-2, abs=0.2)


def test_qloguniform_quantizes_and_clips():
    values = sample(ParamSpec("h", "qloguniform", low=2, high=1000, q=5))
    assert all(type(v) is int and 2 <= v <= 1000 for v in values)
    assert all(v % 5 == 0 or v == 2 for v in values)
    # log-distributed: far more small values than large ones
    assert sum(v < 100 for v in values) > 1.5 * sum(v >= 100 for v in values)


def test_normal_mean_and_std():
    values = sample(ParamSpec("n", "normal", mu=10, sigma=2), seed=7)
    assert statistics.mean(values) == pytest.approx(10, abs=0.2)
    assert statistics.stdev(values) == pytest.approx(2, abs=0.2)
    assert all(math.isfinite(v) for v in values)


def test_qnormal_quantizes():
    values = sample(ParamSpec("n", "qnormal", mu=0, sigma=5, q=0.5), seed=7)
    assert all(is_multiple(v, 0.5) for v in values)
    assert statistics.mean(values) == pytest.approx(0, abs=0.5)
    assert statistics.stdev(values) == pytest.approx(5, abs=0.5)


def test_lognormal_is_exp_of_normal():
    values = sample(ParamSpec("n", "lognormal", mu=1, sigma=0.5), seed=7)
    assert all(v > 0 for v in values)
    logs = [math.log(v) for v in values]
    assert statistics.mean(logs) == pytest.approx(1, abs=0.1)
    assert statistics.stdev(logs) == pytest.approx(0.5, abs=0.1)


def test_qlognormal_quantizes_to_integers():
    values = sample(ParamSpec("n", "qlognormal", mu=3, sigma=0.5, q=2), seed=7)
    assert all(type(v) is int and v % 2 == 0 and v >= 0 for v in values)
    assert statistics.median(values) == pytest.approx(math.exp(3), rel=0.15)


def test_int_inclusive_with_step():
    values = sample(ParamSpec("i", "int", low=0, high=10, step=2))
    assert set(values) == {0, 2, 4, 6, 8, 10}
    assert all(type(v) is int for v in values)


def test_int_step_not_dividing_the_range_drops_the_top():
    kind, kw = internal_distribution(ParamSpec("i", "int", low=0, high=9, step=2))
    assert (kind, kw["high"]) == ("int", 8)


def test_int_log():
    values = sample(ParamSpec("i", "int", low=1, high=1000, log=True))
    assert all(type(v) is int and 1 <= v <= 1000 for v in values)
    assert statistics.median(values) < 100


def test_float_with_step_is_clean():
    values = sample(ParamSpec("f", "float", low=0, high=1, step=0.1))
    assert set(values) == {k / 10 for k in range(11)}
    assert all(len(repr(v)) <= 3 for v in values)


def test_float_log():
    values = sample(ParamSpec("f", "float", low=1e-3, high=10, log=True))
    assert all(1e-3 <= v <= 10 for v in values)
    assert statistics.median(math.log10(v) for v in values) == pytest.approx(-1, abs=0.2)


def test_discrete_internal_values_map_to_themselves():
    for p in (
        ParamSpec("q", "quniform", low=0.05, high=1, q=0.1),
        ParamSpec("q", "qloguniform", low=1, high=100, q=7),
        ParamSpec("q", "quniform", low=16, high=256, q=16),
    ):
        kind, kw = internal_distribution(p, discrete=True)
        assert kind == "categorical"
        assert [to_external(p, v) for v in kw["choices"]] == list(kw["choices"])
        assert set(sample(p, discrete=True)) == set(kw["choices"])
        # every value the continuous sampling can produce is in the grid
        assert set(sample(p)) <= set(kw["choices"])


# -- conditions ---------------------------------------------------------------------------

OPT = ParamSpec("optimizer", "choice", values=("sgd", "adam"))
MOMENTUM = ParamSpec("momentum", "quniform", low=0.5, high=0.9, q=0.1, when=(("optimizer", "sgd"),))
BETA = ParamSpec("beta", "choice", values=(0.9, 0.99), when=(("optimizer", "adam"),))
LR = ParamSpec("lr", "choice", values=(0.1, 0.01, 0.001))


def test_is_active_and_active_params():
    assert is_active(MOMENTUM, {"optimizer": "sgd"})
    assert not is_active(MOMENTUM, {"optimizer": "adam"})
    assert not is_active(MOMENTUM, {})
    assert [p.name for p in active_params([OPT, MOMENTUM, BETA], {"optimizer": "adam"})] == [
        "optimizer",
        "beta",
    ]


def test_is_active_keeps_booleans_apart_from_numbers():
    p = ParamSpec("x", "uniform", low=0, high=1, when=(("flag", True),))
    assert is_active(p, {"flag": True})
    assert not is_active(p, {"flag": 1})


def test_ordered_params_puts_controllers_first():
    order = ordered_params([MOMENTUM, LR, OPT])
    assert [p.name for p in order] == ["lr", "optimizer", "momentum"]


# -- grids --------------------------------------------------------------------------------


def test_space_size_of_a_product():
    r = ParamSpec("r", "randint", low=1, high=5)
    assert space_size(Algorithm("grid"), [LR, r]) == 12
    assert space_size(Algorithm("bruteforce"), [LR, r]) == 12
    assert space_size(Algorithm("tpe"), [LR, r]) is None


def test_space_size_counts_only_existing_branches():
    params = [LR, OPT, MOMENTUM, BETA]
    # sgd: 5 momentum values; adam: 2 betas; times 3 learning rates
    assert space_size(Algorithm("grid"), params) == 3 * (5 + 2)
    combos = grid_combinations(params)
    assert len(combos) == 21
    assert len({tuple(sorted(c.items())) for c in combos}) == 21
    for combo in combos:
        optimizer = OPT.values[combo["optimizer"]]
        assert ("momentum" in combo) == (optimizer == "sgd")
        assert ("beta" in combo) == (optimizer == "adam")


def test_space_size_with_nested_conditions():
    layers = ParamSpec("layers", "randint", low=1, high=4, when=(("optimizer", "sgd"),))
    dropout = ParamSpec("dropout", "float", low=0, high=0.5, step=0.25, when=(("layers", 2),))
    params = [OPT, layers, dropout]
    # adam: 1; sgd: layers 1 and 3 -> 1 each, layers 2 -> 3 dropouts
    assert space_size(Algorithm("grid"), params) == 1 + 1 + 1 + 3
    assert len(grid_combinations(params)) == 6


def test_space_size_is_none_for_continuous():
    assert space_size(Algorithm("grid"), [ParamSpec("u", "uniform", low=0, high=1)]) is None


def test_discrete_values():
    assert discrete_values(ParamSpec("q", "quniform", low=0, high=1, q=0.25)) == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert discrete_values(ParamSpec("q", "quniform", low=1, high=3, q=1)) == [1, 2, 3]
    assert discrete_values(ParamSpec("c", "choice", values=("a", "b"))) == [0, 1]
    assert discrete_values(ParamSpec("r", "randint", low=-1, high=2)) == [-1, 0, 1]
    assert discrete_values(ParamSpec("f", "float", low=0.1, high=0.5, step=0.2)) == [
        0.1,
        0.3,
        0.5,
    ]
    assert discrete_values(ParamSpec("n", "normal", mu=0, sigma=1)) is None


# -- validate_param -----------------------------------------------------------------------

IMPOSSIBLE = [
    (ParamSpec("p", "uniform", high=1), 'type "uniform" needs low'),
    (ParamSpec("p", "quniform", low=0, high=1), 'type "quniform" needs q'),
    (ParamSpec("p", "normal", mu=0), 'type "normal" needs sigma'),
    (ParamSpec("p", "choice"), "values must list at least one value"),
    (ParamSpec("p", "choice", values=(1, 2, 1.0)), "values lists 1.0 more than once"),
    (ParamSpec("p", "choice", values=("a", ("b",))), "values may hold strings, numbers"),
    (ParamSpec("p", "choice", values=("a", {"b": 1})), "values may hold strings, numbers"),
    (ParamSpec("p", "uniform", low=1, high=1), "high (1) must be greater than low (1)"),
    (ParamSpec("p", "float", low=2, high=1), "high (1) must be greater than low (2)"),
    (ParamSpec("p", "int", low=2, high=1), "high (1) must not be less than low (2)"),
    (ParamSpec("p", "randint", low=3, high=3), "randint draws from low to high - 1"),
    (ParamSpec("p", "randint", low=1.5, high=3), "needs whole numbers: low is 1.5"),
    (ParamSpec("p", "int", low=0, high=3, step=0.5), "needs whole numbers: step is 0.5"),
    (ParamSpec("p", "loguniform", low=0, high=1), "low must be greater than 0"),
    (ParamSpec("p", "qloguniform", low=-1, high=1, q=0.1), "low must be greater than 0"),
    (ParamSpec("p", "float", low=0, high=1, log=True), "log = true needs low greater than 0"),
    (ParamSpec("p", "int", low=0, high=10, log=True), "log = true needs low of at least 1"),
    (ParamSpec("p", "quniform", low=0, high=1, q=0), "q must be greater than 0"),
    (ParamSpec("p", "qnormal", mu=0, sigma=1, q=-1), "q must be greater than 0"),
    (ParamSpec("p", "normal", mu=0, sigma=0), "sigma must be greater than 0"),
    (ParamSpec("p", "float", low=0, high=1, step=0), "step must be greater than 0"),
    (
        ParamSpec("p", "float", low=0.1, high=1, step=0.1, log=True),
        "step cannot be combined with log = true",
    ),
    (
        ParamSpec("p", "int", low=1, high=100, step=2, log=True),
        "step cannot be combined with log = true",
    ),
    (ParamSpec("p", "uniform", low=0, high=1, q=0.1), 'or use type "quniform"'),
    (ParamSpec("p", "uniform", low=0, high=1, step=0.1), 'or use type "float"'),
    (ParamSpec("p", "loguniform", low=1, high=2, log=True), 'log does not apply to type "log'),
    (ParamSpec("p", "randint", low=0, high=2, values=(1,)), 'or use type "choice"'),
    (ParamSpec("p", "choice", values=(1,), low=0), 'low does not apply to type "choice"'),
    (ParamSpec("p", "uniform", low=0, high=math.inf), "high must be a finite number"),
]


@pytest.mark.parametrize(("spec", "expected"), IMPOSSIBLE, ids=[e for _, e in IMPOSSIBLE])
def test_validate_param_explains(spec, expected):
    errors = validate_param(spec)
    assert any(expected in e for e in errors), errors
    assert all(e.endswith((".", "?")) for e in errors)


@pytest.mark.parametrize(
    "spec",
    [
        ParamSpec("p", "choice", values=("a", 1, 2.5, True, None)),
        ParamSpec("p", "randint", low=0, high=1),
        ParamSpec("p", "int", low=3, high=3),
        ParamSpec("p", "int", low=1, high=64, log=True, step=1),
        ParamSpec("p", "float", low=0, high=1, step=0.1),
        ParamSpec("p", "quniform", low=0, high=1, q=0.1),
        ParamSpec("p", "qlognormal", mu=0, sigma=1, q=1),
        ParamSpec("p", "choice", values=(1, True)),  # true is not 1
    ],
)
def test_validate_param_accepts(spec):
    assert validate_param(spec) == []


# -- validate_space -----------------------------------------------------------------------


def sentences(algorithm: Algorithm, params) -> list[str]:
    return [s for _, s in validate_space(algorithm, params)]


def test_when_names_unknown_parameter_with_suggestion():
    p = ParamSpec("m", "uniform", low=0, high=1, when=(("optimiser", "sgd"),))
    [(name, sentence)] = validate_space(Algorithm("tpe"), [OPT, p])
    assert name == "m"
    assert '"optimiser", which is not a parameter' in sentence
    assert 'Did you mean "optimizer"?' in sentence


def test_when_value_never_taken():
    p = ParamSpec("m", "uniform", low=0, high=1, when=(("optimizer", "sdg"),))
    [sentence] = sentences(Algorithm("tpe"), [OPT, p])
    assert 'requires optimizer = "sdg"' in sentence
    assert '"sgd", "adam"' in sentence


def test_when_on_a_continuous_parameter():
    lr = ParamSpec("lr", "uniform", low=0, high=1)
    p = ParamSpec("m", "uniform", low=0, high=1, when=(("lr", 0.5),))
    [sentence] = sentences(Algorithm("tpe"), [lr, p])
    assert "can only test a choice, randint or int parameter" in sentence


def test_when_on_an_integer_value_out_of_range():
    r = ParamSpec("r", "randint", low=1, high=4)
    p = ParamSpec("m", "uniform", low=0, high=1, when=(("r", 4),))
    [sentence] = sentences(Algorithm("tpe"), [r, p])
    assert "whole numbers from 1 to 3" in sentence
    ok = ParamSpec("m", "uniform", low=0, high=1, when=(("r", 3),))
    assert sentences(Algorithm("tpe"), [r, ok]) == []


def test_when_cycle_and_self_reference():
    a = ParamSpec("a", "choice", values=(1, 2), when=(("b", 1),))
    b = ParamSpec("b", "choice", values=(1, 2), when=(("a", 1),))
    assert any("form a cycle: a -> b -> a" in s for s in sentences(Algorithm("tpe"), [a, b]))
    c = ParamSpec("c", "choice", values=(1, 2), when=(("c", 1),))
    assert any("cannot name the parameter itself" in s for s in sentences(Algorithm("tpe"), [c]))


@pytest.mark.parametrize("algorithm", ["grid", "bruteforce"])
def test_finite_algorithms_need_finite_spaces(algorithm):
    params = [LR, ParamSpec("u", "loguniform", low=1e-3, high=1)]
    [(name, sentence)] = validate_space(Algorithm(algorithm), params)
    assert name == "u"
    assert "infinitely many values" in sentence
    assert 'use type "qloguniform" with q' in sentence
    floats = [ParamSpec("f", "float", low=0, high=1)]
    assert "add step" in sentences(Algorithm(algorithm), floats)[0]
    normal = [ParamSpec("n", "qnormal", mu=0, sigma=1, q=1)]
    assert "infinitely many values" in sentences(Algorithm(algorithm), normal)[0]
    fine = [LR, ParamSpec("f", "float", low=0, high=1, step=0.5), OPT, MOMENTUM]
    assert sentences(Algorithm(algorithm), fine) == []


def test_grid_too_large():
    params = [ParamSpec(f"p{i}", "randint", low=0, high=1000) for i in range(3)]
    [sentence] = sentences(Algorithm("grid"), params)
    assert f"{MAX_GRID:,}" in sentence and "1,000,000,000 combinations" in sentence


def test_gp_needs_torch(monkeypatch):
    # None in sys.modules makes `import torch` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "torch", None)
    [sentence] = sentences(Algorithm("gp"), [LR])
    assert "needs PyTorch" in sentence and "pip install 'tunectl[gp]'" in sentence


def test_cmaes_with_only_choices():
    [sentence] = sentences(Algorithm("cmaes"), [LR, OPT])
    assert "CMA-ES cannot search choice parameters" in sentence
    assert sentences(Algorithm("cmaes"), [LR, ParamSpec("u", "uniform", low=0, high=1)]) == []


def test_unknown_algorithm_setting_with_suggestion():
    [sentence] = sentences(Algorithm("tpe", (("n_startup", 3),)), [LR])
    assert '"n_startup" is not a setting of the "tpe" algorithm' in sentence
    assert 'Did you mean "n_startup_trials"?' in sentence
    [sentence] = sentences(Algorithm("random", (("multivariate", True),)), [LR])
    assert "Known settings: seed." in sentence


@pytest.mark.parametrize(
    ("algorithm", "settings", "expected"),
    [
        ("tpe", (("seed", -1),), "seed of the"),
        ("tpe", (("multivariate", "yes"),), "must be true or false"),
        ("qmc", (("qmc_type", "lattice"),), 'one of "sobol", "halton"'),
        ("evolution", (("mutation_prob", 2),), "a number from 0 to 1"),
        ("cmaes", (("sigma0", 0),), "a number greater than 0"),
        ("cmaes", (("popsize", 2),), "at least 4"),
    ],
)
def test_bad_algorithm_setting_values(algorithm, settings, expected):
    [sentence] = sentences(
        Algorithm(algorithm, settings), [ParamSpec("u", "uniform", low=0, high=1)]
    )
    assert expected in sentence


def test_known_settings_pass():
    settings = {
        "tpe": (("seed", 1), ("n_startup_trials", 5), ("multivariate", True)),
        "cmaes": (("sigma0", 0.5), ("popsize", 8), ("n_startup_trials", 2)),
        "evolution": (("population_size", 10), ("mutation_prob", 0.1), ("crossover_prob", 0.8)),
        "qmc": (("qmc_type", "halton"), ("scramble", True), ("seed", 3)),
    }
    for name, values in settings.items():
        params = [ParamSpec("u", "uniform", low=0, high=1)]
        assert sentences(Algorithm(name, values), params) == []


def test_invalid_params_are_left_to_validate_param():
    bad = ParamSpec("u", "loguniform", low=0, high=1)
    assert validate_space(Algorithm("grid"), [bad]) == []


# -- validate_pruner ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("es", "expected"),
    [
        (EarlyStopping("median", (("start_stp", 2),)), 'Did you mean "start_step"?'),
        (EarlyStopping("median", (("start_step", -1),)), "at least 0"),
        (EarlyStopping("percentile"), "needs percentile"),
        (EarlyStopping("percentile", (("percentile", 150),)), "from 0 to 100"),
        (EarlyStopping("threshold"), "needs lower, upper or both"),
        (EarlyStopping("threshold", (("lower", 2), ("upper", 1))), "must not be greater"),
        (EarlyStopping("hyperband", (("reduction_factor", 1),)), "at least 2"),
        (EarlyStopping("hyperband", (("min_resource", 5), ("max_resource", 3))), "less than"),
        (EarlyStopping("successive_halving", (("min_resource", "x"),)), '"auto" or a whole'),
        (EarlyStopping("none", (("start_step", 1),)), "Known settings: none."),
    ],
)
def test_validate_pruner_explains(es, expected):
    errors = validate_pruner(es)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    "es",
    [
        EarlyStopping(),
        EarlyStopping("median", (("start_step", 2), ("n_startup_trials", 3), ("min_trials", 2))),
        EarlyStopping("percentile", (("percentile", 25.0),)),
        EarlyStopping("hyperband", (("min_resource", 1), ("max_resource", 27))),
        EarlyStopping("successive_halving", (("min_resource", "auto"),)),
        EarlyStopping("threshold", (("lower", 0.1),)),
    ],
)
def test_validate_pruner_accepts(es):
    assert validate_pruner(es) == []


def test_space_and_objective_do_not_import_optuna():
    code = (
        "import sys, tunectl.engine, tunectl.search.space, tunectl.engine.objective; "
        "assert 'optuna' not in sys.modules, 'optuna imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_search_layer_is_pure():
    """tunectl.search sits below config and engine and imports no Optuna (nor what Optuna's
    samplers import) until a registry entry builds a sampler or pruner."""
    code = (
        "import sys, pkgutil, importlib, tunectl.search as s\n"
        "for m in pkgutil.iter_modules(s.__path__):\n"
        "    importlib.import_module(f'tunectl.search.{m.name}')\n"
        "third = ('optuna', 'numpy', 'scipy', 'cmaes')\n"
        "layers = ('tunectl.config', 'tunectl.engine', 'tunectl.hcl')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in third or m.startswith(layers)]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
