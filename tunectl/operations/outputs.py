"""Outputs: `experiment.NAME.*` as output expressions see them, and the outputs' values.

An experiment with several objectives has no `best` (null): its `pareto` lists the
Pareto-optimal trials; a single objective's `pareto` is its best trial alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunectl.config.model import Objective
from tunectl.diags import DiagnosticError
from tunectl.engine.pareto import pareto_front
from tunectl.engine.results import objective_of
from tunectl.hcl.expr import Scope, evaluate
from tunectl.operations.session import Session
from tunectl.states import State, TrialRecord


def exported(state: State) -> dict[str, Any]:
    """`experiment.NAME.*` as outputs see them."""
    out: dict[str, Any] = {}
    for record in state.list_experiments():
        counts = state.trial_counts(record.name)
        objective = objective_of(record.config)
        best = None if objective.multi else state.best_trial(record.name, objective.direction)
        out[record.name] = {
            "status": record.status.value,
            "stop_reason": record.stop_reason,
            "best": None
            if objective.multi
            else {
                "value": best.value if best else None,
                "params": best.params if best else {},
                "number": best.number if best else None,
                "model_uri": best.model_uri if best else None,
                "metrics": dict(best.values) if best else {},
            },
            "pareto": _pareto(state, record.name, objective, best),
            "trials": {
                "complete": counts.get("complete", 0),
                "pruned": counts.get("pruned", 0),
                "failed": counts.get("failed", 0),
                "running": counts.get("running", 0) + counts.get("pending", 0),
            },
        }
    return out


def _pareto(
    state: State, name: str, objective: Objective, best: TrialRecord | None
) -> list[dict[str, Any]]:
    """The Pareto-optimal trials as `{ trial, values, params, model_uri }`, `values` by
    metric name, in trial number order."""
    if not objective.multi:
        chosen = [best] if best is not None and best.value is not None else []
        label = objective.metric or "value"
        return [
            {
                "trial": t.number,
                "values": {label: t.value},
                "params": t.params,
                "model_uri": t.model_uri,
            }
            for t in chosen
        ]
    names = objective.metric_names
    complete = {
        t.number: t
        for t in state.list_trials(name, status="complete")
        if len(t.objective_values) == len(names)
    }
    front = pareto_front({n: t.objective_values for n, t in complete.items()}, objective.directions)
    return [
        {
            "trial": n,
            "values": dict(zip(names, complete[n].objective_values, strict=True)),
            "params": complete[n].params,
            "model_uri": complete[n].model_uri,
        }
        for n in front
    ]


def outputs(session: Session, state: State) -> dict[str, tuple[Any, bool]]:
    """Each output's value and whether it is sensitive; an output that cannot be evaluated
    yet (no trials) is None."""
    config = session.config
    scope = Scope(
        variables=config.values,
        locals=config.locals,
        objects={"experiment": exported(state)},
    )
    values: dict[str, tuple[Any, bool]] = {}
    for name, output in config.outputs.items():
        try:
            values[name] = (evaluate(output.expr, scope), output.sensitive)
        except DiagnosticError:
            values[name] = (None, output.sensitive)  # not known yet (no trials)
    return values


def record_outputs(session: Session, state: State) -> dict[str, tuple[Any, bool]]:
    """Evaluate the outputs and store them; sensitive values are not stored.

    A sensitive output (a token passed through a variable, say) must not land in the
    state (SPEC 5): `tunectl output NAME` evaluates it again from the configuration.
    """
    values = outputs(session, state)
    state.set_outputs({k: (None if s else v, s) for k, (v, s) in values.items()})
    return values


def direction(config: Mapping[str, Any]) -> str:
    """The objective's direction in an experiment's stored configuration."""
    return str(config.get("objective", {}).get("direction", "maximize"))


def recorded(session: Session, name: str | None = None) -> dict[str, tuple[Any, bool]]:
    """`tunectl output`: the outputs the last apply recorded. Sensitive values are never
    stored, so the one output asked for by `name`, if sensitive, is evaluated again now."""
    state = session.open_state(create=False)
    try:
        values = state.get_outputs()
        if name is not None and name in values and values[name][1]:
            values[name] = outputs(session, state)[name]
    finally:
        state.close()
    return values
