"""The parameter-type registry: every `param { type = "..." }` tunectl knows, in one table.

Every parameter is sampled by Optuna in an *internal* distribution and shown to the trial
as its *external* value, which is how NNI's types map onto Optuna's:

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

An entry holds one type's attributes (required, optional, hints toward another type), its
own checks, its documentation line, its internal distribution (the Optuna distribution's
arguments: what the engine builds), the mapping to external values and its value count.
Adding a type is adding one entry to `PARAM_TYPES`.

Grid and brute-force search need finite spaces: there, quniform and qloguniform are sampled
as a categorical over their distinct quantized values (`discrete=True`), which `external`
maps to themselves. Quantized values are computed in decimal arithmetic, so `q = 0.1` gives
0.3, never 0.30000000000000004, and they stay integers when `q` and the bounds are integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from tunectl.search.model import ParamSpec
from tunectl.search.settings import is_int, is_whole, show

# The normal family samples u in (EPS, 1 - EPS): Phi^-1 is infinite at 0 and 1.
NORMAL_EPS = 1e-6
_NORMAL = NormalDist()

_GENERIC_FIX = 'give it bounds and a step (type "quniform", "int" or "choice")'

# (kind, kwargs): kind in float | int | categorical; the kwargs are those of Optuna's
# suggest_float / suggest_int (low, high, step, log) or suggest_categorical (choices).
Internal = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class ParamType:
    name: str
    doc: str
    required: tuple[str, ...]
    internal: Callable[[ParamSpec, bool], Internal]  # (spec, discrete)
    external: Callable[[ParamSpec, Any], Any]  # (spec, internal value)
    optional: tuple[str, ...] = ()
    # A hint when an attribute is written that this type does not take: attribute -> type.
    hints: Mapping[str, str] = field(default_factory=dict)
    # How many values it takes (None: infinitely many); the default says infinitely many.
    count: Callable[[ParamSpec], int | None] = lambda p: None
    # Its own checks, once the attributes are present and finite numbers.
    check: Callable[[ParamSpec], list[str]] = lambda p: []
    # Whether `when` may test it (its values are known in advance).
    controller: bool = False
    # How to make it finite, for grid and brute-force search.
    finite_fix: Callable[[ParamSpec], str] = lambda p: _GENERIC_FIX


def dec(value: float | int) -> Decimal:
    # str() is the shortest repr, so 0.1 becomes Decimal("0.1"), what the user wrote.
    return Decimal(str(value))


# -- quantization -------------------------------------------------------------------------


def _ints(p: ParamSpec) -> bool:
    """Quantized values stay ints when q and the bounds (where the type has them) are."""
    return is_int(p.q) and all(is_int(b) for b in (p.low, p.high) if b is not None)


def _quantize(x: float, p: ParamSpec) -> int | float:
    assert p.q is not None
    return multiple(round(x / p.q), p)


def multiple(k: int, p: ParamSpec) -> int | float:
    """k * q, clipped to the bounds where the type has them."""
    assert p.q is not None
    value = k * dec(p.q)
    if p.low is not None and value < dec(p.low):
        value = dec(p.low)
    elif p.high is not None and value > dec(p.high):
        value = dec(p.high)
    return int(value) if _ints(p) else float(value)


def q_range(p: ParamSpec) -> range:
    assert p.low is not None and p.high is not None and p.q is not None
    return range(round(p.low / p.q), round(p.high / p.q) + 1)


def _float_step_high(p: ParamSpec) -> float:
    """The largest low + k*step not above high (Optuna would adjust it with a warning)."""
    assert p.low is not None and p.high is not None and p.step is not None
    count = int((dec(p.high) - dec(p.low)) / dec(p.step))
    return float(dec(p.low) + count * dec(p.step))


def quantized_values(p: ParamSpec) -> list[Any]:
    """The distinct values of quniform / qloguniform, in order."""
    out: list[Any] = []
    for k in q_range(p):
        value = multiple(k, p)
        if not out or value != out[-1]:
            out.append(value)
    return out


# -- internal distributions ---------------------------------------------------------------


def _floats(p: ParamSpec, log: bool = False) -> Internal:
    assert p.low is not None and p.high is not None
    return "float", {"low": float(p.low), "high": float(p.high), "step": None, "log": log}


def _quantized(log: bool) -> Callable[[ParamSpec, bool], Internal]:
    def internal(p: ParamSpec, discrete: bool) -> Internal:
        if discrete:
            return "categorical", {"choices": tuple(quantized_values(p))}
        return _floats(p, log)

    return internal


def _unit(p: ParamSpec, discrete: bool) -> Internal:
    return "float", {"low": NORMAL_EPS, "high": 1 - NORMAL_EPS, "step": None, "log": False}


def _randint(p: ParamSpec, discrete: bool) -> Internal:
    assert p.low is not None and p.high is not None
    return "int", {"low": int(p.low), "high": int(p.high) - 1, "step": 1, "log": False}


def _int(p: ParamSpec, discrete: bool) -> Internal:
    assert p.low is not None and p.high is not None
    low, step = int(p.low), int(p.step or 1)
    high = low + (int(p.high) - low) // step * step
    return "int", {"low": low, "high": high, "step": step, "log": bool(p.log)}


def _float(p: ParamSpec, discrete: bool) -> Internal:
    if p.step is not None:
        assert p.low is not None
        top = _float_step_high(p)
        return "float", {"low": float(p.low), "high": top, "step": float(p.step), "log": False}
    return _floats(p, bool(p.log))


# -- external values ----------------------------------------------------------------------


def _normal(p: ParamSpec, internal: Any) -> float:
    assert p.mu is not None and p.sigma is not None
    u = min(max(float(internal), NORMAL_EPS), 1 - NORMAL_EPS)
    return p.mu + p.sigma * _NORMAL.inv_cdf(u)


def _float_external(p: ParamSpec, internal: Any) -> float:
    if p.step is None:
        return float(internal)
    assert p.low is not None
    k = round((float(internal) - p.low) / p.step)
    return float(dec(p.low) + k * dec(p.step))


# -- value counts -------------------------------------------------------------------------


def _randint_count(p: ParamSpec) -> int | None:
    if p.low is None or p.high is None:
        return None
    return max(0, int(p.high) - int(p.low))


def _int_count(p: ParamSpec) -> int | None:
    if p.low is None or p.high is None:
        return None
    return max(0, (int(p.high) - int(p.low)) // int(p.step or 1) + 1)


def _float_count(p: ParamSpec) -> int | None:
    if p.step is None or p.low is None or p.high is None:
        return None
    return max(0, int((dec(p.high) - dec(p.low)) / dec(p.step)) + 1)


def _q_count(p: ParamSpec) -> int | None:
    return None if None in (p.low, p.high, p.q) else len(q_range(p))


# -- checks -------------------------------------------------------------------------------


def _value_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return (type(value).__name__, value)


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


def _ordered(p: ParamSpec) -> list[str]:
    assert p.low is not None and p.high is not None
    if p.high <= p.low:
        return [f"high ({show(p.high)}) must be greater than low ({show(p.low)})."]
    return []


def _positive_low(p: ParamSpec) -> list[str]:
    errors = _ordered(p)
    assert p.low is not None
    if p.low <= 0:
        errors.append(
            f'type "{p.type}" samples log(x), so low must be greater than 0, got {show(p.low)}.'
        )
    return errors


def _wholes(p: ParamSpec) -> list[str]:
    return [
        f'type "{p.type}" needs whole numbers: {name} is {show(value)}.'
        for name in ("low", "high", "step")
        if (value := getattr(p, name)) is not None and not is_whole(value)
    ]


def _check_randint(p: ParamSpec) -> list[str]:
    if errors := _wholes(p):
        return errors
    assert p.low is not None and p.high is not None
    if p.high <= p.low:
        return [
            f"high ({show(p.high)}) must be greater than low ({show(p.low)}): randint draws "
            "from low to high - 1 (high is excluded)."
        ]
    return []


def _check_int(p: ParamSpec) -> list[str]:
    if errors := _wholes(p):
        return errors
    low, high = p.low, p.high
    assert low is not None and high is not None
    if high < low:
        errors.append(f"high ({show(high)}) must not be less than low ({show(low)}).")
    if p.log:
        if low < 1:
            errors.append(f'log = true needs low of at least 1 for type "int", got {show(low)}.')
        if p.step not in (None, 1):
            errors.append(
                'step cannot be combined with log = true for type "int" (log-scaled '
                "integers use step 1): remove one of them."
            )
    return errors


def _check_float(p: ParamSpec) -> list[str]:
    errors = _ordered(p)
    if p.log:
        assert p.low is not None
        if p.low <= 0:
            errors.append(f"log = true needs low greater than 0, got {show(p.low)}.")
        if p.step is not None:
            errors.append("step cannot be combined with log = true: remove one of them.")
    return errors


# -- the registry -------------------------------------------------------------------------

_NUMERIC_HINTS = {"step": "float", "log": "float", "values": "choice"}

PARAM_TYPES: dict[str, ParamType] = {
    t.name: t
    for t in (
        ParamType(
            "choice",
            "one of `values` (strings, numbers, booleans or null)",
            ("values",),
            lambda p, discrete: ("categorical", {"choices": tuple(range(len(p.values)))}),
            lambda p, x: p.values[int(x)],
            count=lambda p: len(p.values),
            check=_check_choice,
            controller=True,
        ),
        ParamType(
            "randint",
            "an integer, `low` <= x < `high`",
            ("low", "high"),
            _randint,
            lambda p, x: int(x),
            hints={"step": "int", "values": "choice"},
            count=_randint_count,
            check=_check_randint,
            controller=True,
        ),
        ParamType(
            "uniform",
            "a float, `low` <= x <= `high`",
            ("low", "high"),
            lambda p, discrete: _floats(p),
            lambda p, x: float(x),
            hints={"q": "quniform"} | _NUMERIC_HINTS,
            check=_ordered,
            finite_fix=lambda p: 'use type "quniform" with q',
        ),
        ParamType(
            "quniform",
            "uniform, rounded to a multiple of `q` and clipped to the bounds",
            ("low", "high", "q"),
            _quantized(log=False),
            lambda p, x: _quantize(float(x), p),
            count=_q_count,
            check=_ordered,
        ),
        ParamType(
            "loguniform",
            "a float whose logarithm is uniform, `low` > 0",
            ("low", "high"),
            lambda p, discrete: _floats(p, log=True),
            lambda p, x: float(x),
            hints={"q": "qloguniform"},
            check=_positive_low,
            finite_fix=lambda p: 'use type "qloguniform" with q',
        ),
        ParamType(
            "qloguniform",
            "loguniform, rounded to a multiple of `q` and clipped to the bounds",
            ("low", "high", "q"),
            _quantized(log=True),
            lambda p, x: _quantize(float(x), p),
            count=_q_count,
            check=_positive_low,
        ),
        ParamType(
            "normal",
            "a float drawn from a normal distribution (`mu`, `sigma`)",
            ("mu", "sigma"),
            _unit,
            _normal,
            hints={"q": "qnormal"},
        ),
        ParamType(
            "qnormal",
            "normal, rounded to a multiple of `q`",
            ("mu", "sigma", "q"),
            _unit,
            lambda p, x: _quantize(_normal(p, x), p),
        ),
        ParamType(
            "lognormal",
            "exp of a normal draw (`mu`, `sigma`)",
            ("mu", "sigma"),
            _unit,
            lambda p, x: math.exp(_normal(p, x)),
            hints={"q": "qlognormal"},
        ),
        ParamType(
            "qlognormal",
            "lognormal, rounded to a multiple of `q`",
            ("mu", "sigma", "q"),
            _unit,
            lambda p, x: _quantize(math.exp(_normal(p, x)), p),
        ),
        ParamType(
            "int",
            "Optuna's integer: `low` <= x <= `high`, optional `step`, `log`",
            ("low", "high"),
            _int,
            lambda p, x: int(x),
            optional=("step", "log"),
            count=_int_count,
            check=_check_int,
            controller=True,
        ),
        ParamType(
            "float",
            "Optuna's float: `low` <= x <= `high`, optional `step`, `log`",
            ("low", "high"),
            _float,
            _float_external,
            optional=("step", "log"),
            count=_float_count,
            check=_check_float,
            finite_fix=lambda p: "add step" if not p.log else "remove log and add step",
        ),
    )
}
