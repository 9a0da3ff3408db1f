"""Known parameter sets run first: an experiment's `enqueue = [{ lr = 0.01 }, ...]`.

Each set names a value for every parameter that exists given the set's own values (`when`)
and no other. `check_enqueued` says, per set, why it is not in the search space;
`to_internal` turns a set's values into the values the sampler sees (what the engine hands
Optuna's `enqueue_trial`, and how the state stores a trial's parameters), the inverse of
`tunectl.search.space.to_external`: an index for `choice`, the uniform variable for the
normal family, the value itself otherwise. A value is in the space when it maps back to
itself, so a quantized type takes only its multiples of `q`. `fits` applies the same rule
to a finished trial a warm start carries into a new search space.

No optuna import here: `validate` and `plan` use this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from tunectl.diags import did_you_mean
from tunectl.search.model import ParamSpec
from tunectl.search.params import NORMAL_EPS
from tunectl.search.settings import is_number, is_whole, show
from tunectl.search.space import internal_distribution, is_active, ordered_params, to_external

_NORMAL = NormalDist()


class OutsideSpace(ValueError):
    """A value a parameter never takes; the message says what it takes."""


def _number(p: ParamSpec, value: Any) -> float:
    if not is_number(value) or not math.isfinite(value):
        raise OutsideSpace(f"it takes numbers, not {show(value)}")
    return float(value)


def _unit(p: ParamSpec, z: float) -> float:
    """The uniform variable the normal family maps to the standard normal value `z`."""
    u = _NORMAL.cdf(z)
    if not NORMAL_EPS <= u <= 1 - NORMAL_EPS:
        raise OutsideSpace("it is too far from mu for the sampler to reach")
    return u


def _raw_internal(p: ParamSpec, value: Any, discrete: bool) -> Any:
    if p.type == "choice":
        for index, option in enumerate(p.values):
            if type(option) is type(value) and option == value:
                return index
        for index, option in enumerate(p.values):
            if is_number(option) and is_number(value) and option == value:
                return index
        raise OutsideSpace("its values are " + ", ".join(show(v) for v in p.values))
    x = _number(p, value)
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        assert p.mu is not None and p.sigma is not None
        if p.type.endswith("lognormal"):
            if x <= 0:
                raise OutsideSpace("it takes numbers greater than 0")
            x = math.log(x)
        return _unit(p, (x - p.mu) / p.sigma)
    kind, kw = internal_distribution(p, discrete)
    if kind == "categorical":  # quniform / qloguniform under grid or bruteforce
        for option in kw["choices"]:
            if option == x:
                return option
        raise OutsideSpace(_describe(p, discrete))
    if kind == "int":
        if not is_whole(x) or (int(x) - kw["low"]) % kw["step"]:
            raise OutsideSpace(_describe(p, discrete))
        return int(x)
    return x


def _describe(p: ParamSpec, discrete: bool) -> str:
    kind, kw = internal_distribution(p, discrete)
    if kind == "categorical":
        return "its values are " + ", ".join(show(v) for v in kw["choices"])
    low, high = show(kw["low"]), show(kw["high"])
    step = kw.get("step")
    if p.type in ("quniform", "qloguniform"):
        return f"it takes multiples of {show(p.q)} from {low} to {high}"
    if step not in (None, 1):
        return f"it takes {low} to {high} in steps of {show(step)}"
    return f"it takes {'whole numbers' if kind == 'int' else 'numbers'} from {low} to {high}"


def to_internal(p: ParamSpec, value: Any, discrete: bool = False) -> Any:
    """The sampler's value for the external `value` of `p`; raises `OutsideSpace` when
    `p` never takes `value` (`discrete`: as grid and bruteforce sample, see
    `tunectl.search.params`)."""
    internal = _raw_internal(p, value, discrete)
    if p.type == "choice":
        return internal
    kind, kw = internal_distribution(p, discrete)
    if kind != "categorical" and not kw["low"] <= internal <= kw["high"]:
        raise OutsideSpace(_describe(p, discrete))
    back = to_external(p, internal)
    if not math.isclose(float(back), float(value), rel_tol=1e-9, abs_tol=1e-12):
        raise OutsideSpace(_describe(p, discrete))
    return internal


def check_enqueued(
    params: Sequence[ParamSpec], values: Mapping[str, Any], discrete: bool = False
) -> list[tuple[str | None, str]]:
    """(parameter name or None, sentence) for each reason the set `values` is not in the
    space of `params`; empty when it is."""
    by_name = {p.name: p for p in params}
    errors: list[tuple[str | None, str]] = []
    for name in values:
        if name not in by_name:
            known = ", ".join(by_name)
            errors.append(
                (
                    name,
                    f'"{name}" is not a parameter of this experiment.'
                    f"{did_you_mean(name, by_name)} Its parameters: {known}.",
                )
            )
    assigned: dict[str, Any] = {}
    for p in ordered_params(params):
        active = is_active(p, assigned)
        if p.name not in values:
            if active:
                errors.append((p.name, f'The set gives no value for "{p.name}": add one.'))
            continue
        value = values[p.name]
        if not active:
            cond = ", ".join(f"{k} = {show(v)}" for k, v in p.when)
            errors.append(
                (
                    p.name,
                    f'"{p.name}" exists only when {cond}, which this set does not give: remove it.',
                )
            )
            continue
        try:
            to_internal(p, value, discrete)
        except OutsideSpace as exc:
            errors.append(
                (p.name, f'{p.name} = {show(value)} is outside the space of "{p.name}": {exc}.')
            )
        assigned[p.name] = value
    return errors


def internal_set(
    params: Sequence[ParamSpec], values: Mapping[str, Any], discrete: bool = False
) -> dict[str, Any]:
    """The sampler's values of a set `check_enqueued` accepts (active parameters only)."""
    by_name = {p.name: p for p in params}
    return {
        name: to_internal(by_name[name], value, discrete)
        for name, value in values.items()
        if name in by_name
    }


def fits(params: Sequence[ParamSpec], values: Mapping[str, Any], discrete: bool = False) -> bool:
    """Whether a finished trial with parameter `values` (external, active parameters only,
    as the state keeps them) is a point of the space of `params`: what a warm start
    carries. It fits when `check_enqueued` finds nothing: every value is one its
    parameter takes now (inside a narrowed range, a kept choice, a multiple of `q`), every
    parameter active given the trial's values has one (a parameter added since, or one
    whose condition now holds, has no default to fill in, so the trial does not fit), and
    no value is of a parameter that is gone or whose `when` no longer holds."""
    return not check_enqueued(params, values, discrete)


def carried(
    params: Sequence[ParamSpec],
    finished: Sequence[tuple[Mapping[str, Any], float]],
    *,
    discrete: bool = False,
    direction: str = "maximize",
    top: int | None = None,
) -> list[int]:
    """The indexes in `finished` ((parameter values, objective value) of complete trials)
    a warm start carries into the space of `params`: those that `fits` accepts, in their
    order; with `top`, only the best `top` of them by `direction`, best first (the lower
    index wins a tie)."""
    fitting = [i for i, (values, _) in enumerate(finished) if fits(params, values, discrete)]
    if top is None:
        return fitting
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(fitting, key=lambda i: (sign * finished[i][1], i))[:top]
