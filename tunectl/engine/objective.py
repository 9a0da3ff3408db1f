"""A trial's objective value and learning curve, from the metric values it reported.

A series is the reports of one metric in arrival order, each `(step, value)`; step None is
a final-only report. The intermediate curve (for early stopping) holds the stepped reports,
one value per step (the latest report of a step wins), in step order.

`reduce` (the objective block's) turns a metric's reports into one number:

* `final`: the last final-only report if there is one, else the report of the highest step;
* `best`: the best report by the objective's direction;
* `avg`: the mean of the reports.

With weighted `metrics` (PAI's weighted sum), the value is the weighted sum of each metric
reduced on its own, and the curve has a point at each step where every metric reported.
Non-finite values (NaN, inf) are ignored. No optuna import here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tunectl.config.model import Objective

REDUCTIONS = ("final", "best", "avg")

Series = Sequence[tuple[int | None, float]]


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def reduce_series(values: Sequence[float], how: str, direction: str) -> float | None:
    """One number for values in arrival order: `final` (the last), `best` or `avg`.

    None when there is no finite value.
    """
    finite = _finite(values)
    if not finite:
        return None
    if how == "final":
        return finite[-1]
    if how == "best":
        return max(finite) if direction == "maximize" else min(finite)
    if how == "avg":
        return math.fsum(finite) / len(finite)
    raise ValueError(f'reduce must be one of {", ".join(REDUCTIONS)}, got "{how}".')


def curve(points: Series) -> list[tuple[int, float]]:
    """The stepped, finite reports of one metric: one per step, in step order."""
    by_step: dict[int, float] = {}
    for step, value in points:
        if step is not None and _finite([value]):
            by_step[int(step)] = float(value)
    return sorted(by_step.items())


def _reduce_metric(points: Series, how: str, direction: str) -> float | None:
    if how != "final":
        return reduce_series([v for _, v in points], how, direction)
    finals = _finite([v for step, v in points if step is None])
    if finals:
        return finals[-1]
    stepped = curve(points)
    return stepped[-1][1] if stepped else None


def combine(
    series: Mapping[str, Series], objective: Objective
) -> tuple[float | None, list[tuple[int, float]]]:
    """(the trial's objective value, its intermediate (step, value) curve).

    The value is None when a metric of the objective has no finite report.
    """
    how, direction = objective.reduce, objective.direction
    if objective.metric:
        points = series.get(objective.metric, ())
        return _reduce_metric(points, how, direction), curve(points)
    if not objective.metrics:
        return None, []
    curves = [dict(curve(series.get(name, ()))) for name, _ in objective.metrics]
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    weights = [weight for _, weight in objective.metrics]
    combined = [
        (step, math.fsum(w * c[step] for w, c in zip(weights, curves, strict=True)))
        for step in steps
    ]
    total = 0.0
    for name, weight in objective.metrics:
        value = _reduce_metric(series.get(name, ()), how, direction)
        if value is None:
            return None, combined
        total += weight * value
    return total, combined
