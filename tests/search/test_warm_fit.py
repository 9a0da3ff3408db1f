"""Which finished trials a warm start carries into a changed search space (`fits`,
`carried`), conditions and added parameters included; the apply order of experiments
seeded from others."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from tunectl.config.model import Experiment, WarmStart
from tunectl.config.warm_start import warm_start_order
from tunectl.search.enqueue import carried, fits
from tunectl.search.model import ParamSpec

P = ParamSpec
SPACE = (
    P("lr", "uniform", low=0.0, high=0.5),
    P("layers", "randint", low=1, high=5),
    P("opt", "choice", values=("adam", "sgd"), when=(("layers", 3),)),
)


def test_a_trial_fits_when_it_is_a_point_of_the_new_space() -> None:
    assert fits(SPACE, {"lr": 0.2, "layers": 2})
    assert fits(SPACE, {"lr": 0.5, "layers": 3, "opt": "sgd"})
    assert not fits(SPACE, {"lr": 0.7, "layers": 2})  # outside a narrowed range
    assert not fits(SPACE, {"lr": 0.2, "layers": 3})  # opt exists now and has no value
    assert not fits(SPACE, {"lr": 0.2, "layers": 2, "opt": "adam"})  # opt does not exist
    assert not fits(SPACE, {"lr": 0.2, "layers": 3, "opt": "rmsprop"})  # a dropped choice
    assert not fits(SPACE, {"lr": 0.2, "layers": 2, "momentum": 0.9})  # a parameter gone
    added = (*SPACE, P("dropout", "uniform", low=0.0, high=0.5))
    assert not fits(added, {"lr": 0.2, "layers": 2})  # an added parameter: no default


def test_grid_spaces_take_only_their_points() -> None:
    q = (P("q", "quniform", low=0, high=1, q=0.25),)
    assert fits(q, {"q": 0.5}, discrete=True)
    assert not fits(q, {"q": 0.3}, discrete=True)


def test_carried_keeps_order_or_takes_the_best() -> None:
    finished = [
        ({"lr": 0.1, "layers": 1}, 0.5),
        ({"lr": 0.9, "layers": 1}, 0.99),  # does not fit
        ({"lr": 0.3, "layers": 2}, 0.8),
        ({"lr": 0.4, "layers": 4}, 0.8),
    ]
    assert carried(SPACE, finished) == [0, 2, 3]
    assert carried(SPACE, finished, direction="maximize", top=2) == [2, 3]
    assert carried(SPACE, finished, direction="minimize", top=1) == [0]


def _exp(name: str, source: str | None = None) -> Experiment:
    # Only `warm_start` decides the order.
    ws = WarmStart(source=source) if source else None
    return cast(Experiment, SimpleNamespace(name=name, warm_start=ws))


def test_sources_run_in_earlier_waves() -> None:
    exps = {
        "a": _exp("a"),
        "b": _exp("b", "a"),
        "c": _exp("c", "b"),
        "d": _exp("d", "zz"),  # a source not applied: no wait
    }
    assert warm_start_order(exps) == [["a", "d"], ["b"], ["c"]]
