"""Tests for tunectl.engine.objective: reducing reports to a value and a curve."""

from __future__ import annotations

import math

import pytest

from tunectl.config.model import Objective
from tunectl.engine.objective import combine, curve, reduce_series

MAX = Objective("maximize", metric="acc")
MIN = Objective("minimize", metric="loss", reduce="best")


@pytest.mark.parametrize(
    ("values", "how", "direction", "expected"),
    [
        ([0.1, 0.5, 0.3], "final", "maximize", 0.3),
        ([0.1, 0.5, 0.3], "best", "maximize", 0.5),
        ([0.1, 0.5, 0.3], "best", "minimize", 0.1),
        ([0.1, 0.5, 0.3], "avg", "maximize", 0.3),
        ([0.2, math.nan, math.inf], "final", "maximize", 0.2),
        ([], "final", "maximize", None),
        ([math.nan], "avg", "minimize", None),
    ],
)
def test_reduce_series(values, how, direction, expected):
    result = reduce_series(values, how, direction)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_reduce_series_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="reduce must be one of"):
        reduce_series([1.0], "median", "maximize")


def test_single_metric_value_and_curve():
    series = {"acc": [(1, 0.5), (2, 0.7), (3, 0.6)], "other": [(1, 9.0)]}
    assert combine(series, MAX) == (0.6, [(1, 0.5), (2, 0.7), (3, 0.6)])
    best = Objective("maximize", metric="acc", reduce="best")
    assert combine(series, best)[0] == 0.7
    avg = Objective("maximize", metric="acc", reduce="avg")
    assert combine(series, avg)[0] == pytest.approx(0.6)


def test_final_only_reports_count_as_final_but_not_on_the_curve():
    series = {"acc": [(1, 0.5), (None, 0.9), (2, 0.7)]}
    value, points = combine(series, MAX)
    assert value == 0.9
    assert points == [(1, 0.5), (2, 0.7)]


def test_final_without_a_final_report_is_the_highest_step():
    series = {"acc": [(3, 0.8), (1, 0.5), (2, 0.7)]}
    assert combine(series, MAX) == (0.8, [(1, 0.5), (2, 0.7), (3, 0.8)])


def test_repeated_step_keeps_the_latest_report():
    assert curve([(1, 0.5), (1, 0.6), (2, math.nan)]) == [(1, 0.6)]


def test_missing_metric_gives_none():
    assert combine({"other": [(1, 1.0)]}, MAX) == (None, [])
    assert combine({"acc": [(1, math.nan)]}, MAX) == (None, [])


def test_minimize_best():
    assert combine({"loss": [(1, 3.0), (2, 1.0), (3, 2.0)]}, MIN)[0] == 1.0


def test_weighted_metrics():
    objective = Objective("maximize", metrics=(("auc", 0.25), ("recall", 0.75)))
    series = {
        "auc": [(1, 0.8), (2, 0.9), (3, 1.0)],
        "recall": [(1, 0.4), (3, 0.6)],
    }
    value, points = combine(series, objective)
    assert value == pytest.approx(0.25 * 1.0 + 0.75 * 0.6)
    # only steps where every metric reported
    assert [s for s, _ in points] == [1, 3]
    assert points[0][1] == pytest.approx(0.25 * 0.8 + 0.75 * 0.4)


def test_weighted_metrics_best_is_the_best_step():
    # Not each metric's best from different steps (1.0 + 2.0 * 0.5): the best step's sum.
    objective = Objective("minimize", metrics=(("a", 1.0), ("b", 2.0)), reduce="best")
    series = {"a": [(1, 3.0), (2, 1.0)], "b": [(1, 0.5), (2, 2.0)]}
    assert combine(series, objective)[0] == pytest.approx(min(3.0 + 2 * 0.5, 1.0 + 2 * 2.0))


def test_weighted_metrics_missing_one():
    objective = Objective("maximize", metrics=(("auc", 0.5), ("recall", 0.5)))
    value, points = combine({"auc": [(1, 0.8)]}, objective)
    assert value is None and points == []
