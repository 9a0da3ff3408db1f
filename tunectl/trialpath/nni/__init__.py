"""`nni` for trial code that tunectl runs: NNI's trial API over tunectl's report protocol.

An NNI trial runs unchanged::

    import nni

    params = nni.get_next_parameter()          # {"lr": 0.01, "batch_size": 32}
    for epoch in range(10):
        nni.report_intermediate_result(acc)    # @tunectl {"metrics":{"default":...},"step":1}
    nni.report_final_result(acc)               # @tunectl {"metrics":{"default":...},"step":null}

The parameters come from the environment variable `TUNECTL_PARAMS` (the trial's
`${trial.params_json}`, which `tunectl import nni` puts in the trial's `env`; a nested
choice is nested back as NNI gives it, by `TUNECTL_NNI_NESTED`). A result is
NNI's: a number, or a dict holding `"default"` (the objective) and other metrics; it is
reported through `tunectl.report` as metric `default` (and the dict's other numeric
entries under their names). The n-th intermediate result is step n (1, 2, ...), as PAI
counts reports. Standard library only, like `tunectl.report`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "get_current_parameter",
    "get_experiment_id",
    "get_next_parameter",
    "get_sequence_id",
    "get_trial_id",
    "report_final_result",
    "report_intermediate_result",
]
__version__ = "3.0+tunectl"

PARAMS_ENV = "TUNECTL_PARAMS"
NESTED_ENV = "TUNECTL_NNI_NESTED"
_state: dict[str, Any] = {"params": None, "step": 0}


def get_next_parameter() -> dict[str, Any]:
    """This trial's parameters, as NNI gives them: a dict of name to value."""
    text = os.environ.get(PARAMS_ENV)
    if text is None:
        print(
            f"nni (tunectl): {PARAMS_ENV} is not set, so this trial has no parameters; "
            f'give the trial env = {{ {PARAMS_ENV} = "${{trial.params_json}}" }}.',
            file=sys.stderr,
        )
        params: dict[str, Any] = {}
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"nni (tunectl): {PARAMS_ENV} is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise RuntimeError(f"nni (tunectl): {PARAMS_ENV} must be a JSON object.")
        params = _nest(loaded)
    _state["params"] = params
    return dict(params)


def _nest(params: dict[str, Any]) -> dict[str, Any]:
    """NNI's nested choices (`TUNECTL_NNI_NESTED`: {choice: {inner key: param}}) as NNI
    gives them: {"optimizer": {"_name": "sgd", "momentum": 0.9}}."""
    try:
        nested = json.loads(os.environ.get(NESTED_ENV) or "{}")
    except json.JSONDecodeError:
        nested = {}
    for outer, inner in nested.items() if isinstance(nested, dict) else ():
        if outer in params:
            option = {"_name": params[outer]}
            for key, name in inner.items():
                if name in params:
                    option[key] = params.pop(name)
            params[outer] = option
    return params


def get_current_parameter(tag: str | None = None) -> Any:
    """The parameters `get_next_parameter` returned (one value with `tag`)."""
    params = _state["params"]
    if params is None:
        params = get_next_parameter()
    return params if tag is None else params.get(tag)


def _metrics(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        if "default" not in value:
            raise ValueError(f"nni.{what}: a dict result must hold a 'default' entry.")
        # Other entries are reported when they are numbers under identifier names.
        return {
            k: v
            for k, v in value.items()
            if k == "default"
            or (
                isinstance(k, str)
                and k.isidentifier()
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            )
        }
    if isinstance(value, str):  # NNI serialises whatever it is given; numbers only here
        try:
            return {"default": float(value)}
        except ValueError:
            raise ValueError(f"nni.{what}: {value!r} is not a number.") from None
    return {"default": value}


def report_intermediate_result(metric: Any) -> None:
    """Report one intermediate result: the next step (1, 2, ...) of the learning curve."""
    from tunectl.report import report

    _state["step"] += 1
    report(step=_state["step"], **_metrics(metric, "report_intermediate_result"))


def report_final_result(metric: Any) -> None:
    """Report the trial's final result: its objective value."""
    from tunectl.report import report

    report(**_metrics(metric, "report_final_result"))


def get_experiment_id() -> str:
    return os.environ.get("NNI_EXP_ID", "STANDALONE")


def get_trial_id() -> str:
    return os.environ.get("NNI_TRIAL_JOB_ID", "STANDALONE")


def get_sequence_id() -> int:
    try:
        return int(os.environ.get("NNI_TRIAL_SEQ_ID", "0"))
    except ValueError:
        return 0
