"""The objective block: what an experiment optimises, in one of three forms.

`metric = "NAME"` with `direction` is one objective; `metrics = { NAME = WEIGHT, ... }`
with `direction` is one objective too, PAI's weighted sum; `metrics = [NAME, ...]` with
`directions = [...]` (one per metric, in order) is several objectives, an Optuna
multi-objective study whose result is a Pareto front. `metrics` tells the forms apart.
What several objectives exclude elsewhere in the experiment (an algorithm that searches
one, early stopping, a goal or improvement on a single best) is `check_several`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunectl.config.model import Objective
from tunectl.config.schema import Reader, convert
from tunectl.diags import Diagnostics, SourceRange, did_you_mean, error
from tunectl.hcl.expr import Scope
from tunectl.hcl.schema import element_range, type_name
from tunectl.hcl.syntax import Block, Body
from tunectl.search.model import Algorithm, EarlyStopping

DIRECTIONS = ("maximize", "minimize")
REDUCTIONS = ("final", "best", "avg")


def decode_objective(
    block: Block, scope: Scope, context: str, diags: Diagnostics
) -> Objective | None:
    """The objective block; None when it cannot be read (its diagnostics said)."""
    reader = Reader(block.body, scope, context, diags)
    attrs = block.body.attributes
    metrics = reader.get("metrics")
    if isinstance(metrics, list) or "directions" in attrs:
        return _objectives(reader, metrics)
    if "direction" not in attrs:
        reader.fail(
            None,
            "Missing required argument",
            'The argument "direction" is required, but no definition was found.',
        )
    direction = reader.get("direction", "string", "maximize")
    if direction not in DIRECTIONS:
        reader.fail(
            attrs.get("direction"),
            "Invalid direction",
            'direction must be "maximize" or "minimize", got '
            f'"{direction}".{did_you_mean(str(direction), DIRECTIONS)}',
        )
    metric = reader.get("metric", "string")
    if metrics is not None and not isinstance(metrics, dict):
        reader.fail(
            attrs.get("metrics"),
            "Invalid objective",
            "metrics is a map of weights (metrics = { auc = 0.25, recall = 0.75 }, a weighted "
            'sum) or a list of names with directions (metrics = ["acc", "latency"], several '
            f"objectives), got {type_name(metrics)}.",
        )
        return None
    if (metric is None) == (metrics is None):
        reader.fail(
            None,
            "Invalid objective",
            'Set exactly one of metric = "NAME" or metrics = { NAME = WEIGHT, ... }.',
        )
    weights: list[tuple[str, float]] = []
    for key, weight in (metrics or {}).items():
        try:
            weights.append((key, float(convert(weight, "number"))))
        except ValueError:
            reader.fail(
                attrs.get("metrics"),
                "Invalid objective",
                f'The weight of "{key}" must be a number.',
            )
    if metrics is not None and not metrics:
        reader.fail(
            attrs.get("metrics"),
            "Invalid objective",
            "metrics needs at least one NAME = WEIGHT entry.",
        )
    reduce, sources = _reductions(reader)
    return Objective(
        direction, metric, tuple(sorted(weights)), reader.get("goal", "number"), reduce, sources
    )


def _objectives(reader: Reader, metrics: Any) -> Objective | None:
    """Several objectives: `metrics = [NAME, ...]` and `directions`, one per metric."""
    attrs = reader.body.attributes
    directions = reader.get("directions", "list(string)")
    if not isinstance(metrics, list):
        reader.fail(
            attrs.get("directions") if metrics is None else attrs.get("metrics"),
            "Invalid objective",
            'directions goes with a list of metrics (metrics = ["acc", "latency"], one '
            'direction each); with one metric, write metric = "NAME" and direction.',
        )
        return None
    if directions is None:
        if "directions" not in attrs:
            reader.fail(
                attrs.get("metrics"),
                "Missing directions",
                "A list of metrics makes several objectives: give one direction per metric, "
                'as directions = ["maximize", "minimize"] (or write metrics = { NAME = '
                "WEIGHT, ... } for a weighted sum).",
            )
        return None
    for name in ("direction", "metric"):
        if name in attrs:
            reader.fail(
                attrs[name],
                "Invalid objective",
                f"With several objectives each metric has its own direction in directions: "
                f"remove {name}.",
            )
    names: list[str] = []
    for index, item in enumerate(metrics):
        where = element_range(attrs["metrics"].expr, index) or attrs["metrics"].range
        if not isinstance(item, str) or not item:
            reader.diags.append(
                error(
                    "Invalid objective",
                    f"metrics[{index}] must be a metric name, got {type_name(item)}.",
                    where,
                    reader.context,
                )
            )
        elif item in names:
            reader.diags.append(
                error(
                    "Invalid objective",
                    f'metrics[{index}] repeats "{item}": each objective is a different metric.',
                    where,
                    reader.context,
                )
            )
        names.append(str(item))
    if len(metrics) < 2:
        reader.fail(
            attrs["metrics"],
            "Invalid objective",
            "Several objectives need at least two metrics; for one, write "
            'metric = "NAME" and direction.',
        )
    if len(directions) != len(metrics):
        reader.fail(
            attrs["directions"],
            "Invalid objective",
            f"directions has {len(directions)} entries but metrics has {len(metrics)}: give "
            "one direction per metric, in the same order.",
        )
    for index, direction in enumerate(directions):
        if direction not in DIRECTIONS:
            reader.diags.append(
                error(
                    "Invalid direction",
                    f'directions[{index}] must be "maximize" or "minimize", got '
                    f'"{direction}".{did_you_mean(str(direction), DIRECTIONS)}',
                    element_range(attrs["directions"].expr, index) or attrs["directions"].range,
                    reader.context,
                )
            )
    if "goal" in attrs:
        reader.fail(
            attrs["goal"],
            "Invalid objective",
            "goal is one value to reach, and several objectives have no single best value: "
            "remove goal (max_trials and max_duration end the experiment).",
        )
    reduce, sources = _reductions(reader)
    # Returned with errors too, so the experiment's checks of several objectives run.
    pairs = tuple(zip(names, (str(d) for d in directions), strict=False))
    if not pairs:
        return None
    return Objective(pairs[0][1], None, (), None, reduce, sources, pairs)


def _reductions(reader: Reader) -> tuple[str, str | None]:
    """The objective's `reduce` and `sources_reduce`."""
    attrs = reader.body.attributes
    reduce = reader.get("reduce", "string", "final")
    if reduce not in REDUCTIONS:
        reader.fail(
            attrs.get("reduce"),
            "Invalid reduce",
            f'reduce must be "final", "best" or "avg", got "{reduce}".',
        )
    sources = reader.get("sources_reduce", "string")
    if sources is not None and sources not in REDUCTIONS:
        reader.fail(
            attrs.get("sources_reduce"),
            "Invalid sources_reduce",
            f'sources_reduce must be "final", "best" or "avg", got "{sources}".'
            f"{did_you_mean(str(sources), REDUCTIONS)}",
        )
    return reduce, sources


def check_several(
    body: Body,
    algorithm: Algorithm,
    early: EarlyStopping,
    ranges: Mapping[str, SourceRange],
    context: str,
    diags: Diagnostics,
) -> None:
    """What several objectives exclude: an algorithm that searches one, early stopping
    (Optuna prunes on one learning curve), and improvement on a single best."""
    from tunectl.search.algorithms import ALGORITHMS

    entry = ALGORITHMS.get(algorithm.name)
    if entry is not None and not entry.multi_objective:
        able = ", ".join(name for name, e in ALGORITHMS.items() if e.multi_objective)
        diags.append(
            error(
                "Algorithm cannot search several objectives",
                f'The "{algorithm.name}" algorithm optimises one objective, and this '
                f"objective has several. Choose one that searches several: {able}.",
                ranges.get("algorithm"),
                context,
            )
        )
    if early.name != "none":
        diags.append(
            error(
                "Early stopping with several objectives",
                "Early stopping compares one learning curve across trials, and Optuna defines "
                "no pruning for several objectives: remove the early_stopping block (or "
                'write early_stopping "none").',
                ranges.get("early_stopping"),
                context,
            )
        )
    if "max_trials_without_improvement" in body.attributes:
        diags.append(
            error(
                "Invalid objective",
                "max_trials_without_improvement counts trials since the best one, and "
                "several objectives have no single best trial (they have a Pareto front): "
                "remove it.",
                ranges.get("max_trials_without_improvement"),
                context,
            )
        )
