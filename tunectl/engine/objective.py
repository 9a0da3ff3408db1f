"""A trial's objective value and learning curve, from the metric values it reported.

A series is the reports of one metric in arrival order, each `(step, value)`; step None is
a final-only report. The intermediate curve (for early stopping) holds the stepped reports,
one value per step (the latest report of a step wins), in step order.

`reduce` (the objective block's) turns a metric's reports into one number:

* `final`: the last final-only report if there is one, else the report of the highest step;
* `best`: the best report by the objective's direction;
* `avg`: the mean of the reports.

With weighted `metrics` (PAI's weighted sum), the reports are first combined per step:
the weighted series has a point at each step where every metric reported (the curve that
early stopping sees), then one for the final-only reports when every metric has one.
`reduce` picks from that series, so `best` is the best *step* — never the best accuracy
of one epoch added to the lowest loss of another. `final` falls back to each metric's own
final value when the metrics never reported at a common step.

Several metric sources (`sources_reduce`, PAI's `source_list_final_mode`): each task of
the trial is a source (a cross-validation fold, a day of data), and its reports are kept
under `TASK/NAME` (`source_name`). Each source's value is computed as above, then the
sources' values are reduced in task order by `sources_reduce` (`final`: the last source's;
`best`; `avg`). Early stopping sees the first source's curve: trials are compared at the
same step of the same source.

Several objectives (`metrics = [...]` with `directions`): a trial's values are a vector,
one per objective metric, each reduced by `reduce` toward its own direction (with
`best`, each metric's best report, whichever step it came from) and, with several sources,
across the sources by `sources_reduce` (`objective_values`). There is no single value
and no curve: `combine` gives (None, []), as early stopping is not defined for them.

Non-finite values (NaN, inf) are ignored here: the engine fails a trial that reports one
before it gets here, and a state written by an older version may still hold them.
No optuna import here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tunectl.config.model import Objective

REDUCTIONS = ("final", "best", "avg")
SOURCE_SEP = "/"

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


def _final(points: Series) -> float | None:
    finals = _finite([v for step, v in points if step is None])
    if finals:
        return finals[-1]
    stepped = curve(points)
    return stepped[-1][1] if stepped else None


def _reduce_metric(points: Series, how: str, direction: str) -> float | None:
    if how == "final":
        return _final(points)
    return reduce_series([v for _, v in points], how, direction)


def weighted_series(
    series: Mapping[str, Series], weights: Sequence[tuple[str, float]]
) -> list[tuple[int | None, float]]:
    """The weighted sum per step where every metric reported, in step order; then, when
    every metric has a final-only report, the weighted sum of the last ones (step None)."""
    curves = [dict(curve(series.get(name, ()))) for name, _ in weights]
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    out: list[tuple[int | None, float]] = [
        (step, math.fsum(w * c[step] for (_, w), c in zip(weights, curves, strict=True)))
        for step in steps
    ]
    finals = [_finite([v for s, v in series.get(name, ()) if s is None]) for name, _ in weights]
    if finals and all(finals):
        out.append((None, math.fsum(w * f[-1] for (_, w), f in zip(weights, finals, strict=True))))
    return out


def _best_point(
    points: Sequence[tuple[int | None, float]], direction: str
) -> tuple[int | None, float] | None:
    best: tuple[int | None, float] | None = None
    for point in points:  # the first of equal values wins, as Optuna's best trial does
        if best is None or (point[1] > best[1] if direction == "maximize" else point[1] < best[1]):
            best = point
    return best


def source_name(source: str, name: str) -> str:
    """The name a metric of one source is kept under: `fold1/auc`."""
    return f"{source}{SOURCE_SEP}{name}"


def by_source(series: Mapping[str, Series]) -> dict[str, dict[str, Series]]:
    """Series kept under `TASK/NAME`, per source, in the order the sources first appear."""
    out: dict[str, dict[str, Series]] = {}
    for key, points in series.items():
        source, sep, name = key.partition(SOURCE_SEP)
        if sep:
            out.setdefault(source, {})[name] = points
    return out


def combine(
    series: Mapping[str, Series], objective: Objective
) -> tuple[float | None, list[tuple[int, float]]]:
    """(the trial's objective value, its intermediate (step, value) curve).

    The value is None when a metric of the objective has no finite report (with weighted
    metrics and `best`/`avg`: when the metrics never reported at a common step; with
    several sources: when one of them has no value).
    """
    if objective.multi:
        return None, []
    if objective.sources_reduce is not None:
        one = replace(objective, sources_reduce=None)
        values: list[float] = []
        curves: list[list[tuple[int, float]]] = []
        for sub in by_source(series).values():
            value, curve_ = combine(sub, one)
            if value is None:
                return None, curves[0] if curves else curve_
            values.append(value)
            curves.append(curve_)
        value = reduce_series(values, objective.sources_reduce, objective.direction)
        return value, curves[0] if curves else []
    how, direction = objective.reduce, objective.direction
    if objective.metric:
        points = series.get(objective.metric, ())
        return _reduce_metric(points, how, direction), curve(points)
    if not objective.metrics:
        return None, []
    weighted = weighted_series(series, objective.metrics)
    stepped = [(s, v) for s, v in weighted if s is not None]
    if how == "best":
        best = _best_point(weighted, direction)
        return (best[1] if best else None), stepped
    if how == "avg":
        values = [v for _, v in weighted]
        return (math.fsum(values) / len(values) if values else None), stepped
    if weighted:
        return weighted[-1][1], stepped
    # No common step (say one metric stepped, another final-only): each metric's final.
    total = 0.0
    for name, weight in objective.metrics:
        value = _final(series.get(name, ()))
        if value is None:
            return None, stepped
        total += weight * value
    return total, stepped


def metric_values(series: Mapping[str, Series], objective: Objective) -> dict[str, float]:
    """One value per reported metric, for the trial record and `show`.

    Each metric is reduced by `reduce`, toward its own good side (a metric of negative
    weight is minimised when the objective is maximised). With weighted metrics and
    `best`, the objective's metrics show their values at the step the best came from.
    With several sources, each source's metrics (`fold1/auc`), then each metric across the
    sources by `sources_reduce` under its own name (`auc`).
    """
    if objective.sources_reduce is not None:
        one = replace(objective, sources_reduce=None)
        shown: dict[str, float] = {}
        across: dict[str, list[float]] = {}
        for source, sub in by_source(series).items():
            for name, number in metric_values(sub, one).items():
                shown[source_name(source, name)] = number
                across.setdefault(name, []).append(number)
        for name, values in across.items():
            reduced = reduce_series(values, objective.sources_reduce, _toward(objective, name))
            if reduced is not None:
                shown[name] = reduced
        return shown
    weights = dict(objective.metrics)
    at: dict[str, float] = {}
    if objective.metrics and objective.reduce == "best":
        best = _best_point(weighted_series(series, objective.metrics), objective.direction)
        if best is not None:
            step = best[0]
            for name in weights:
                points = series.get(name, ())
                if step is None:
                    at[name] = _finite([v for s, v in points if s is None])[-1]
                else:
                    at[name] = dict(curve(points))[step]
    out: dict[str, float] = {}
    for name, points in series.items():
        if name in at:
            out[name] = at[name]
            continue
        value = _reduce_metric(points, objective.reduce, _toward(objective, name))
        if value is not None:
            out[name] = value
    return out


def _toward(objective: Objective, name: str) -> str:
    """The direction metric `name` is reduced toward: its own objective's with several
    objectives; with weights, the objective's, reversed for a negative weight."""
    own = dict(objective.objectives).get(name)
    if own is not None:
        return own
    direction = objective.direction
    if dict(objective.metrics).get(name, 1.0) < 0:
        direction = "minimize" if direction == "maximize" else "maximize"
    return direction


def objective_values(series: Mapping[str, Series], objective: Objective) -> list[float] | None:
    """A trial's values with several objectives, one per objective in declared order
    (`metric_values`' reduction of each); None when one has no finite report, or when the
    objective is a single one."""
    if not objective.multi:
        return None
    reduced = metric_values(series, objective)
    out = [reduced.get(name) for name in objective.metric_names]
    if any(v is None for v in out):
        return None
    return [float(v) for v in out if v is not None]
