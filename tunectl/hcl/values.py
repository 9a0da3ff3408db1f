"""HCL values as tunectl holds them, and the one way each is written out.

Values are plain Python data: str, int, float, bool, None, list and dict, plus `Template`
for strings that refer to something only known when a trial is created (`param.lr`,
`trial.number`, ...). HCL has one number type, so an integral float is the same number as
the int: `5.0 == 5`, and every rendering here writes it `5` (`number_text`), as Terraform
does; other floats are written in Python's shortest round-trip form (`0.001`, `1e-05`).

Renderings, one per purpose:

- `to_string`: HCL's string conversion (template interpolation, `tostring`): `3`,
  `0.001`, `true`, `null`; lists and maps as compact JSON.
- `format_value`: a trial value substituted into a command, `env` or `workdir`: as
  `to_string`, with null (an inactive parameter) as the empty string.
- `hcl_text`: a value in HCL syntax for people (`plan`, `output`): `"text"`, `[32, 64]`,
  `{ a = 1 }`.
- `json_text` / `to_json_value`: JSON, with integral floats as ints.

Also here: the limits on value sizes, HCL equality and arithmetic, and `fail`, which every
evaluation error goes through.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from tunectl.diags import DiagnosticError, SourceRange, error

MAX_STRING = 1_000_000
MAX_LIST = 100_000
MAX_INT_BITS = 4096

PathPart = str | int
Path = tuple[PathPart, ...]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")

UNKNOWN = "Value not known until a trial is created"


# ---------------------------------------------------------------------------
# Templates: strings resolved when a trial is created
# ---------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class Template:
    """A deferred string: literal text and reference paths like ("param", "lr").

    Path elements are attribute names (str) or, for `x[0]`, int indexes.
    """

    parts: tuple[str | Path, ...]

    def __init__(self, parts: Iterable[str | Sequence[PathPart]]) -> None:
        merged: list[str | Path] = []
        for part in parts:
            if isinstance(part, str):
                if not part:
                    continue
                if merged and isinstance(merged[-1], str):
                    merged[-1] = merged[-1] + part
                    continue
                merged.append(part)
            else:
                merged.append(tuple(part))
        object.__setattr__(self, "parts", tuple(merged))

    @property
    def reference(self) -> Path | None:
        """The path when this template is exactly one reference (e.g. `param.lr`)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], tuple):
            return self.parts[0]
        return None

    def references(self) -> list[Path]:
        """The reference paths, in order of first appearance, without duplicates."""
        seen: list[Path] = []
        for part in self.parts:
            if isinstance(part, tuple) and part not in seen:
                seen.append(part)
        return seen

    def render(
        self,
        resolve: Callable[[Path], Any],
        quote: Callable[[str], str] | None = None,
    ) -> str:
        """The string with each reference replaced by `to_string(resolve(path))`.

        `quote` (e.g. `shlex.quote`) is applied to every substituted value, never to the
        literal text around it.
        """
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text = to_string(resolve(part))
                out.append(quote(text) if quote is not None else text)
        return "".join(out)

    def __str__(self) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part.replace("${", "$${").replace("%{", "%%{"))
            else:
                out.append("${" + format_path(part) + "}")
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({str(self)!r})"

    def to_json(self) -> str:
        return str(self)


def format_path(path: Sequence[PathPart]) -> str:
    """`("param", "lr")` -> `param.lr`; int steps as `[0]`, odd names as `["a b"]`."""
    out = str(path[0]) if path else ""
    for step in path[1:]:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENT.match(step):
            out += "." + step
        else:
            out += "[" + json.dumps(step) + "]"
    return out


# ---------------------------------------------------------------------------
# Conversions and renderings
# ---------------------------------------------------------------------------


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def number_text(v: int | float) -> str:
    """A number as HCL writes it: `5` for 5 and 5.0, else the shortest round-trip form."""
    if isinstance(v, int):
        return str(v)
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v)


def to_string(value: Any) -> str:
    """HCL-style text for a value: 3, 0.001, true, null; lists and maps as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)
    if value is None:
        return "null"
    if isinstance(value, Template):
        return str(value)
    return json.dumps(to_json_value(value), separators=(",", ":"), ensure_ascii=False)


def to_json_value(value: Any) -> Any:
    """The value with integral floats as ints and Templates as their source form."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, Template):
        return str(value)
    return value


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Template):
        return "string" if value.reference is None else "value known only per trial"
    return type(value).__name__


def a_or_an(type_: str) -> str:
    """A type name with its indefinite article: "a string", "an object"."""
    return ("an " if type_[0] in "aeiou" else "a ") + type_


def format_value(value: Any) -> str:
    """A trial value as substituted into a command, `env` or `workdir`.

    `to_string`, except that null (an inactive conditional parameter) is the empty
    string. A float parameter of 5.0 becomes `5`, which every float parser reads back as
    5.0 (docs/language.md, "Numbers").
    """
    return "" if value is None else to_string(value)


def json_text(value: Any) -> str:
    """A value as JSON text for people (`show`): keys sorted, integral floats as ints."""
    return json.dumps(to_json_value(value), sort_keys=True)


def hcl_text(
    value: Any,
    *,
    multiline: bool = False,
    opaque: Callable[[Any], str | None] | None = None,
    indent: int = 0,
) -> str:
    """A value in HCL syntax: `"text"`, `1e-05`, `true`, `null`, `[32, 64]`, `{ A = 1 }`.

    Map keys are sorted, and quoted unless they are identifiers. `multiline` puts each
    element of a non-empty list or map on its own line, indented two spaces a level.
    `opaque(value)` may return the text of a value that is shown as is (a redaction
    marker), at any depth.
    """
    if opaque is not None:
        shown = opaque(value)
        if shown is not None:
            return shown
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Template):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple | Mapping):
        if isinstance(value, Mapping):
            keys = sorted(value, key=str)
            width = max((len(_key_text(k)) for k in keys), default=0) if multiline else 0
            items = [
                f"{_key_text(k).ljust(width)} = "
                + hcl_text(value[k], multiline=multiline, opaque=opaque, indent=indent + 1)
                for k in keys
            ]
            empty, start, end = "{}", "{", "}"
        else:
            items = [
                hcl_text(v, multiline=multiline, opaque=opaque, indent=indent + 1) for v in value
            ]
            empty, start, end = "[]", "[", "]"
        if not items:
            return empty
        if multiline:
            pad = "  " * (indent + 1)
            lines = "".join(f"{pad}{item}{',' if end == ']' else ''}\n" for item in items)
            return f"{start}\n{lines}{'  ' * indent}{end}"
        if end == "}":
            return "{ " + ", ".join(items) + " }"
        return "[" + ", ".join(items) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _key_text(key: Any) -> str:
    key = str(key)
    return key if _IDENT.match(key) else json.dumps(key, ensure_ascii=False)


# ---------------------------------------------------------------------------
# Errors, equality and arithmetic
# ---------------------------------------------------------------------------


def fail(summary: str, detail: str, rng: SourceRange) -> NoReturn:
    """Raise one located error diagnostic."""
    raise DiagnosticError(error(summary, detail, rng))


def not_known(value: Template, rng: SourceRange, usage: str) -> NoReturn:
    """Fail because a trial value (`value`) is used where it must be known now."""
    refs = ", ".join(format_path(p) for p in value.references()) or "a trial value"
    fail(
        UNKNOWN,
        f"This value depends on {refs}, which is only known when a trial is created, so it "
        f"cannot be used {usage}. Use it inside a string template instead, where it is "
        "filled in for each trial.",
        rng,
    )


def contains_template(value: Any) -> bool:
    """Whether a Template is anywhere inside the value."""
    return first_template(value) is not None


def first_template(value: Any) -> Any:
    """The first Template found inside the value, or None."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Template):
            return v
        if isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, Mapping):
            stack.extend(v.values())
    return None


def equal(a: Any, b: Any, rng: SourceRange) -> bool:
    """HCL equality (`==`): numbers by value, no conversions between types."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        for v in (x, y):
            if isinstance(v, Template):
                not_known(v, rng, "in arithmetic or comparisons")
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif is_number(x) or is_number(y):
            if not (is_number(x) and is_number(y) and x == y):
                return False
        elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, Mapping) and isinstance(y, Mapping):
            if set(x) != set(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, str) and isinstance(y, str):
            if x != y:
                return False
        elif not (x is None and y is None):
            return False
    return True


def _overflow(rng: SourceRange) -> NoReturn:
    fail(
        "Numeric overflow",
        "The result of this arithmetic is too large to be represented.",
        rng,
    )


def arithmetic(op: str, a: int | float, b: int | float, rng: SourceRange) -> int | float:
    """`a op b` for + - * / %, bounded by `MAX_INT_BITS`; ints stay ints when exact."""
    both_int = isinstance(a, int) and isinstance(b, int)
    try:
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            if both_int and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:  # type: ignore[union-attr]
                _overflow(rng)
            result = a * b
        elif op in ("/", "%"):
            if b == 0:
                fail(
                    "Division by zero",
                    "The right operand of this "
                    + ("division" if op == "/" else "modulo")
                    + " is zero.",
                    rng,
                )
            if op == "/":
                if both_int and a % b == 0:  # type: ignore[operator]
                    result = a // b  # type: ignore[operator]
                else:
                    result = a / b
            elif both_int:
                r = abs(a) % abs(b)  # type: ignore[operator]
                result = -r if a < 0 else r
            else:
                result = math.fmod(a, b)
        else:
            fail("Invalid operator", f'The operator "{op}" is not supported.', rng)
    except OverflowError:
        _overflow(rng)
    if isinstance(result, float):
        if not math.isfinite(result):
            _overflow(rng)
    elif result.bit_length() > MAX_INT_BITS:
        _overflow(rng)
    return result
