"""The functions a configuration may call (`min`, `join`, `format`, ...), as Terraform's.

Each is registered in `FUNCTIONS` by name with its arity; the evaluator
(`tunectl.hcl.expr`) checks the arity and calls it with a `Call`, which gives typed
access to the arguments and raises located diagnostics. Every function is pure, and bounded
by the evaluator's limits (`MAX_LIST`, `MAX_STRING`, `charge`). The registry is the list
in docs/language.md ("Functions"); a test keeps the two equal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn, Protocol

from tunectl.diags import SourceRange, did_you_mean
from tunectl.hcl.syntax import FunctionCall
from tunectl.hcl.values import (
    MAX_INT_BITS,
    MAX_LIST,
    MAX_STRING,
    Template,
    a_or_an,
    contains_template,
    equal,
    fail,
    first_template,
    is_number,
    not_known,
    number_text,
    to_json_value,
    to_string,
    type_name,
)


class Budget(Protocol):
    """What a function needs of the evaluator: charging work to its step budget."""

    def charge(self, units: int, rng: SourceRange) -> None: ...

    def charge_value(self, value: Any, rng: SourceRange) -> None: ...


class Call:
    """One call being evaluated: typed access to its arguments, located failures."""

    def __init__(self, ev: Budget, e: FunctionCall) -> None:
        self.ev = ev
        self.name = e.name
        self.range = e.range

    def fail(self, message: str, index: int | None = None) -> NoReturn:
        where = f"argument {index + 1} of " if index is not None else ""
        fail(
            "Invalid function argument",
            f"Invalid value for {where}{self.name}(): {message}.",
            self.range,
        )

    def known(self, value: Any, index: int) -> Any:
        if isinstance(value, Template):
            not_known(value, self.range, f"as argument {index + 1} of {self.name}()")
        return value

    def number(self, args: list[Any], i: int) -> int | float:
        v = self.known(args[i], i)
        if not is_number(v):
            self.fail(f"a number is required, but this is {a_or_an(type_name(v))}", i)
        return v

    def integer(self, args: list[Any], i: int) -> int:
        v = self.number(args, i)
        if isinstance(v, float):
            if not v.is_integer():
                self.fail(f"a whole number is required, but this is {number_text(v)}", i)
            return int(v)
        return v

    def string(self, args: list[Any], i: int) -> str:
        v = self.known(args[i], i)
        if isinstance(v, str):
            return v
        if is_number(v) or isinstance(v, bool):
            return to_string(v)
        self.fail(f"a string is required, but this is {a_or_an(type_name(v))}", i)

    def sequence(self, args: list[Any], i: int) -> list[Any]:
        v = self.known(args[i], i)
        if not isinstance(v, list | tuple):
            self.fail(f"a list is required, but this is {a_or_an(type_name(v))}", i)
        return list(v)

    def mapping(self, args: list[Any], i: int) -> Mapping[str, Any]:
        v = self.known(args[i], i)
        if not isinstance(v, Mapping):
            self.fail(f"a map or object is required, but this is {a_or_an(type_name(v))}", i)
        return v

    def limit_list(self, n: int) -> None:
        if n > MAX_LIST:
            self.fail(f"the result would have {n} elements; the limit is {MAX_LIST}")

    def limit_string(self, n: int) -> None:
        if n > MAX_STRING:
            self.fail(f"the result would be {n} characters long; the limit is {MAX_STRING}")


Impl = Callable[[Call, list[Any]], Any]
FUNCTIONS: dict[str, tuple[int, int | None, Impl]] = {}


def _function(name: str, low: int, high: int | None) -> Callable[[Impl], Impl]:
    def register(impl: Impl) -> Impl:
        FUNCTIONS[name] = (low, high, impl)
        return impl

    return register


def _numbers(c: Call, args: list[Any]) -> list[int | float]:
    return [c.number(args, i) for i in range(len(args))]


@_function("min", 1, None)
def _min(c: Call, args: list[Any]) -> Any:
    return min(_numbers(c, args))


@_function("max", 1, None)
def _max(c: Call, args: list[Any]) -> Any:
    return max(_numbers(c, args))


@_function("abs", 1, 1)
def _abs(c: Call, args: list[Any]) -> Any:
    return abs(c.number(args, 0))


@_function("ceil", 1, 1)
def _ceil(c: Call, args: list[Any]) -> Any:
    return math.ceil(c.number(args, 0))


@_function("floor", 1, 1)
def _floor(c: Call, args: list[Any]) -> Any:
    return math.floor(c.number(args, 0))


@_function("log", 2, 2)
def _log(c: Call, args: list[Any]) -> Any:
    x, base = c.number(args, 0), c.number(args, 1)
    if x <= 0:
        c.fail("the number must be greater than zero", 0)
    if base <= 0 or base == 1:
        c.fail("the base must be greater than zero and not 1", 1)
    return math.log(x, base)


@_function("pow", 2, 2)
def _pow(c: Call, args: list[Any]) -> Any:
    x, y = c.number(args, 0), c.number(args, 1)
    if isinstance(x, int) and isinstance(y, int) and y >= 0:
        if x.bit_length() * y > MAX_INT_BITS:
            c.fail("the result is too large to be represented")
        return x**y
    try:
        result = math.pow(x, y)
    except OverflowError:
        c.fail("the result is too large to be represented")
    except ValueError:
        c.fail(f"{number_text(x)} to the power {number_text(y)} is not a real number")
    if not math.isfinite(result):
        c.fail("the result is too large to be represented")
    return result


@_function("sqrt", 1, 1)
def _sqrt(c: Call, args: list[Any]) -> Any:
    x = c.number(args, 0)
    if x < 0:
        c.fail("the number must not be negative", 0)
    try:
        return math.sqrt(x)
    except OverflowError:
        c.fail("the number is too large", 0)


@_function("concat", 1, None)
def _concat(c: Call, args: list[Any]) -> Any:
    lists = [c.sequence(args, i) for i in range(len(args))]
    c.limit_list(sum(len(x) for x in lists))
    return [item for x in lists for item in x]


@_function("range", 1, 3)
def _range(c: Call, args: list[Any]) -> Any:
    nums = _numbers(c, args)
    start: int | float
    limit: int | float
    step: int | float
    if len(nums) == 1:
        start, limit, step = 0, nums[0], 1
    elif len(nums) == 2:
        start, limit = nums
        step = 1 if limit >= start else -1
    else:
        start, limit, step = nums
        if step == 0:
            c.fail("the step must not be zero", 2)
    if (step > 0 and limit <= start) or (step < 0 and limit >= start):
        return []
    count = math.ceil((limit - start) / step)
    c.limit_list(count)
    return [start + i * step for i in range(count)]


@_function("length", 1, 1)
def _length(c: Call, args: list[Any]) -> Any:
    v = c.known(args[0], 0)
    if isinstance(v, str | list | tuple | Mapping):
        return len(v)
    c.fail(f"a string, list or map is required, but this is {a_or_an(type_name(v))}", 0)


@_function("keys", 1, 1)
def _keys(c: Call, args: list[Any]) -> Any:
    return sorted(c.mapping(args, 0))


@_function("values", 1, 1)
def _values(c: Call, args: list[Any]) -> Any:
    m = c.mapping(args, 0)
    return [m[k] for k in sorted(m)]


@_function("lookup", 2, 3)
def _lookup(c: Call, args: list[Any]) -> Any:
    m = c.mapping(args, 0)
    key = c.string(args, 1)
    if key in m:
        return m[key]
    if len(args) == 3:
        return args[2]
    c.fail(f'the map has no key "{key}"' + did_you_mean(key, m).replace(".", ""), 1)


@_function("merge", 0, None)
def _merge(c: Call, args: list[Any]) -> Any:
    out: dict[str, Any] = {}
    for i, v in enumerate(args):
        if v is None:
            continue
        out.update(c.mapping(args, i))
    return out


@_function("contains", 2, 2)
def _contains(c: Call, args: list[Any]) -> Any:
    items = c.sequence(args, 0)
    c.ev.charge_value(items, c.range)
    c.known(args[1], 1)
    return any(equal(item, args[1], c.range) for item in items)


@_function("element", 2, 2)
def _element(c: Call, args: list[Any]) -> Any:
    items = c.sequence(args, 0)
    index = c.integer(args, 1)
    if not items:
        c.fail("cannot use element() on an empty list", 0)
    if index < 0:
        c.fail("the index must not be negative", 1)
    return items[index % len(items)]


@_function("slice", 3, 3)
def _slice(c: Call, args: list[Any]) -> Any:
    items = c.sequence(args, 0)
    start, end = c.integer(args, 1), c.integer(args, 2)
    if start < 0 or start > len(items):
        c.fail(f"the start index {start} is out of range for a list of {len(items)}", 1)
    if end < start or end > len(items):
        c.fail(f"the end index {end} must be between {start} and {len(items)}", 2)
    return items[start:end]


def _canonical(value: Any, c: Call) -> Any:
    """A hashable form such that equal values (HCL equality) have equal forms."""
    if isinstance(value, Template):
        c.known(value, 0)
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        if isinstance(value, float) and value.is_integer():
            return ("n", int(value))
        return ("n", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(_canonical(v, c) for v in value))
    if isinstance(value, Mapping):
        return ("m", tuple(sorted((k, _canonical(v, c)) for k, v in value.items())))
    return ("s", value)


@_function("distinct", 1, 1)
def _distinct(c: Call, args: list[Any]) -> Any:
    items = c.sequence(args, 0)
    c.ev.charge_value(items, c.range)
    seen: set[Any] = set()
    out = []
    for item in items:
        key = _canonical(item, c)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


@_function("flatten", 1, 1)
def _flatten(c: Call, args: list[Any]) -> Any:
    out: list[Any] = []
    stack: list[Iterator[Any]] = [iter(c.sequence(args, 0))]
    work = 0
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        work += 1
        if work % 4096 == 0:
            c.ev.charge(4096, c.range)
        if isinstance(item, list | tuple):
            stack.append(iter(item))
        else:
            out.append(item)
            if len(out) > MAX_LIST:
                c.limit_list(len(out))
    return out


_END = object()


def _string_parts(c: Call, value: Any, index: int, allow_any: bool = False) -> list[Any]:
    """Parts for building a string that may contain deferred references."""
    if isinstance(value, Template):
        return list(value.parts)
    if value is None:
        c.fail("a null value cannot be turned into a string", index)
    if isinstance(value, list | tuple | Mapping):
        if not allow_any:
            c.fail(f"a string is required, but this is {a_or_an(type_name(value))}", index)
        c.ev.charge_value(value, c.range)
        if contains_template(value):
            c.known(first_template(value), index)
    return [to_string(value)]


def _build(c: Call, parts: list[Any]) -> Any:
    size = sum(len(p) for p in parts if isinstance(p, str))
    c.limit_string(size)
    if any(isinstance(p, tuple) for p in parts):
        return Template(parts)
    return "".join(parts)


@_function("join", 2, 2)
def _join(c: Call, args: list[Any]) -> Any:
    sep = c.string(args, 0)
    items = c.sequence(args, 1)
    c.limit_string(len(sep) * max(0, len(items) - 1))
    parts: list[Any] = []
    for n, item in enumerate(items):
        if n:
            parts.append(sep)
        parts.extend(_string_parts(c, item, 1))
    return _build(c, parts)


@_function("split", 2, 2)
def _split(c: Call, args: list[Any]) -> Any:
    sep, s = c.string(args, 0), c.string(args, 1)
    pieces = list(s) if sep == "" else s.split(sep)
    c.limit_list(len(pieces))
    return pieces


@_function("upper", 1, 1)
def _upper(c: Call, args: list[Any]) -> Any:
    return c.string(args, 0).upper()


@_function("lower", 1, 1)
def _lower(c: Call, args: list[Any]) -> Any:
    return c.string(args, 0).lower()


@_function("trimspace", 1, 1)
def _trimspace(c: Call, args: list[Any]) -> Any:
    return c.string(args, 0).strip()


@_function("replace", 3, 3)
def _replace(c: Call, args: list[Any]) -> Any:
    s, old, new = c.string(args, 0), c.string(args, 1), c.string(args, 2)
    count = s.count(old)
    c.limit_string(len(s) + count * (len(new) - len(old)))
    return s.replace(old, new)


_FORMAT_VERB = re.compile(r"%(?:(%)|([-0]*)([0-9]+)?(?:\.([0-9]+))?([sdfv])|(.?))", re.S)


@_function("format", 1, None)
def _format(c: Call, args: list[Any]) -> Any:
    """Go-style formatting: %s %d %f %v %%, with optional -/0 flags, width and %.Nf."""
    fmt = c.string(args, 0)
    parts: list[Any] = []
    pos = 0
    next_arg = 1
    for m in _FORMAT_VERB.finditer(fmt):
        parts.append(fmt[pos : m.start()])
        pos = m.end()
        percent, flags, width_text, precision, verb, bad = m.groups()
        if percent:
            parts.append("%")
            continue
        if verb is None:
            c.fail(
                f'unsupported format verb "%{bad}"; supported are %s, %d, %f, %.Nf, %v and %%',
                0,
            )
        if precision is not None and verb != "f":
            c.fail(f'a precision is only supported with %f, not in "{m.group()}"', 0)
        width = int(width_text) if width_text else 0
        digits = int(precision) if precision is not None else 6
        if width > 100 or digits > 100:
            c.fail("widths and precisions must be at most 100", 0)
        if next_arg >= len(args):
            c.fail(f'not enough arguments for the format string (no value for "{m.group()}")')
        value = args[next_arg]
        if verb in ("s", "v"):
            pieces = _string_parts(c, value, next_arg, allow_any=verb == "v")
            if width and any(isinstance(p, tuple) for p in pieces):
                c.known(value, next_arg)
            text = "".join(p for p in pieces if isinstance(p, str))
            if width:
                pieces = [text.ljust(width) if "-" in flags else text.rjust(width)]
            parts.extend(pieces)
        else:
            if verb == "d":
                number: int | float = c.integer(args, next_arg)
                spec = "d"
            else:
                number = c.number(args, next_arg)
                spec = f".{digits}f"
            if "-" in flags:
                parts.append(f"{number:<{width}{spec}}")
            elif "0" in flags and width:
                parts.append(f"{number:0{width}{spec}}")
            else:
                parts.append(f"{number:>{width}{spec}}")
        next_arg += 1
        c.limit_string(sum(len(p) for p in parts if isinstance(p, str)))
    parts.append(fmt[pos:])
    if next_arg < len(args):
        c.fail(f"too many arguments: the format string uses {next_arg - 1}")
    return _build(c, parts)


@_function("tostring", 1, 1)
def _tostring(c: Call, args: list[Any]) -> Any:
    v = args[0]
    if v is None or isinstance(v, str | Template):
        return v
    if is_number(v) or isinstance(v, bool):
        return to_string(v)
    c.fail(f"cannot convert {a_or_an(type_name(v))} to a string", 0)


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


@_function("tonumber", 1, 1)
def _tonumber(c: Call, args: list[Any]) -> Any:
    v = c.known(args[0], 0)
    if v is None or is_number(v):
        return v
    if isinstance(v, str):
        text = v.strip()
        m = _NUMBER.fullmatch(text)
        if m and len(text) <= 1000:
            if m.group(1) is None and m.group(2) is None:
                return int(text)
            result = float(text)
            if math.isfinite(result):
                return result
        c.fail(f'cannot convert "{v[:50]}" to a number', 0)
    c.fail(f"cannot convert {a_or_an(type_name(v))} to a number", 0)


@_function("tobool", 1, 1)
def _tobool(c: Call, args: list[Any]) -> Any:
    v = c.known(args[0], 0)
    if v is None or isinstance(v, bool):
        return v
    if v == "true":
        return True
    if v == "false":
        return False
    shown = f'"{v[:50]}"' if isinstance(v, str) else a_or_an(type_name(v))
    c.fail(f"cannot convert {shown} to a bool", 0)


@_function("tolist", 1, 1)
def _tolist(c: Call, args: list[Any]) -> Any:
    return c.sequence(args, 0)


@_function("jsonencode", 1, 1)
def _jsonencode(c: Call, args: list[Any]) -> Any:
    v = args[0]
    c.ev.charge_value(v, c.range)
    template = first_template(v)
    if template is not None:
        c.known(template, 0)
    return json.dumps(to_json_value(v), separators=(",", ":"), ensure_ascii=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@_function("jsondecode", 1, 1)
def _jsondecode(c: Call, args: list[Any]) -> Any:
    text = c.string(args, 0)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        c.fail("the JSON nests too deeply", 0)
    except ValueError as exc:
        c.fail(f"invalid JSON: {str(exc)[:200]}", 0)
    c.ev.charge_value(value, c.range)
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            c.fail("the JSON holds a number too large to be represented", 0)
        if isinstance(v, list):
            c.limit_list(len(v))
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return value


@_function("coalesce", 1, None)
def _coalesce(c: Call, args: list[Any]) -> Any:
    for v in args:
        if v is not None and v != "":
            return v
    c.fail("no non-null, non-empty-string arguments")
