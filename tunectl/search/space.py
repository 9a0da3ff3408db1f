"""The search space: conditions, finite grids, and the checks of a space.

What each parameter type means (internal distribution, external value, value count, own
checks) is its entry in `tunectl.search.params.PARAM_TYPES`; what each algorithm needs of a
space is its entry in `tunectl.search.algorithms.ALGORITHMS`. This module puts them
together: which parameters exist given `when`, every combination of a finite space, and
the sentences explaining why a space cannot be searched.

No optuna import here: `plan` and `validate` use this module and must stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.diags import did_you_mean
from tunectl.search.algorithms import ALGORITHMS, requirement_error
from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.params import PARAM_TYPES, Internal, dec
from tunectl.search.settings import check_settings, is_number, is_whole, show

# Grid and brute-force search over more combinations than this are refused.
MAX_GRID = 1_000_000

_FIELDS = ("low", "high", "q", "mu", "sigma", "step")


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (True is not 1 in HCL)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def is_discrete(algorithm: Algorithm) -> bool:
    """Whether `algorithm` searches a finite space (grid, bruteforce)."""
    entry = ALGORITHMS.get(algorithm.name)
    return entry is not None and entry.discrete


# -- conditions ---------------------------------------------------------------------------


def is_active(p: ParamSpec, assigned: Mapping[str, Any]) -> bool:
    """Whether `p` exists, given the external values of the parameters active so far.

    Every `when` key must itself be active (present in `assigned`) with the given value.
    """
    return all(key in assigned and _same(assigned[key], value) for key, value in p.when)


def active_params(params: Sequence[ParamSpec], assigned: Mapping[str, Any]) -> list[ParamSpec]:
    """The parameters of `params` whose conditions hold for `assigned`."""
    return [p for p in params if is_active(p, assigned)]


def ordered_params(params: Sequence[ParamSpec]) -> list[ParamSpec]:
    """`params` with every parameter after those its `when` names, else in declared order.

    Parameters in a cycle or naming unknown parameters come last (they are never active).
    """
    names = {p.name for p in params}
    placed: set[str] = set()
    out: list[ParamSpec] = []
    pending = list(params)
    progress = True
    while pending and progress:
        progress = False
        for p in pending:
            if all(key in placed for key, _ in p.when if key in names) and not any(
                key == p.name for key, _ in p.when
            ):
                out.append(p)
                placed.add(p.name)
                pending.remove(p)
                progress = True
                break
    return out + pending


# -- NNI semantics (each type's entry) ---------------------------------------------------


def internal_distribution(p: ParamSpec, discrete: bool = False) -> Internal:
    """(kind, kwargs) of the distribution the sampler sees, kind in float | int | categorical.

    The kwargs are those of Optuna's `suggest_float` / `suggest_int` (low, high, step, log)
    or `suggest_categorical` (choices). `discrete` (grid, bruteforce) samples quniform and
    qloguniform as a categorical over their quantized values.
    """
    return PARAM_TYPES[p.type].internal(p, discrete)


def to_external(p: ParamSpec, internal: Any) -> Any:
    """The value a trial sees for the sampler's `internal` value of `p`."""
    return PARAM_TYPES[p.type].external(p, internal)


# -- finite grids -------------------------------------------------------------------------


def value_count(p: ParamSpec) -> int | None:
    """How many distinct values `p` takes; None when infinitely many."""
    return PARAM_TYPES[p.type].count(p)


def discrete_values(p: ParamSpec) -> list[Any] | None:
    """The internal values of a finite parameter, in order; None when infinite."""
    count = value_count(p)
    if count is None:
        return None
    kind, kw = internal_distribution(p, discrete=True)
    if kind == "categorical":
        return list(kw["choices"])
    if kind == "int":
        return list(range(kw["low"], kw["high"] + 1, kw["step"]))
    return [float(dec(kw["low"]) + k * dec(kw["step"])) for k in range(count)]


def grid_combinations(params: Sequence[ParamSpec]) -> list[dict[str, Any]]:
    """Every combination of internal values that can exist, inactive parameters left out.

    Deterministic order (declared order, branches of conditions in value order).
    """
    order = ordered_params(params)
    out: list[dict[str, Any]] = []

    def walk(i: int, internal: dict[str, Any], external: dict[str, Any]) -> None:
        if i == len(order):
            out.append(dict(internal))
            return
        p = order[i]
        if not is_active(p, external):
            walk(i + 1, internal, external)
            return
        for value in discrete_values(p) or ():
            internal[p.name] = value
            external[p.name] = to_external(p, value)
            walk(i + 1, internal, external)
        internal.pop(p.name, None)
        external.pop(p.name, None)

    walk(0, {}, {})
    return out


def _count_combinations(params: Sequence[ParamSpec]) -> int | None:
    """The number of existing combinations, enumerating only the branches of `when`."""
    order = ordered_params(params)
    counts = {p.name: value_count(p) for p in order}
    if any(count is None for count in counts.values()):
        return None
    controllers = {key for p in order for key, _ in p.when}

    def count(i: int, external: dict[str, Any]) -> int:
        if i == len(order):
            return 1
        p = order[i]
        if not is_active(p, external):
            return count(i + 1, external)
        if p.name not in controllers:
            return (counts[p.name] or 0) * count(i + 1, external)
        total = 0
        for value in discrete_values(p) or ():
            external[p.name] = to_external(p, value)
            total += count(i + 1, external)
        external.pop(p.name, None)
        return total

    return count(0, {})


def space_size(algorithm: Algorithm, params: Sequence[ParamSpec]) -> int | None:
    """For grid and bruteforce, the exact number of distinct combinations; else None."""
    if not is_discrete(algorithm):
        return None
    return _count_combinations(params)


# -- checks -------------------------------------------------------------------------------


def validate_param(p: ParamSpec) -> list[str]:
    """Sentences saying why `p` is impossible; empty when it is fine.

    Conditions (`when`) need the other parameters: `validate_space` checks them.
    """
    t = p.type
    entry = PARAM_TYPES.get(t)
    if entry is None:
        return [f'"{t}" is not a parameter type.']
    errors: list[str] = []
    allowed = entry.required + entry.optional
    for name in _FIELDS:
        value = getattr(p, name)
        if value is None:
            if name in entry.required:
                errors.append(f'type "{t}" needs {name}: add it.')
            continue
        if name not in allowed:
            errors.append(f'{name} does not apply to type "{t}": remove it{_hint(t, name)}.')
        elif not is_number(value) or not math.isfinite(value):
            errors.append(f"{name} must be a finite number, got {show(value)}.")
    for name, written in (("log", p.log), ("values", p.values)):
        if written and name not in allowed:
            errors.append(f'{name} does not apply to type "{t}": remove it{_hint(t, name)}.')
    if errors:
        return errors
    for name in ("q", "sigma", "step"):
        value = getattr(p, name)
        if value is not None and value <= 0:
            errors.append(f"{name} must be greater than 0, got {show(value)}.")
    return errors + entry.check(p)


def _hint(t: str, name: str) -> str:
    other = PARAM_TYPES[t].hints.get(name)
    return f', or use type "{other}"' if other else ""


def _takes(p: ParamSpec, value: Any) -> bool:
    """Whether the discrete parameter `p` can take the external `value`."""
    if p.type == "choice":
        return any(_same(v, value) for v in p.values)
    if not is_number(value) or not is_whole(value):
        return False
    _, kw = internal_distribution(p)
    return kw["low"] <= value <= kw["high"] and (value - kw["low"]) % kw["step"] == 0


def _describe(p: ParamSpec) -> str:
    if p.type == "choice":
        return "its values are " + ", ".join(show(v) for v in p.values)
    _, kwargs = internal_distribution(p)
    step = f" in steps of {kwargs['step']}" if kwargs["step"] != 1 else ""
    return f"it takes whole numbers from {kwargs['low']} to {kwargs['high']}{step}"


def _cycle(params: Sequence[ParamSpec]) -> list[str] | None:
    edges = {p.name: [key for key, _ in p.when] for p in params}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for nxt in edges.get(name, ()):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for p in params:
        if p.name not in state and (found := visit(p.name)):
            return found
    return None


def _controllers() -> str:
    names = [t.name for t in PARAM_TYPES.values() if t.controller]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def validate_space(
    algorithm: Algorithm, params: Sequence[ParamSpec]
) -> list[tuple[str | None, str]]:
    """(parameter name or None, sentence) for each reason the space cannot be searched.

    Checks conditions (unknown names, impossible values, cycles), what the algorithm needs
    (finite spaces, packages to install, its own checks) and its settings. Each parameter's own
    attributes are `validate_param`'s job; a parameter failing it is skipped here, so the
    caller reports each mistake once.
    """
    errors: list[tuple[str | None, str]] = []
    by_name = {p.name: p for p in params}
    valid = {p.name for p in params if not validate_param(p)}
    for p in params:
        for key, value in p.when:
            ref = by_name.get(key)
            where = f'Parameter "{p.name}": when'
            if key == p.name:
                errors.append((p.name, f"{where} cannot name the parameter itself."))
            elif ref is None:
                hint = did_you_mean(key, [q.name for q in params if q.name != p.name])
                sentence = f'{where} names "{key}", which is not a parameter of this experiment.'
                errors.append((p.name, sentence + hint))
            elif ref.type not in PARAM_TYPES or not PARAM_TYPES[ref.type].controller:
                errors.append(
                    (
                        p.name,
                        f'{where} can only test a {_controllers()} parameter, but "{key}" '
                        f"is {ref.type}: its values are not known in advance.",
                    )
                )
            elif key in valid and not _takes(ref, value):
                errors.append(
                    (
                        p.name,
                        f'{where} requires {key} = {show(value)}, but "{key}" never takes that '
                        f"value: {_describe(ref)}.",
                    )
                )
    cycle = _cycle(params)
    if cycle and len(cycle) > 2:
        path = " -> ".join(cycle)
        errors.append((cycle[0], f"The when conditions form a cycle: {path}; remove one of them."))
    entry = ALGORITHMS.get(algorithm.name)
    if entry is None:
        return errors  # the schema refuses unknown algorithm names
    name = entry.name
    if entry.discrete:
        finite = True
        for p in params:
            if p.name in valid and value_count(p) is None:
                finite = False
                fix = PARAM_TYPES[p.type].finite_fix(p)
                errors.append(
                    (
                        p.name,
                        f'Parameter "{p.name}" ({p.type}) takes infinitely many values, and '
                        f'"{name}" search needs a finite set: {fix}, or choose '
                        'another algorithm such as "tpe".',
                    )
                )
        if finite and len(valid) == len(params) and not errors:
            size = _count_combinations(params) or 0
            if size > MAX_GRID:
                errors.append(
                    (
                        None,
                        f'"{name}" search would enumerate {size:,} combinations, more than the '
                        f"{MAX_GRID:,} tunectl allows: use a coarser q or step, fewer values, "
                        'or another algorithm such as "tpe".',
                    )
                )
    if (install := requirement_error(entry)) is not None:
        errors.append((None, install))
    if entry.check_space is not None:
        errors.extend((None, s) for s in entry.check_space(params))
    what = f'the "{name}" algorithm'
    errors.extend(
        (None, s) for s in check_settings(what, entry.settings, algorithm.settings, entry.hints)
    )
    return errors
