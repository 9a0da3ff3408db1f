"""The experiment decoder: an `experiment "NAME"` block into an `Experiment`.

Its parameters, algorithm, early stopping, objective, lifecycle and limits are read and
checked here (the search space's own rules are `tunectl.search.space`'s); its trial block
is `trial.py`'s. A block with any error decodes to None, its diagnostics said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunectl.config.model import (
    Experiment,
    Lifecycle,
    ProviderConfig,
    TrialSpec,
)
from tunectl.config.notify import decode_notify
from tunectl.config.objective import check_several, decode_objective
from tunectl.config.schedule import decode_schedule
from tunectl.config.schema import OPEN, Reader
from tunectl.config.sensitive import refers_to
from tunectl.config.trial import decode_trial
from tunectl.config.warm_start import decode_warm_start
from tunectl.diags import Diagnostics, SourceRange, did_you_mean, error, warning
from tunectl.hcl.expr import Scope
from tunectl.hcl.schema import block_context, check_body, type_name
from tunectl.hcl.syntax import Block, Expr, Literal, ObjectExpr, TupleExpr
from tunectl.hcl.values import Template
from tunectl.search import pbt
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.params import PARAM_TYPES


def decode_experiment(
    block: Block, scope: Scope, providers: Mapping[str, ProviderConfig], diags: Diagnostics
) -> Experiment | None:
    from tunectl.search.pruners import validate_pruner
    from tunectl.search.space import validate_space

    name = block.labels[0]
    context = block_context(block)
    start = len(diags)
    body = block.body
    reader = Reader(body, scope, context, diags)
    ranges = {n: a.range for n, a in body.attributes.items()}
    for sub in body.blocks:
        ranges.setdefault(sub.type, sub.range)

    params: list[ParamSpec] = []
    seen_params: set[str] = set()
    for pb in body.blocks_of("param"):
        if len(pb.labels) != 1:
            continue
        if pb.labels[0] in seen_params:
            diags.append(
                error(
                    "Duplicate param block",
                    f'A parameter named "{pb.labels[0]}" is already declared in this experiment.',
                    pb.range,
                    context,
                )
            )
            continue
        seen_params.add(pb.labels[0])
        p = _param(pb, scope, context, diags)
        if p is not None:
            params.append(p)
    if not body.blocks_of("param"):
        diags.append(
            error(
                "Missing required block",
                'An experiment needs at least one param "NAME" block.',
                block.range,
                context,
            )
        )

    algorithm = Algorithm("tpe")
    for ab in body.blocks_of("algorithm")[:1]:
        settings = _open_settings(ab, scope, context, diags)
        algorithm = Algorithm(ab.labels[0] if ab.labels else "tpe", tuple(sorted(settings.items())))
    early = EarlyStopping()
    for eb in body.blocks_of("early_stopping")[:1]:
        settings = _open_settings(eb, scope, context, diags)
        early = EarlyStopping(
            eb.labels[0] if eb.labels else "none", tuple(sorted(settings.items()))
        )
        for sentence in validate_pruner(early):
            diags.append(error("Invalid early stopping", sentence, eb.range, context))

    objective = None
    for ob in body.blocks_of("objective")[:1]:
        objective = decode_objective(ob, scope, context, diags)
    trial = None
    for tb in body.blocks_of("trial")[:1]:
        trial = decode_trial(tb, scope, providers, context, {p.name: p for p in params}, diags)

    if objective is not None and objective.sources_reduce and trial and len(trial.tasks) < 2:
        diags.append(
            warning(
                "sources_reduce has no effect",
                "Each task of a trial is a metric source, and this trial has one task: "
                'add a task "NAME" block per source (a fold, a day of data).',
                ranges.get("objective"),
                context,
            )
        )
    schedule = None
    for sb in body.blocks_of("schedule")[:1]:
        schedule = decode_schedule(sb, scope, context, diags)
    notify = None
    for nb in body.blocks_of("notify")[:1]:
        notify = decode_notify(nb, scope, context, diags)

    warm_start = decode_warm_start(block, reader, diags)
    lifecycle = Lifecycle()
    for lb in body.blocks_of("lifecycle")[:1]:
        lr = Reader(lb.body, scope, context, diags)
        ignore = lr.get("ignore_changes", "list", [])
        for item in ignore:
            if not isinstance(item, str):
                lr.fail(
                    lb.body.attributes.get("ignore_changes"),
                    "Invalid ignore_changes",
                    "ignore_changes lists attribute names as strings.",
                )
        lifecycle = Lifecycle(
            lr.get("prevent_destroy", "bool", False), tuple(str(i) for i in ignore)
        )

    max_trials = reader.get("max_trials", "int", 1)
    max_concurrent = reader.get("max_concurrent", "int", 1)
    max_failed = reader.get("max_failed_trials", "int")
    max_duration = reader.get("max_duration", "duration")
    max_cost = reader.get("max_cost", "number")
    without = reader.get("max_trials_without_improvement", "int")
    for attr_name, value, low in (
        ("max_trials", max_trials, 1),
        ("max_concurrent", max_concurrent, 1),
        ("max_failed_trials", max_failed, 0),
        ("max_trials_without_improvement", without, 1),
    ):
        if value is not None and value < low:
            reader.fail(
                body.attributes.get(attr_name),
                "Invalid value",
                f"{attr_name} must be at least {low}, got {value}.",
            )
    if max_duration is not None and max_duration <= 0:
        reader.fail(
            body.attributes.get("max_duration"),
            "Invalid value",
            "max_duration must be longer than zero.",
        )
    if max_cost is not None:
        unpriced = "max_cost must be more than zero." if max_cost <= 0 else None
        unpriced = unpriced or (_unpriced(trial, providers) if trial is not None else None)
        if unpriced:
            reader.fail(body.attributes.get("max_cost"), "Invalid max_cost", unpriced)

    if objective is not None and objective.multi:
        check_several(body, algorithm, early, ranges, context, diags)
    space_errors = validate_space(algorithm, params)
    for pname, sentence in space_errors:
        where = next((p.range for p in params if p.name == pname), None)
        where = where or ranges.get("algorithm") or block.range
        diags.append(error("Invalid search space", sentence, where, context))
    if algorithm.name == pbt.NAME and not space_errors:
        pruning = early.name != EarlyStopping().name
        for attr_name, sentence in pbt.conflicts(pbt.settings_of(algorithm), max_trials, pruning):
            where = ranges.get(attr_name) or ranges.get("algorithm") or block.range
            diags.append(error("Invalid PBT experiment", sentence, where, context))
    if warm_start is not None and (algorithm.name == pbt.NAME or (objective and objective.multi)):
        why = (
            "PBT's members start from checkpoints, not from finished trials"
            if algorithm.name == pbt.NAME
            else "warm starts carry trials by their one objective value, and this objective "
            "has several"
        )
        diags.append(
            error("Invalid warm_start", f"{why}: remove warm_start.", warm_start.range, context)
        )
    enqueue: tuple[dict[str, Any], ...] = ()
    if not Diagnostics(diags[start:]).has_errors():  # sets are checked against a sound space
        enqueue = _enqueue(reader, params, algorithm, diags)
        if max_trials is not None and len(enqueue) > max_trials:
            diags.append(
                warning(
                    "Enqueued sets beyond max_trials",
                    f"enqueue lists {len(enqueue)} parameter sets, more than max_trials "
                    f"({max_trials}): the last {len(enqueue) - max_trials} run only if "
                    "max_trials is raised.",
                    ranges.get("enqueue"),
                    context,
                )
            )

    if len(diags) > start and Diagnostics(diags[start:]).has_errors():
        return None
    assert objective is not None and trial is not None
    return Experiment(
        name=name,
        algorithm=algorithm,
        objective=objective,
        params=tuple(params),
        trial=trial,
        description=reader.get("description", "string", ""),
        max_trials=max_trials,
        max_concurrent=max_concurrent,
        max_failed_trials=max_failed,
        max_duration=max_duration,
        max_cost=max_cost,
        max_trials_without_improvement=without,
        early_stopping=early,
        lifecycle=lifecycle,
        enqueue=enqueue,
        schedule=schedule,
        notify=notify,
        warm_start=warm_start,
        range=block.range,
        ranges=ranges,
        # A webhook's URL holds its token: hidden whatever it derives from.
        sensitive=_sensitive_paths(block, trial, scope.sensitive)
        | ({f"notify.{notify.kind}.url"} if notify else set()),
    )


def _enqueue(
    reader: Reader, params: list[ParamSpec], algorithm: Algorithm, diags: Diagnostics
) -> tuple[dict[str, Any], ...]:
    """`enqueue = [{ NAME = VALUE, ... }, ...]`, each set checked against the space; each
    mistake is located at its set (or its value) in the list where the source has one."""
    from tunectl.search.enqueue import check_enqueued, internal_set
    from tunectl.search.space import is_discrete

    attr = reader.body.attributes.get("enqueue")
    sets = reader.get("enqueue", "list", [])
    if attr is None or not sets:
        return ()
    items = attr.expr.items if isinstance(attr.expr, TupleExpr) else []
    out: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []  # the sampler's values of the sound sets
    for index, values in enumerate(sets):
        item = items[index] if index < len(items) else None
        where = item.range if item is not None else attr.range
        if not isinstance(values, dict):
            diags.append(
                error(
                    "Invalid enqueue",
                    f"enqueue[{index}] must be a map of parameter values such as "
                    f"{{ lr = 0.01 }}, got {type_name(values)}.",
                    where,
                    reader.context,
                )
            )
            continue
        problems = check_enqueued(params, values, is_discrete(algorithm))
        for pname, sentence in problems:
            diags.append(
                error(
                    "Invalid enqueue",
                    f"enqueue[{index}]: {sentence}",
                    _value_range(item, pname) or where,
                    reader.context,
                )
            )
        if not problems:
            internal = internal_set(params, values, is_discrete(algorithm))
            if internal in seen:
                diags.append(
                    warning(
                        "Enqueued set repeated",
                        f"enqueue[{index}] repeats enqueue[{seen.index(internal)}]: a set "
                        "runs once, so this one never runs.",
                        where,
                        reader.context,
                    )
                )
            seen.append(internal)
        out.append(dict(values))
    return tuple(out)


def _value_range(item: Expr | None, name: str | None) -> SourceRange | None:
    """Where `name = ...` is written in the object expression `item`, if it is one."""
    if not isinstance(item, ObjectExpr) or name is None:
        return None
    for key, value in item.items:
        if isinstance(key, Literal) and key.value == name:
            v = value.range
            return SourceRange(
                key.range.filename, key.range.line, v.end_line, key.range.column, v.end_column
            )
    return None


def _sensitive_paths(
    block: Block, trial: TrialSpec, hidden: frozenset[tuple[str, str]]
) -> frozenset[str]:
    """The canonical paths (`tunectl.plans.differ.canonical`) of an experiment whose
    values derive from sensitive variables."""
    if not hidden:
        return frozenset()
    out: set[str] = set()
    for name, attr in block.body.attributes.items():
        if refers_to(attr.expr, hidden):
            out.add(name)
    for sub in block.body.blocks:
        if sub.type == "trial":
            for name in ("provider", "timeout", "retries"):
                found = sub.body.attributes.get(name)
                if found is not None and refers_to(found.expr, hidden):
                    out.add(f"trial.{name}")
            continue
        labelled = sub.type in ("param", "notify") and sub.labels
        prefix = f"{sub.type}.{sub.labels[0]}." if labelled else sub.type + "."
        for name, attr in sub.body.attributes.items():
            if refers_to(attr.expr, hidden):
                out.add(prefix + name)
    for task in trial.tasks:
        out.update(f"trial.task.{task.name}.{path}" for path in task.sensitive)
    return frozenset(out)


def _open_settings(block: Block, scope: Scope, context: str, diags: Diagnostics) -> dict[str, Any]:
    reader = Reader(block.body, scope, context, diags)
    out = {}
    for name in block.body.attributes:
        value = reader.get(name)
        if isinstance(value, Template):
            reader.fail(
                block.body.attributes[name],
                "Value not known until a trial is created",
                "Settings cannot use placeholders.",
            )
        elif value is not None:
            out[name] = value
    check_body(block.body, OPEN, context, diags)  # settings only: no nested blocks
    return out


def _param(block: Block, scope: Scope, context: str, diags: Diagnostics) -> ParamSpec | None:
    from tunectl.search.space import validate_param

    reader = Reader(block.body, scope, context, diags)
    type_ = reader.get("type", "string")
    if type_ is None:
        return None
    if type_ not in PARAM_TYPES:
        reader.fail(
            block.body.attributes.get("type"),
            "Unknown parameter type",
            f'"{type_}" is not a parameter type.{did_you_mean(type_, PARAM_TYPES)} '
            f"Choose one of: {', '.join(PARAM_TYPES)}.",
        )
        return None
    values = reader.get("values", "list", [])
    when = reader.get("when", "map", {})
    spec = ParamSpec(
        name=block.labels[0],
        type=type_,
        low=reader.get("low", "number"),
        high=reader.get("high", "number"),
        q=reader.get("q", "number"),
        mu=reader.get("mu", "number"),
        sigma=reader.get("sigma", "number"),
        values=tuple(values),
        step=reader.get("step", "number"),
        log=reader.get("log", "bool", False),
        when=tuple(sorted(when.items())),
        range=block.range,
    )
    for sentence in validate_param(spec):
        diags.append(
            error("Invalid parameter", f'Parameter "{spec.name}": {sentence}', block.range, context)
        )
    return spec


def _unpriced(trial: TrialSpec, providers: Mapping[str, ProviderConfig]) -> str | None:
    """Why `max_cost` cannot be counted: the first task whose price its provider does
    not know (`Provider.hourly_price`, `tunectl.providers.prices`); None when all are."""
    from tunectl.providers import registry

    for task in trial.tasks:
        try:
            cls = registry.load(task.provider)
        except (KeyError, registry.ProviderLoadError):
            return None  # reported with the trial
        config = providers[task.provider].settings if task.provider in providers else {}
        if cls.hourly_price(config, dict(task.settings)) is not None:
            continue
        hint = (
            f' Give its prices with "{cls.price_setting}" in the provider "{task.provider}" '
            "block."
            if cls.price_setting
            else ""
        )
        return (
            f"max_cost counts what trials cost, and the {task.provider} provider does not know "
            f'the price of task "{task.name}".{hint}'
        )
    return None
