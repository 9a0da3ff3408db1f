"""Tests for tunectl.engine.search: the Optuna bridge, its determinism and pruning."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import pytest

from tunectl.config.model import Experiment, Objective, TrialSpec
from tunectl.engine.search import PastTrial, SearchEngine
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.space import space_size, to_external

NUMERIC = (
    ParamSpec("x", "uniform", low=-5, high=5),
    ParamSpec("lr", "loguniform", low=1e-4, high=1),
)
FINITE = (
    ParamSpec("x", "quniform", low=-1, high=1, q=0.5),
    ParamSpec("k", "choice", values=("a", "b", "c")),
)
SETTINGS = {
    "tpe": (("n_startup_trials", 4),),
    "cmaes": (("popsize", 4),),
    "evolution": (("population_size", 4),),
    "qmc": (("scramble", True),),
}


def experiment(
    algorithm: str,
    params: Sequence[ParamSpec] | None = None,
    seed: int | None = 7,
    early_stopping: EarlyStopping | None = None,
    direction: str = "minimize",
) -> Experiment:
    settings = SETTINGS.get(algorithm, ())
    if seed is not None:
        settings = (("seed", seed), *settings)
    if params is None:
        params = FINITE if algorithm in ("grid", "bruteforce") else NUMERIC
    return Experiment(
        name="exp",
        algorithm=Algorithm(algorithm, settings),
        objective=Objective(direction, metric="loss"),
        params=tuple(params),
        trial=TrialSpec("local", ()),
        early_stopping=early_stopping or EarlyStopping(),
    )


def needs(algorithm: str) -> None:
    if algorithm == "gp":
        pytest.importorskip("torch")
    if algorithm in ("gp", "qmc"):
        pytest.importorskip("scipy")  # the gp and qmc extras
    if algorithm == "cmaes":
        pytest.importorskip("cmaes")  # the cmaes extra


def loss(params: dict) -> float:
    total = 0.0
    for value in params.values():
        total += (len(value) if isinstance(value, str) else value - 0.3) ** 2
    return total


def stored(history: list[PastTrial]) -> list[PastTrial]:
    """History as the state returns it: through JSON."""
    rows = json.loads(json.dumps([t.__dict__ for t in history]))
    return [PastTrial(**row) for row in rows]


# -- every algorithm ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithm", ["tpe", "random", "grid", "gp", "cmaes", "evolution", "qmc", "bruteforce"]
)
def test_each_algorithm_asks_and_tells(algorithm):
    needs(algorithm)
    exp = experiment(algorithm)
    engine = SearchEngine(exp, [])
    for n in range(8):
        s = engine.ask(n)
        assert s.number == n
        assert set(s.params) == {p.name for p in exp.params}
        for p in exp.params:
            assert s.params[p.name] == to_external(p, s.internal[p.name])
        json.dumps([s.params, s.internal, s.system_attrs])  # storable
        engine.tell(n, "complete", loss(s.params))
    assert not engine.exhausted() or algorithm in ("grid", "bruteforce")


def test_every_type_through_optuna():
    params = (
        ParamSpec("c", "choice", values=("a", 1, None)),
        ParamSpec("r", "randint", low=1, high=4),
        ParamSpec("u", "uniform", low=0, high=1),
        ParamSpec("qu", "quniform", low=16, high=128, q=16),
        ParamSpec("lu", "loguniform", low=1e-3, high=1),
        ParamSpec("qlu", "qloguniform", low=0.01, high=1, q=0.01),
        ParamSpec("n", "normal", mu=5, sigma=1),
        ParamSpec("qn", "qnormal", mu=0, sigma=3, q=1),
        ParamSpec("ln", "lognormal", mu=0, sigma=1),
        ParamSpec("qln", "qlognormal", mu=2, sigma=1, q=0.5),
        ParamSpec("i", "int", low=1, high=1024, log=True),
        ParamSpec("f", "float", low=0, high=1, step=0.05),
    )
    engine = SearchEngine(experiment("random", params), [])
    seen: dict[str, set] = {p.name: set() for p in params}
    for n in range(300):
        s = engine.ask(n)
        for p in params:
            seen[p.name].add(s.params[p.name])
        engine.tell(n, "complete", 0.0)
    assert {repr(v) for v in seen["c"]} == {"'a'", "1", "None"}
    assert seen["r"] == {1, 2, 3}
    assert all(v % 16 == 0 and type(v) is int for v in seen["qu"])
    assert all(len(repr(v)) <= 4 and 0.01 <= v <= 1 for v in seen["qlu"])
    assert all(type(v) is int for v in seen["qn"])
    assert all(v > 0 for v in seen["ln"])
    assert all(1 <= v <= 1024 and type(v) is int for v in seen["i"])
    assert all(len(repr(v)) <= 4 for v in seen["f"])


# -- conditions ---------------------------------------------------------------------------

CONDITIONAL = (
    ParamSpec("optimizer", "choice", values=("sgd", "adam")),
    ParamSpec("momentum", "uniform", low=0.5, high=0.99, when=(("optimizer", "sgd"),)),
    ParamSpec("beta", "choice", values=(0.9, 0.99), when=(("optimizer", "adam"),)),
    ParamSpec("lr", "loguniform", low=1e-4, high=1e-1),
)


@pytest.mark.parametrize("algorithm", ["tpe", "random", "evolution"])
def test_conditional_params_appear_only_when_active(algorithm):
    engine = SearchEngine(experiment(algorithm, CONDITIONAL), [])
    optimizers = set()
    for n in range(30):
        s = engine.ask(n)
        optimizers.add(s.params["optimizer"])
        assert ("momentum" in s.params) == (s.params["optimizer"] == "sgd")
        assert ("beta" in s.params) == (s.params["optimizer"] == "adam")
        assert s.params.keys() == s.internal.keys()
        engine.tell(n, "complete", s.params["lr"] + s.params.get("momentum", 0.5))
    assert optimizers == {"sgd", "adam"}


# -- finite spaces ------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["grid", "bruteforce"])
@pytest.mark.parametrize(
    "params", [FINITE, CONDITIONAL[:3] + (FINITE[0],)], ids=["product", "conditional"]
)
def test_finite_space_is_exhausted_without_repeats(algorithm, params):
    params = tuple(
        ParamSpec("momentum", "quniform", low=0.5, high=0.9, q=0.2, when=p.when)
        if p.name == "momentum"
        else p
        for p in params
    )
    exp = experiment(algorithm, params)
    size = space_size(exp.algorithm, exp.params)
    assert size is not None
    engine = SearchEngine(exp, [])
    combos = set()
    for n in range(size):
        assert not engine.exhausted()
        s = engine.ask(n)
        combos.add(json.dumps(s.params, sort_keys=True))
        engine.tell(n, "complete" if n % 3 else "failed", loss({"x": s.params["x"]}))
    assert len(combos) == size
    assert engine.exhausted()


def test_grid_exhaustion_survives_a_rebuild():
    exp = experiment("grid")
    size = space_size(exp.algorithm, exp.params)
    assert size == 15
    history: list[PastTrial] = []
    for n in range(6):
        engine = SearchEngine(exp, stored(history))
        s = engine.ask(n)
        engine.tell(n, "complete", 1.0)
        history.append(PastTrial(n, "complete", s.internal, 1.0, [], s.system_attrs))
    assert not SearchEngine(exp, stored(history)).exhausted()
    for n in range(6, size):
        engine = SearchEngine(exp, stored(history))
        s = engine.ask(n)
        history.append(PastTrial(n, "running", s.internal, None, [], s.system_attrs))
    assert SearchEngine(exp, stored(history)).exhausted()
    assert len({json.dumps(t.internal, sort_keys=True) for t in history}) == size


# -- determinism --------------------------------------------------------------------------


def outcome(n: int, params: dict) -> tuple[str, float | None, list[tuple[int, float]]]:
    """A trial's fate: some fail, some are pruned after reporting a curve."""
    value = loss(params)
    points = [(step, value + 1.0 / step) for step in range(1, 4)]
    if n % 5 == 4:
        return "failed", None, points[:1]
    if n % 6 == 5:
        return "pruned", points[1][1], points[:2]
    return "complete", value, points


def run(
    exp: Experiment,
    rebuild_before: Callable[[int], bool],
    rebuild_while_running: Callable[[int], bool] = lambda n: False,
    trials: int = 12,
) -> list[dict]:
    engine = SearchEngine(exp, [])
    history: list[PastTrial] = []
    sequence = []
    for n in range(trials):
        if rebuild_before(n):
            engine = SearchEngine(exp, stored(history))
        s = engine.ask(n)
        sequence.append(s.params)
        record = PastTrial(n, "running", s.internal, None, [], s.system_attrs)
        history.append(record)
        state, value, points = outcome(n, s.params)
        for step, v in points[:1]:
            engine.report(n, step, v)
            record.intermediate = [*record.intermediate, (step, v)]
        if rebuild_while_running(n):
            engine = SearchEngine(exp, stored(history))
        for step, v in points[1:]:
            engine.report(n, step, v)
            record.intermediate = [*record.intermediate, (step, v)]
        engine.tell(n, state, value)
        record.state, record.value = state, value
    return sequence


DETERMINISTIC = ["tpe", "random", "cmaes", "qmc", "evolution", "grid", "bruteforce"]


@pytest.mark.parametrize("algorithm", DETERMINISTIC)
def test_same_sequence_when_rebuilt_after_every_trial(algorithm):
    needs(algorithm)
    exp = experiment(algorithm)
    uninterrupted = run(exp, lambda n: False)
    assert len({json.dumps(p, sort_keys=True) for p in uninterrupted}) > 1
    assert run(exp, lambda n: True) == uninterrupted


@pytest.mark.parametrize("algorithm", DETERMINISTIC)
def test_same_sequence_when_rebuilt_after_trials_3_and_8(algorithm):
    needs(algorithm)
    exp = experiment(algorithm)
    assert run(exp, lambda n: n in (4, 9)) == run(exp, lambda n: False)


@pytest.mark.parametrize("algorithm", DETERMINISTIC)
def test_same_sequence_when_rebuilt_while_a_trial_runs(algorithm):
    needs(algorithm)
    exp = experiment(algorithm)
    restarted = run(exp, lambda n: False, rebuild_while_running=lambda n: n in (2, 5, 6, 10))
    assert restarted == run(exp, lambda n: False)


@pytest.mark.parametrize("algorithm", ["tpe", "cmaes", "qmc"])
def test_conditional_and_numeric_determinism(algorithm):
    needs(algorithm)
    params = (
        CONDITIONAL if algorithm == "tpe" else NUMERIC + (ParamSpec("k", "randint", low=0, high=3),)
    )
    exp = experiment(algorithm, params)
    assert run(exp, lambda n: True, trials=16) == run(exp, lambda n: False, trials=16)


def test_seed_changes_the_sequence_and_no_seed_is_random():
    assert run(experiment("tpe", seed=1), lambda n: False) != run(
        experiment("tpe", seed=2), lambda n: False
    )
    unseeded = experiment("random", seed=None)
    assert run(unseeded, lambda n: False, trials=3) != run(unseeded, lambda n: False, trials=3)


def test_cmaes_state_is_carried_in_system_attrs():
    exp = experiment("cmaes")
    engine = SearchEngine(exp, [])
    attrs = []
    for n in range(10):
        s = engine.ask(n)
        attrs.append(s.system_attrs)
        engine.tell(n, "complete", loss(s.params))
    assert any(key.startswith("cma:optimizer") for a in attrs for key in a)


# -- pruning ------------------------------------------------------------------------------


def finished(n: int, curve: list[float], value: float | None = None) -> PastTrial:
    points = [(step, v) for step, v in enumerate(curve, start=1)]
    return PastTrial(n, "complete", {"x": 0.1 * n, "lr": 0.01}, value or curve[-1], points)


MEDIAN = EarlyStopping("median", (("start_step", 2),))


def test_median_prunes_a_clearly_worse_curve_after_start_step():
    exp = experiment("tpe", early_stopping=MEDIAN, direction="maximize")
    history = [finished(n, [0.8, 0.9, 0.95]) for n in range(5)]
    engine = SearchEngine(exp, history)
    s = engine.ask(5)
    assert engine.report(5, 1, 0.1) is False  # before start_step
    assert engine.report(5, 2, 0.1) is True
    good = engine.ask(6)
    assert good.number == 6
    assert engine.report(6, 1, 0.9) is False
    assert engine.report(6, 2, 0.95) is False
    engine.tell(5, "pruned", 0.1)
    engine.tell(6, "complete", 0.95)
    assert s.params


def test_median_needs_enough_completed_history():
    exp = experiment("tpe", early_stopping=MEDIAN, direction="maximize")
    engine = SearchEngine(exp, [finished(n, [0.8, 0.9]) for n in range(2)])
    engine.ask(2)
    assert engine.report(2, 2, 0.0) is False  # n_startup_trials (5) not reached


def test_pruning_resumes_a_running_trial_after_a_rebuild():
    exp = experiment("tpe", early_stopping=MEDIAN, direction="maximize")
    history = [finished(n, [0.8, 0.9, 0.95]) for n in range(5)]
    engine = SearchEngine(exp, history)
    s = engine.ask(5)
    engine.report(5, 1, 0.1)
    running = PastTrial(5, "running", s.internal, None, [(1, 0.1)], s.system_attrs)
    rebuilt = SearchEngine(exp, stored([*history, running]))
    assert rebuilt.report(5, 2, 0.1) is True
    rebuilt.tell(5, "pruned", 0.1)
    assert rebuilt.report(5, 3, 0.1) is False  # ended: nothing to prune


@pytest.mark.parametrize(
    "es",
    [
        EarlyStopping("percentile", (("percentile", 50.0), ("start_step", 1))),
        EarlyStopping("hyperband", (("min_resource", 1), ("max_resource", 9))),
        EarlyStopping("successive_halving", (("min_resource", 1),)),
        EarlyStopping("threshold", (("lower", 0.5),)),
        EarlyStopping("none"),
    ],
    ids=lambda es: es.name,
)
def test_every_pruner_runs(es):
    exp = experiment("random", early_stopping=es, direction="maximize")
    engine = SearchEngine(exp, [finished(n, [0.8, 0.9, 0.95]) for n in range(6)])
    engine.ask(6)
    pruned = [engine.report(6, step, 0.1) for step in (1, 2, 3)]
    assert all(isinstance(p, bool) for p in pruned)
    if es.name == "threshold":
        assert pruned[0] is True
    if es.name == "none":
        assert not any(pruned)
    json.dumps(engine.system_attrs(6))


def test_tell_is_idempotent_and_ask_is_once():
    engine = SearchEngine(experiment("random"), [])
    engine.ask(0)
    engine.tell(0, "complete", 1.0)
    engine.tell(0, "complete", 2.0)
    with pytest.raises(ValueError, match="already asked"):
        engine.ask(0)
    engine.ask(1)
    engine.tell(1, "complete", math.nan)  # recorded as failed


def test_engine_package_does_not_import_search():
    import subprocess
    import sys

    code = "import sys, tunectl.engine; assert 'tunectl.engine.search' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
