"""Outputs: `experiment.NAME.*` as output expressions see them, and the outputs' values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunectl.diags import DiagnosticError
from tunectl.hcl.expr import Scope, evaluate
from tunectl.operations.session import Session
from tunectl.states import State


def exported(state: State) -> dict[str, Any]:
    """`experiment.NAME.*` as outputs see them."""
    out: dict[str, Any] = {}
    for record in state.list_experiments():
        counts = state.trial_counts(record.name)
        best = state.best_trial(record.name, direction(record.config))
        out[record.name] = {
            "status": record.status.value,
            "stop_reason": record.stop_reason,
            "best": {
                "value": best.value if best else None,
                "params": best.params if best else {},
                "number": best.number if best else None,
                "model_uri": best.model_uri if best else None,
                "metrics": dict(best.values) if best else {},
            },
            "trials": {
                "complete": counts.get("complete", 0),
                "pruned": counts.get("pruned", 0),
                "failed": counts.get("failed", 0),
                "running": counts.get("running", 0) + counts.get("pending", 0),
            },
        }
    return out


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
