"""Enqueued parameter sets against each parameter type, and in the engine."""

from __future__ import annotations

import pytest

from tunectl.config.model import Experiment, Objective, TrialSpec
from tunectl.engine.search import ENQUEUED_KEY, PastTrial, SearchEngine
from tunectl.search.enqueue import OutsideSpace, check_enqueued, to_internal
from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.space import to_external

P = ParamSpec


@pytest.mark.parametrize(
    ("p", "value", "discrete"),
    [
        (P("c", "choice", values=("a", 1, True, None)), None, False),
        (P("c", "choice", values=("a", 1, True, None)), True, False),
        (P("c", "choice", values=(1.0, 2.0)), 2, False),
        (P("r", "randint", low=1, high=5), 4, False),
        (P("u", "uniform", low=0, high=1), 1, False),
        (P("q", "quniform", low=0, high=1, q=0.1), 0.3, False),
        (P("q", "quniform", low=0, high=1, q=0.1), 0.3, True),
        (P("l", "loguniform", low=1e-4, high=1), 1e-3, False),
        (P("ql", "qloguniform", low=1, high=100, q=5), 25, True),
        (P("n", "normal", mu=0, sigma=1), 1.5, False),
        (P("qn", "qnormal", mu=10, sigma=3, q=2), 12, False),
        (P("ln", "lognormal", mu=0, sigma=1), 2.0, False),
        (P("qln", "qlognormal", mu=2, sigma=1, q=1), 7, False),
        (P("i", "int", low=0, high=10, step=2), 6, False),
        (P("f", "float", low=0, high=1, step=0.25), 0.75, False),
        (P("f", "float", low=0.01, high=1, log=True), 0.5, False),
    ],
)
def test_values_in_the_space_map_back_to_themselves(p, value, discrete) -> None:
    internal = to_internal(p, value, discrete)
    assert to_external(p, internal) == pytest.approx(value) or to_external(p, internal) is value


@pytest.mark.parametrize(
    ("p", "value", "says"),
    [
        (P("c", "choice", values=("a", 1)), True, 'its values are "a", 1'),
        (P("c", "choice", values=("a", 1)), "b", "its values are"),
        (P("r", "randint", low=1, high=5), 5, "whole numbers from 1 to 4"),
        (P("r", "randint", low=1, high=5), 2.5, "whole numbers from 1 to 4"),
        (P("u", "uniform", low=0, high=1), "x", 'numbers, not "x"'),
        (P("q", "quniform", low=0, high=1, q=0.1), 0.35, "multiples of 0.1"),
        (P("ln", "lognormal", mu=0, sigma=1), -1, "greater than 0"),
        (P("n", "normal", mu=0, sigma=1), 100, "too far from mu"),
        (P("i", "int", low=0, high=10, step=2), 5, "0 to 10 in steps of 2"),
        (P("f", "float", low=0, high=1, step=0.25), 0.3, "in steps of 0.25"),
    ],
)
def test_values_outside_the_space_say_what_it_takes(p, value, says) -> None:
    with pytest.raises(OutsideSpace, match=says):
        to_internal(p, value)


def test_check_enqueued_follows_conditions() -> None:
    params = [
        P("layers", "choice", values=(1, 2)),
        P("width", "int", low=1, high=9, when=(("layers", 2),)),
    ]
    assert check_enqueued(params, {"layers": 2, "width": 3}) == []
    assert check_enqueued(params, {"layers": 1}) == []
    [(name, sentence)] = check_enqueued(params, {"layers": 2})
    assert name == "width" and "gives no value" in sentence
    [(name, sentence)] = check_enqueued(params, {"layers": 1, "width": 3})
    assert "exists only when layers = 2" in sentence
    [(name, sentence)] = check_enqueued(params, {"layers": 1, "widht": 3})
    assert 'Did you mean "width"?' in sentence


def experiment(enqueue, algorithm="tpe") -> Experiment:
    return Experiment(
        name="exp",
        algorithm=Algorithm(algorithm, (("seed", 3),)),
        objective=Objective("maximize", metric="acc"),
        params=(P("x", "quniform", low=0, high=1, q=0.25), P("c", "choice", values=("a", "b"))),
        trial=TrialSpec("local", ()),
        enqueue=tuple(enqueue),
    )


@pytest.mark.parametrize("algorithm", ["tpe", "grid", "random"])
def test_the_engine_asks_sets_first_and_never_twice(algorithm) -> None:
    sets = [{"x": 0.5, "c": "b"}, {"x": 0.25, "c": "a"}]
    engine = SearchEngine(experiment(sets, algorithm), [])
    first = engine.ask(0)
    assert first.params == sets[0] and first.system_attrs[ENQUEUED_KEY] == 0
    # Rebuilt from the state after trial 0 (still running): the second set is next.
    past = PastTrial(0, "running", first.internal, system_attrs=first.system_attrs)
    rebuilt = SearchEngine(experiment(sets, algorithm), [past])
    assert rebuilt.next_enqueued() == 1
    second = rebuilt.ask(1)
    assert second.params == sets[1] and second.system_attrs[ENQUEUED_KEY] == 1
    third = rebuilt.ask(2)
    assert ENQUEUED_KEY not in third.system_attrs and rebuilt.next_enqueued() is None
    if algorithm == "grid":  # the grid does not ask the sets again
        seen = [third.params] + [rebuilt.ask(n).params for n in range(3, 8)]
        assert not any(s in seen for s in sets)
