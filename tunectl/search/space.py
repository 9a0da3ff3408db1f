"""The search space: checks, NNI's parameter semantics, and finite grids.

Every parameter is sampled by Optuna in an *internal* distribution and shown to the trial
as its *external* value (`to_external`), which is how NNI's types map onto Optuna's:

==============  ==========================================  ================================
type            internal (what the sampler sees)            external (what the trial sees)
==============  ==========================================  ================================
choice          categorical over the indices 0..n-1         values[index]
randint         int low..high-1                             the same int
uniform         float low..high                             the same float
quniform        float low..high                             clip(round(u/q)*q, low, high)
loguniform      float low..high, log                        the same float
qloguniform     float low..high, log                        clip(round(x/q)*q, low, high)
normal          float u in (1e-6, 1-1e-6)                   mu + sigma * Phi^-1(u)
qnormal         as normal                                   round(normal/q)*q
lognormal       as normal                                   exp(normal)
qlognormal      as normal                                   round(lognormal/q)*q
int / float     Optuna's own distribution                   the same value
==============  ==========================================  ================================

Grid and brute-force search need finite spaces: there, quniform and qloguniform are sampled
as a categorical over their distinct quantized values (`internal_distribution(p,
discrete=True)`), which `to_external` maps to themselves.

Quantized values are computed in decimal arithmetic, so `q = 0.1` gives 0.3, never
0.30000000000000004, and they stay integers when `q` and the bounds are integers.

No optuna import here: `plan` and `validate` use this module and must stay fast.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from tunectl.config.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.diags import did_you_mean

# The normal family samples u in (EPS, 1 - EPS): Phi^-1 is infinite at 0 and 1.
NORMAL_EPS = 1e-6
# Grid and brute-force search over more combinations than this are refused.
MAX_GRID = 1_000_000
DISCRETE_ALGORITHMS = ("grid", "bruteforce")

_NORMAL = NormalDist()
_FIELDS = ("low", "high", "q", "mu", "sigma", "step")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "randint": ("low", "high"),
    "uniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "loguniform": ("low", "high"),
    "qloguniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
    "int": ("low", "high"),
    "float": ("low", "high"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {"int": ("step", "log"), "float": ("step", "log")}
# A hint when an attribute is written on a type that does not take it.
_OTHER_TYPE = {
    ("q", "uniform"): "quniform",
    ("q", "loguniform"): "qloguniform",
    ("q", "normal"): "qnormal",
    ("q", "lognormal"): "qlognormal",
    ("step", "uniform"): "float",
    ("log", "uniform"): "float",
    ("step", "randint"): "int",
    ("values", "uniform"): "choice",
    ("values", "randint"): "choice",
}
_CONTROLLER_TYPES = ("choice", "randint", "int")
# Optional packages some of Optuna's samplers import (checked without importing them).
_NEEDS_MODULES = {"gp": ("torch", "scipy"), "qmc": ("scipy",)}
_MODULE_NAMES = {"torch": "PyTorch", "scipy": "SciPy"}


# -- small helpers ------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and value.is_integer())


def _dec(value: float | int) -> Decimal:
    # str() is the shortest repr, so 0.1 becomes Decimal("0.1"), what the user wrote.
    return Decimal(str(value))


def show(value: Any) -> str:
    """A value as the user would write it in HCL."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (True is not 1 in HCL)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _value_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("bool", value)
    if _is_number(value):
        return ("number", float(value))
    return (type(value).__name__, value)


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


# -- NNI semantics ------------------------------------------------------------------------


def _ints(p: ParamSpec) -> bool:
    """Quantized values stay ints when q and the bounds (where the type has them) are."""
    return _is_int(p.q) and all(_is_int(b) for b in (p.low, p.high) if b is not None)


def _quantize(x: float, p: ParamSpec) -> int | float:
    assert p.q is not None
    return _multiple(round(x / p.q), p)


def _multiple(k: int, p: ParamSpec) -> int | float:
    """k * q, clipped to the bounds where the type has them."""
    assert p.q is not None
    value = k * _dec(p.q)
    if p.low is not None and value < _dec(p.low):
        value = _dec(p.low)
    elif p.high is not None and value > _dec(p.high):
        value = _dec(p.high)
    return int(value) if _ints(p) else float(value)


def _float_step_high(p: ParamSpec) -> float:
    """The largest low + k*step not above high (Optuna would adjust it with a warning)."""
    assert p.low is not None and p.high is not None and p.step is not None
    count = int((_dec(p.high) - _dec(p.low)) / _dec(p.step))
    return float(_dec(p.low) + count * _dec(p.step))


def internal_distribution(p: ParamSpec, discrete: bool = False) -> tuple[str, dict[str, Any]]:
    """(kind, kwargs) of the distribution the sampler sees, kind in float | int | categorical.

    The kwargs are those of Optuna's `suggest_float` / `suggest_int` (low, high, step, log)
    or `suggest_categorical` (choices). `discrete` (grid, bruteforce) samples quniform and
    qloguniform as a categorical over their quantized values.
    """
    t = p.type
    if t == "choice":
        return "categorical", {"choices": tuple(range(len(p.values)))}
    if t in ("quniform", "qloguniform") and discrete:
        values = discrete_values(p)
        assert values is not None
        return "categorical", {"choices": tuple(values)}
    if t == "randint":
        assert p.low is not None and p.high is not None
        return "int", {"low": int(p.low), "high": int(p.high) - 1, "step": 1, "log": False}
    if t == "int":
        assert p.low is not None and p.high is not None
        low, step = int(p.low), int(p.step or 1)
        high = low + (int(p.high) - low) // step * step
        return "int", {"low": low, "high": high, "step": step, "log": bool(p.log)}
    if t in ("normal", "qnormal", "lognormal", "qlognormal"):
        return "float", {"low": NORMAL_EPS, "high": 1 - NORMAL_EPS, "step": None, "log": False}
    assert p.low is not None and p.high is not None
    log = t in ("loguniform", "qloguniform") or (t == "float" and bool(p.log))
    if t == "float" and p.step is not None:
        top = _float_step_high(p)
        return "float", {"low": float(p.low), "high": top, "step": float(p.step), "log": False}
    return "float", {"low": float(p.low), "high": float(p.high), "step": None, "log": log}


def to_external(p: ParamSpec, internal: Any) -> Any:
    """The value a trial sees for the sampler's `internal` value of `p`."""
    t = p.type
    if t == "choice":
        return p.values[int(internal)]
    if t in ("randint", "int"):
        return int(internal)
    if t in ("uniform", "loguniform"):
        return float(internal)
    if t in ("quniform", "qloguniform"):
        return _quantize(float(internal), p)
    if t == "float":
        if p.step is None:
            return float(internal)
        assert p.low is not None
        k = round((float(internal) - p.low) / p.step)
        return float(_dec(p.low) + k * _dec(p.step))
    assert p.mu is not None and p.sigma is not None
    u = min(max(float(internal), NORMAL_EPS), 1 - NORMAL_EPS)
    x = p.mu + p.sigma * _NORMAL.inv_cdf(u)
    if t == "normal":
        return x
    if t == "qnormal":
        return _quantize(x, p)
    if t == "lognormal":
        return math.exp(x)
    return _quantize(math.exp(x), p)


# -- finite grids -------------------------------------------------------------------------


def _q_range(p: ParamSpec) -> range:
    assert p.low is not None and p.high is not None and p.q is not None
    return range(round(p.low / p.q), round(p.high / p.q) + 1)


def value_count(p: ParamSpec) -> int | None:
    """How many distinct values `p` takes; None when infinitely many."""
    t = p.type
    if t == "choice":
        return len(p.values)
    if t == "randint" and p.low is not None and p.high is not None:
        return max(0, int(p.high) - int(p.low))
    if t == "int" and p.low is not None and p.high is not None:
        return max(0, (int(p.high) - int(p.low)) // int(p.step or 1) + 1)
    if t == "float" and p.step is not None and p.low is not None and p.high is not None:
        return max(0, int((_dec(p.high) - _dec(p.low)) / _dec(p.step)) + 1)
    if t in ("quniform", "qloguniform") and None not in (p.low, p.high, p.q):
        return len(_q_range(p))
    return None


def discrete_values(p: ParamSpec) -> list[Any] | None:
    """The internal values of a finite parameter, in order; None when infinite."""
    t = p.type
    if value_count(p) is None:
        return None
    if t in ("quniform", "qloguniform"):
        assert p.q is not None
        out: list[Any] = []
        for k in _q_range(p):
            value = _multiple(k, p)
            if not out or value != out[-1]:
                out.append(value)
        return out
    if t == "float":
        assert p.low is not None and p.step is not None
        count = value_count(p) or 0
        return [float(_dec(p.low) + k * _dec(p.step)) for k in range(count)]
    kind, kwargs = internal_distribution(p)
    if kind == "categorical":
        return list(kwargs["choices"])
    return list(range(kwargs["low"], kwargs["high"] + 1, kwargs["step"]))


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
    if algorithm.name not in DISCRETE_ALGORITHMS:
        return None
    return _count_combinations(params)


# -- checks -------------------------------------------------------------------------------


def validate_param(p: ParamSpec) -> list[str]:
    """Sentences saying why `p` is impossible; empty when it is fine.

    Conditions (`when`) need the other parameters: `validate_space` checks them.
    """
    t = p.type
    if t not in _REQUIRED:
        return [f'"{t}" is not a parameter type.']
    errors: list[str] = []
    needed = _REQUIRED[t]
    allowed = needed + _OPTIONAL.get(t, ())
    for name in _FIELDS:
        value = getattr(p, name)
        if value is None:
            if name in needed:
                errors.append(f'type "{t}" needs {name}: add it.')
            continue
        if name not in allowed:
            other = _OTHER_TYPE.get((name, t))
            hint = f', or use type "{other}"' if other else ""
            errors.append(f'{name} does not apply to type "{t}": remove it{hint}.')
        elif not _is_number(value) or not math.isfinite(value):
            errors.append(f"{name} must be a finite number, got {show(value)}.")
    if p.log and "log" not in allowed:
        other = _OTHER_TYPE.get(("log", t), "")
        hint = f', or use type "{other}"' if other else ""
        errors.append(f'log does not apply to type "{t}": remove it{hint}.')
    if p.values and "values" not in allowed:
        other = _OTHER_TYPE.get(("values", t), "")
        hint = f', or use type "{other}"' if other else ""
        errors.append(f'values does not apply to type "{t}": remove it{hint}.')
    if errors:
        return errors
    if t == "choice":
        return _check_choice(p)
    for name in ("q", "sigma", "step"):
        value = getattr(p, name)
        if value is not None and value <= 0:
            errors.append(f"{name} must be greater than 0, got {show(value)}.")
    low, high = p.low, p.high
    if low is None or high is None:
        return errors
    if t in ("randint", "int"):
        for name in ("low", "high", "step"):
            value = getattr(p, name)
            if value is not None and not _is_whole(value):
                errors.append(f'type "{t}" needs whole numbers: {name} is {show(value)}.')
        if errors:
            return errors
    if t == "randint" and high <= low:
        errors.append(
            f"high ({show(high)}) must be greater than low ({show(low)}): randint draws "
            "from low to high - 1 (high is excluded)."
        )
    elif t == "int" and high < low:
        errors.append(f"high ({show(high)}) must not be less than low ({show(low)}).")
    elif t not in ("randint", "int") and high <= low:
        errors.append(f"high ({show(high)}) must be greater than low ({show(low)}).")
    if t in ("loguniform", "qloguniform") and low <= 0:
        errors.append(f'type "{t}" samples log(x), so low must be greater than 0, got {show(low)}.')
    if t == "float" and p.log:
        if low <= 0:
            errors.append(f"log = true needs low greater than 0, got {show(low)}.")
        if p.step is not None:
            errors.append("step cannot be combined with log = true: remove one of them.")
    if t == "int" and p.log:
        if low < 1:
            errors.append(f'log = true needs low of at least 1 for type "int", got {show(low)}.')
        if p.step not in (None, 1):
            errors.append(
                'step cannot be combined with log = true for type "int" (log-scaled '
                "integers use step 1): remove one of them."
            )
    return errors


def _check_choice(p: ParamSpec) -> list[str]:
    if not p.values:
        return ["values must list at least one value."]
    errors = []
    seen: set[tuple[str, Any]] = set()
    for value in p.values:
        ok = value is None or isinstance(value, str | bool | int | float)
        if not ok:
            errors.append(
                f"values may hold strings, numbers, booleans or null, not {show(value)}: "
                "write it as a string and parse it in the trial."
            )
            continue
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"values must be finite numbers, got {value}.")
            continue
        key = _value_key(value)
        if key in seen:
            errors.append(f"values lists {show(value)} more than once: remove the duplicate.")
        seen.add(key)
    return errors


def _takes(p: ParamSpec, value: Any) -> bool:
    """Whether the discrete parameter `p` can take the external `value`."""
    if p.type == "choice":
        return any(_same(v, value) for v in p.values)
    if not _is_number(value) or not _is_whole(value):
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


def _finite_fix(p: ParamSpec) -> str:
    if p.type == "uniform":
        return 'use type "quniform" with q'
    if p.type == "loguniform":
        return 'use type "qloguniform" with q'
    if p.type == "float":
        return "add step" if not p.log else "remove log and add step"
    return 'give it bounds and a step (type "quniform", "int" or "choice")'


def validate_space(
    algorithm: Algorithm, params: Sequence[ParamSpec]
) -> list[tuple[str | None, str]]:
    """(parameter name or None, sentence) for each reason the space cannot be searched.

    Checks conditions (unknown names, impossible values, cycles), what the algorithm needs
    (finite spaces, PyTorch, numeric parameters) and its settings. Each parameter's own
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
            elif ref.type not in _CONTROLLER_TYPES:
                errors.append(
                    (
                        p.name,
                        f'{where} can only test a choice, randint or int parameter, but "{key}" '
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
    name = algorithm.name
    if name in DISCRETE_ALGORITHMS:
        finite = True
        for p in params:
            if p.name in valid and value_count(p) is None:
                finite = False
                errors.append(
                    (
                        p.name,
                        f'Parameter "{p.name}" ({p.type}) takes infinitely many values, and '
                        f'"{name}" search needs a finite set: {_finite_fix(p)}, or choose '
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
    missing = [m for m in _NEEDS_MODULES.get(name, ()) if importlib.util.find_spec(m) is None]
    if missing:
        names = " and ".join(_MODULE_NAMES[m] for m in missing)
        verb = "is" if len(missing) == 1 else "are"
        errors.append(
            (
                None,
                f'The "{name}" algorithm needs {names}, which {verb} not installed: run '
                f'`pip install {" ".join(missing)}`, or choose another algorithm such as "tpe".',
            )
        )
    if name == "cmaes" and params and all(p.type == "choice" for p in params):
        errors.append(
            (
                None,
                "CMA-ES cannot search choice parameters, and every parameter here is a choice: "
                'choose "tpe", "random", "grid" or "evolution" instead.',
            )
        )
    settings = ALGORITHM_SETTINGS.get(name)
    if settings is not None:
        what = f'the "{name}" algorithm'
        errors.extend((None, s) for s in _check_settings(what, settings, algorithm.settings))
    return errors


# -- settings -----------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # None when fine, else what the value must be


def _whole(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        ok = _is_whole(value) and value >= minimum
        return None if ok else f"a whole number of at least {minimum}"

    return check


def _number(low: float | None = None, high: float | None = None, above: bool = False) -> Check:
    def check(value: Any) -> str | None:
        ok = _is_number(value) and math.isfinite(value)
        ok = ok and (low is None or (value > low if above else value >= low))
        ok = ok and (high is None or value <= high)
        if ok:
            return None
        if low is not None and high is not None:
            return f"a number from {low:g} to {high:g}"
        if low is not None:
            return f"a number {'greater than' if above else 'of at least'} {low:g}"
        return "a number"

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(f'"{c}"' for c in choices)

    return check


def _whole_or_auto(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        ok = value == "auto" or (_is_whole(value) and value >= minimum)
        return None if ok else f'"auto" or a whole number of at least {minimum}'

    return check


_SEED = {"seed": _whole(0)}
ALGORITHM_SETTINGS: dict[str, dict[str, Check]] = {
    "tpe": _SEED
    | {
        "n_startup_trials": _whole(0),
        "n_ei_candidates": _whole(1),
        "multivariate": _boolean,
        "constant_liar": _boolean,
    },
    "random": _SEED,
    "grid": _SEED,
    "gp": _SEED | {"n_startup_trials": _whole(0)},
    "cmaes": _SEED
    | {"sigma0": _number(0, above=True), "n_startup_trials": _whole(0), "popsize": _whole(4)},
    "evolution": _SEED
    | {
        "population_size": _whole(2),
        "mutation_prob": _number(0, 1),
        "crossover_prob": _number(0, 1),
    },
    "qmc": _SEED | {"qmc_type": _one_of("sobol", "halton"), "scramble": _boolean},
    "bruteforce": _SEED,
}
_STEPS = {
    "start_step": _whole(0),
    "n_startup_trials": _whole(0),
    "interval_steps": _whole(1),
    "min_trials": _whole(1),
}
PRUNER_SETTINGS: dict[str, dict[str, Check]] = {
    "median": _STEPS,
    "percentile": _STEPS | {"percentile": _number(0, 100)},
    "hyperband": {
        "min_resource": _whole(1),
        "max_resource": _whole_or_auto(1),
        "reduction_factor": _whole(2),
    },
    "successive_halving": {
        "min_resource": _whole_or_auto(1),
        "reduction_factor": _whole(2),
        "min_early_stopping_rate": _whole(0),
    },
    "threshold": {
        "lower": _number(),
        "upper": _number(),
        "start_step": _whole(0),
        "interval_steps": _whole(1),
    },
    "none": {},
}


def _check_settings(
    what: str, known: Mapping[str, Check], settings: Sequence[tuple[str, Any]]
) -> list[str]:
    errors = []
    for key, value in settings:
        check = known.get(key)
        if check is None:
            names = ", ".join(known) if known else "none"
            errors.append(
                f'"{key}" is not a setting of {what}.{did_you_mean(key, known)} '
                f"Known settings: {names}."
            )
        elif (expected := check(value)) is not None:
            errors.append(f"{key} of {what} must be {expected}, got {show(value)}.")
    return errors


def validate_pruner(es: EarlyStopping) -> list[str]:
    """Sentences saying why an `early_stopping` block is impossible; empty when fine."""
    known = PRUNER_SETTINGS.get(es.name)
    if known is None:
        hint = did_you_mean(es.name, PRUNER_SETTINGS)
        return [f'"{es.name}" is not an early stopping rule.{hint}']
    what = f'early_stopping "{es.name}"'
    errors = _check_settings(what, known, es.settings)
    settings = dict(es.settings)
    if es.name == "percentile" and "percentile" not in settings:
        errors.append(f"{what} needs percentile (0 to 100): add it.")
    if es.name == "threshold":
        lower, upper = settings.get("lower"), settings.get("upper")
        if lower is None and upper is None:
            errors.append(f"{what} needs lower, upper or both: add one.")
        elif isinstance(lower, int | float) and isinstance(upper, int | float) and lower > upper:
            errors.append(f"lower ({show(lower)}) must not be greater than upper ({show(upper)}).")
    if es.name == "hyperband":
        low, high = settings.get("min_resource", 1), settings.get("max_resource", "auto")
        if _is_whole(low) and _is_whole(high) and low >= high:
            errors.append(
                f"min_resource ({show(low)}) must be less than max_resource ({show(high)})."
            )
    return errors
