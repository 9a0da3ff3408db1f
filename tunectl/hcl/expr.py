"""A safe evaluator for the expressions `tunectl.hcl.syntax` parses (no eval/exec).

Values are plain Python data: str, int, float, bool, None, list and dict, plus `Template`
for strings that refer to something only known when a trial is created (`param.lr`,
`trial.number`, ...). Every failure is a `DiagnosticError` pointing at the expression.

Evaluation is bounded: strings longer than `MAX_STRING` characters, lists longer than
`MAX_LIST` elements, more than `MAX_STEPS` units of work in one `evaluate` call and too
deep nesting are reported as diagnostics rather than exhausting memory or time. Values
returned may share structure with the scope's values; treat them as immutable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tunectl.diags import DiagnosticError, SourceRange, did_you_mean, error
from tunectl.hcl.syntax import (
    BinaryOp,
    Conditional,
    Expr,
    ForExpr,
    FunctionCall,
    IndexExpr,
    Literal,
    ObjectExpr,
    TemplateExpr,
    Traversal,
    TupleExpr,
    UnaryOp,
)

MAX_STRING = 1_000_000
MAX_LIST = 100_000
MAX_STEPS = 2_000_000
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
# Conversions
# ---------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _number_str(v: int | float) -> str:
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
    if _is_number(value):
        return _number_str(value)
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
    if _is_number(value):
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


def _a(type_: str) -> str:
    return ("an " if type_[0] in "aeiou" else "a ") + type_


# ---------------------------------------------------------------------------
# Scope and entry points
# ---------------------------------------------------------------------------


@dataclass
class Scope:
    variables: Mapping[str, Any] = field(default_factory=dict)  # var.NAME
    locals: Mapping[str, Any] = field(default_factory=dict)  # local.NAME
    objects: Mapping[str, Any] = field(default_factory=dict)  # other root names
    deferred: frozenset[str] = frozenset()  # roots kept as Template placeholders
    iteration: Mapping[str, Any] = field(default_factory=dict)  # for-expression variables
    # ("var", NAME) and ("local", NAME) whose values are sensitive: what refers to them is
    # sensitive too (tunectl.config.sensitive). Evaluation itself does not look at it.
    sensitive: frozenset[tuple[str, str]] = frozenset()


def evaluate(expr: Expr, scope: Scope) -> Any:
    """Evaluate an expression; raises `DiagnosticError` on any problem."""
    ev = _Evaluator(scope)
    try:
        return ev.eval(expr)
    except RecursionError:
        raise DiagnosticError(
            error(
                "Expression too deeply nested",
                "This expression nests too deeply to be evaluated. Simplify it.",
                expr.range,
            )
        ) from None


def references(expr: Expr) -> list[tuple[Path, SourceRange]]:
    """Every traversal in the expression, as (root + attribute/literal-index steps, range).

    A path stops at the first index that is not a literal. Names bound by an enclosing
    `for` expression are not references. Order is source order; duplicates are kept.
    """
    out: list[tuple[Path, SourceRange]] = []
    _collect(expr, frozenset(), out)
    return out


def _collect(e: Any, bound: frozenset[str], out: list[tuple[Path, SourceRange]]) -> None:
    if isinstance(e, Traversal):
        if e.root not in bound:
            path: list[PathPart] = [e.root]
            for step in e.steps:
                if isinstance(step, str):
                    path.append(step)
                elif isinstance(step, Literal) and isinstance(step.value, str | int):
                    if isinstance(step.value, bool):
                        break
                    path.append(step.value)
                else:
                    break
            out.append((tuple(path), e.range))
        for step in e.steps:
            if not isinstance(step, str):
                _collect(step, bound, out)
    elif isinstance(e, TemplateExpr):
        for part in e.parts:
            if not isinstance(part, str):
                _collect(part, bound, out)
    elif isinstance(e, TupleExpr):
        for item in e.items:
            _collect(item, bound, out)
    elif isinstance(e, ObjectExpr):
        for key, value in e.items:
            _collect(key, bound, out)
            _collect(value, bound, out)
    elif isinstance(e, IndexExpr):
        _collect(e.collection, bound, out)
        if not isinstance(e.key, str):
            _collect(e.key, bound, out)
    elif isinstance(e, FunctionCall):
        for arg in e.args:
            _collect(arg, bound, out)
    elif isinstance(e, BinaryOp):
        _collect(e.left, bound, out)
        _collect(e.right, bound, out)
    elif isinstance(e, UnaryOp):
        _collect(e.operand, bound, out)
    elif isinstance(e, Conditional):
        _collect(e.condition, bound, out)
        _collect(e.true_expr, bound, out)
        _collect(e.false_expr, bound, out)
    elif isinstance(e, ForExpr):
        _collect(e.collection, bound, out)
        inner = bound | {e.value_var} | ({e.key_var} if e.key_var else set())
        for sub in (e.key_expr, e.value_expr, e.condition):
            if sub is not None:
                _collect(sub, inner, out)


# ---------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------


def _fail(summary: str, detail: str, rng: SourceRange) -> NoReturn:
    raise DiagnosticError(error(summary, detail, rng))


def _unknown(value: Template, rng: SourceRange, usage: str) -> NoReturn:
    refs = ", ".join(format_path(p) for p in value.references()) or "a trial value"
    _fail(
        UNKNOWN,
        f"This value depends on {refs}, which is only known when a trial is created, so it "
        f"cannot be used {usage}. Use it inside a string template instead, where it is "
        "filled in for each trial.",
        rng,
    )


class _Evaluator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.iteration: dict[str, Any] = dict(scope.iteration)
        self.steps = 0
        self.dispatch: dict[type, Callable[[Any], Any]] = {
            Literal: self.literal,
            TemplateExpr: self.template,
            TupleExpr: self.tuple,
            ObjectExpr: self.object,
            Traversal: self.traversal,
            IndexExpr: self.index,
            FunctionCall: self.call,
            BinaryOp: self.binary,
            UnaryOp: self.unary,
            Conditional: self.conditional,
            ForExpr: self.for_expr,
        }

    # -- budget ---------------------------------------------------------------

    def charge(self, units: int, rng: SourceRange) -> None:
        self.steps += units
        if self.steps > MAX_STEPS:
            _fail(
                "Expression too complex",
                "Evaluating this expression takes too much work (it builds or walks very "
                "large values). Simplify it.",
                rng,
            )

    def charge_value(self, value: Any, rng: SourceRange) -> None:
        """Charge the budget for walking every element of a value (stops when exhausted)."""
        stack = [value]
        count = 0
        while stack:
            v = stack.pop()
            count += 1
            if count >= 1024:
                self.charge(count, rng)
                count = 0
            if isinstance(v, list | tuple):
                stack.extend(v)
            elif isinstance(v, Mapping):
                stack.extend(v.values())
        self.charge(count, rng)

    def check_size(self, value: Any, rng: SourceRange) -> Any:
        if isinstance(value, str) and len(value) > MAX_STRING:
            _fail(
                "Value too large",
                f"This string would be {len(value)} characters long; the limit is {MAX_STRING}.",
                rng,
            )
        if isinstance(value, list) and len(value) > MAX_LIST:
            _fail(
                "Value too large",
                f"This list would have {len(value)} elements; the limit is {MAX_LIST}.",
                rng,
            )
        if isinstance(value, Template):
            size = sum(len(p) for p in value.parts if isinstance(p, str))
            if size > MAX_STRING:
                _fail(
                    "Value too large",
                    f"This string would be {size} characters long; the limit is {MAX_STRING}.",
                    rng,
                )
        return value

    # -- dispatch -------------------------------------------------------------

    def eval(self, e: Expr) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.charge(0, e.range)
        method = self.dispatch.get(type(e))
        if method is None:
            _fail("Invalid expression", f"Unsupported expression {type(e).__name__}.", e.range)
        return method(e)

    def literal(self, e: Literal) -> Any:
        return e.value

    def template(self, e: TemplateExpr) -> Any:
        parts: list[str | Path] = []
        deferred = False
        size = 0
        for part in e.parts:
            if isinstance(part, str):
                parts.append(part)
                size += len(part)
                continue
            value = self.eval(part)
            if isinstance(value, Template):
                deferred = True
                parts.extend(value.parts)
                size += sum(len(p) for p in value.parts if isinstance(p, str))
            elif value is None:
                _fail(
                    "Invalid template interpolation value",
                    "The expression result is null. Only non-null values can be "
                    "interpolated into a string.",
                    part.range,
                )
            else:
                if isinstance(value, list | tuple | Mapping):
                    self.charge_value(value, part.range)
                    template = _first_template(value)
                    if template is not None:
                        _unknown(template, part.range, "inside a list or map here")
                text = to_string(value)
                parts.append(text)
                size += len(text)
            if size > MAX_STRING:
                _fail(
                    "Value too large",
                    f"This string would be longer than {MAX_STRING} characters.",
                    e.range,
                )
        if deferred:
            return Template(parts)
        return "".join(p for p in parts if isinstance(p, str))

    def tuple(self, e: TupleExpr) -> list[Any]:
        return self.check_size([self.eval(item) for item in e.items], e.range)

    def object(self, e: ObjectExpr) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_expr, value_expr in e.items:
            if isinstance(key_expr, Literal) and isinstance(key_expr.value, str):
                key = key_expr.value
            else:
                key = self.key(self.eval(key_expr), key_expr.range)
            if key in out:
                _fail(
                    "Duplicate object key",
                    f'The key "{key}" is set more than once in this object.',
                    key_expr.range,
                )
            out[key] = self.eval(value_expr)
        return out

    def key(self, value: Any, rng: SourceRange) -> str:
        if isinstance(value, str):
            return value
        if _is_number(value):
            return _number_str(value)
        if isinstance(value, Template):
            _unknown(value, rng, "as an object key")
        _fail(
            "Invalid object key",
            f"Object keys must be strings, but this is {_a(type_name(value))}.",
            rng,
        )

    # -- references -----------------------------------------------------------

    def step_key(self, step: str | Expr) -> Any:
        return step if isinstance(step, str) else self.eval(step)

    def traversal(self, e: Traversal) -> Any:
        root, steps = e.root, e.steps
        scope = self.scope
        if root in self.iteration:
            return self.apply(self.iteration[root], steps, e.range)
        if root in ("var", "local"):
            kind = "input variable" if root == "var" else "local value"
            if not steps:
                _fail(
                    "Invalid reference",
                    f'The "{root}" object cannot be accessed directly. Instead, access one '
                    f"of its attributes, like {root}.name.",
                    e.range,
                )
            name = self.step_key(steps[0])
            if not isinstance(name, str):
                _fail(
                    "Invalid reference",
                    f"A {kind} must be referenced by name, like {root}.name.",
                    e.range,
                )
            table = scope.variables if root == "var" else scope.locals
            if name not in table:
                if root == "var":
                    _fail(
                        "Reference to undeclared input variable",
                        f'An input variable with the name "{name}" has not been declared.'
                        + did_you_mean(name, table),
                        e.range,
                    )
                _fail(
                    "Reference to undeclared local value",
                    f'A local value with the name "{name}" has not been declared.'
                    + did_you_mean(name, table),
                    e.range,
                )
            return self.apply(table[name], steps[1:], e.range)
        if root in scope.objects:
            return self.apply(scope.objects[root], steps, e.range)
        if root in scope.deferred:
            path: list[PathPart] = [root]
            for step in steps:
                path.append(self.path_key(self.step_key(step), e.range))
            return Template([tuple(path)])
        shown = root + (f".{steps[0]}" if steps and isinstance(steps[0], str) else "")
        roots = ["var", "local", *scope.objects, *sorted(scope.deferred), *self.iteration]
        valid = ", ".join(f"{r}.*" if r not in self.iteration else r for r in roots)
        _fail(
            "Reference to undeclared resource",
            f'A reference to "{shown}" is not valid here. Only {valid} can be referenced '
            "here." + did_you_mean(root, roots),
            e.range,
        )

    def path_key(self, key: Any, rng: SourceRange) -> PathPart:
        if isinstance(key, Template):
            _unknown(key, rng, "as an index")
        if isinstance(key, str):
            return key
        if _is_number(key) and float(key).is_integer():
            return int(key)
        _fail(
            "Invalid index",
            f"An index must be a string or a whole number, but this is {_a(type_name(key))}.",
            rng,
        )

    def apply(self, value: Any, steps: Sequence[str | Expr], rng: SourceRange) -> Any:
        for step in steps:
            value = self.get(value, self.step_key(step), isinstance(step, str), rng)
        return value

    def index(self, e: IndexExpr) -> Any:
        collection = self.eval(e.collection)
        key = self.step_key(e.key)
        return self.get(collection, key, isinstance(e.key, str), e.range)

    def get(self, value: Any, key: Any, attr: bool, rng: SourceRange) -> Any:
        if isinstance(key, Template):
            _unknown(key, rng, "as an index")
        if isinstance(value, Template) and value.reference is not None:
            return Template([(*value.reference, self.path_key(key, rng))])
        if isinstance(value, Mapping):
            if _is_number(key):
                key = _number_str(key)
            if not isinstance(key, str):
                _fail(
                    "Invalid index",
                    f"An object key must be a string, but this is {_a(type_name(key))}.",
                    rng,
                )
            if key in value:
                return value[key]
            if attr:
                _fail(
                    "Unsupported attribute",
                    f'This object does not have an attribute named "{key}".'
                    + did_you_mean(key, [str(k) for k in value]),
                    rng,
                )
            _fail(
                "Invalid index",
                f'The given key "{key}" does not identify an element in this object.'
                + did_you_mean(key, [str(k) for k in value]),
                rng,
            )
        if isinstance(value, list | tuple):
            if attr:
                _fail(
                    "Unsupported attribute",
                    f'Can\'t access attribute "{key}" on a list. Use an index like [0] to '
                    "get one of its elements.",
                    rng,
                )
            if isinstance(key, str) and re.fullmatch(r"-?[0-9]+", key):
                key = int(key)
            if not _is_number(key) or not float(key).is_integer():
                _fail(
                    "Invalid index",
                    f"A list index must be a whole number, but this is {_a(type_name(key))}.",
                    rng,
                )
            index = int(key)
            if not 0 <= index < len(value):
                _fail(
                    "Invalid index",
                    f"The given index {index} is out of range: the list has {len(value)} "
                    f"element{'s' if len(value) != 1 else ''}.",
                    rng,
                )
            return value[index]
        what = "null" if value is None else _a(type_name(value))
        if attr:
            _fail(
                "Unsupported attribute",
                f'Can\'t access attribute "{key}": this value is {what}, which has no attributes.',
                rng,
            )
        _fail("Invalid index", f"This value is {what}, which cannot be indexed.", rng)

    # -- operators ------------------------------------------------------------

    def unary(self, e: UnaryOp) -> Any:
        value = self.eval(e.operand)
        if isinstance(value, Template):
            _unknown(value, e.range, "in arithmetic or comparisons")
        if e.op == "-":
            if not _is_number(value):
                _fail(
                    "Invalid operand",
                    "Unsuitable value for unary operand: a number is required, but this is "
                    f"{_a(type_name(value))}.",
                    e.operand.range,
                )
            return -value
        if not isinstance(value, bool):
            _fail(
                "Invalid operand",
                "Unsuitable value for unary operand: a bool is required, but this is "
                f"{_a(type_name(value))}.",
                e.operand.range,
            )
        return not value

    def binary(self, e: BinaryOp) -> Any:
        # Left-nested chains (a + b + c ...) are evaluated iteratively.
        chain: list[BinaryOp] = []
        node: Expr = e
        while isinstance(node, BinaryOp):
            chain.append(node)
            node = node.left
        value = self.eval(node)
        for op in reversed(chain):
            value = self.apply_binary(op, value)
        return value

    def apply_binary(self, e: BinaryOp, left: Any) -> Any:
        op = e.op
        if op in ("&&", "||"):
            self.need_bool(left, e.left.range, "left")
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            right = self.eval(e.right)
            self.need_bool(right, e.right.range, "right")
            return right
        right = self.eval(e.right)
        for value in (left, right):
            if isinstance(value, Template):
                _unknown(value, e.range, "in arithmetic or comparisons")
        if op in ("==", "!="):
            for value in (left, right):
                if isinstance(value, list | dict):
                    self.charge_value(value, e.range)
            equal = _equal(left, right, e.range)
            return equal if op == "==" else not equal
        self.need_number(left, e.left.range, "left")
        self.need_number(right, e.right.range, "right")
        if op == "<":
            return left < right
        if op == ">":
            return left > right
        if op == "<=":
            return left <= right
        if op == ">=":
            return left >= right
        return _arith(op, left, right, e.range)

    def need_bool(self, value: Any, rng: SourceRange, side: str) -> None:
        if isinstance(value, Template):
            _unknown(value, rng, "in a logical operation")
        if not isinstance(value, bool):
            _fail(
                "Invalid operand",
                f"Unsuitable value for {side} operand: a bool is required, but this is "
                f"{_a(type_name(value))}.",
                rng,
            )

    def need_number(self, value: Any, rng: SourceRange, side: str) -> None:
        if not _is_number(value):
            _fail(
                "Invalid operand",
                f"Unsuitable value for {side} operand: a number is required, but this is "
                f"{_a(type_name(value))}.",
                rng,
            )

    def conditional(self, e: Conditional) -> Any:
        cond = self.eval(e.condition)
        if isinstance(cond, Template):
            _unknown(cond, e.condition.range, "as a condition")
        if not isinstance(cond, bool):
            _fail(
                "Incorrect condition type",
                "The condition expression must be a bool (true or false), but this is "
                f"{_a(type_name(cond))}.",
                e.condition.range,
            )
        return self.eval(e.true_expr if cond else e.false_expr)

    def for_expr(self, e: ForExpr) -> Any:
        collection = self.eval(e.collection)
        if isinstance(collection, Template):
            _unknown(collection, e.collection.range, "as the collection of a for expression")
        items: Iterable[tuple[Any, Any]]
        if isinstance(collection, list | tuple):
            items = enumerate(collection)
        elif isinstance(collection, Mapping):
            items = ((k, collection[k]) for k in sorted(collection))
        elif collection is None:
            _fail(
                "Iteration over null value",
                "A null value cannot be used as the collection in a for expression.",
                e.collection.range,
            )
        else:
            _fail(
                "Iteration over non-iterable value",
                f"A value of type {type_name(collection)} cannot be used as the collection "
                "in a for expression. Use a list or a map.",
                e.collection.range,
            )
        names = [n for n in (e.key_var, e.value_var) if n]
        saved = {n: self.iteration[n] for n in names if n in self.iteration}
        results: list[Any] = []
        grouped: dict[str, Any] = {}
        try:
            for k, v in items:
                self.charge(1, e.range)
                if e.key_var:
                    self.iteration[e.key_var] = k
                self.iteration[e.value_var] = v
                if e.condition is not None:
                    keep = self.eval(e.condition)
                    if isinstance(keep, Template):
                        _unknown(keep, e.condition.range, "as a for condition")
                    if not isinstance(keep, bool):
                        _fail(
                            "Invalid 'for' condition",
                            "The 'if' clause of a for expression must be a bool, but this is "
                            f"{_a(type_name(keep))}.",
                            e.condition.range,
                        )
                    if not keep:
                        continue
                if e.key_expr is None:
                    results.append(self.eval(e.value_expr))
                    if len(results) > MAX_LIST:
                        self.check_size(results, e.range)
                    continue
                key = self.key(self.eval(e.key_expr), e.key_expr.range)
                value = self.eval(e.value_expr)
                if e.grouping:
                    grouped.setdefault(key, []).append(value)
                elif key in grouped:
                    _fail(
                        "Duplicate object key",
                        f'Two different items produced the key "{key}" in this for '
                        "expression. If duplicates are expected, use the ellipsis (...) after "
                        "the value expression to group the values by key.",
                        e.key_expr.range,
                    )
                else:
                    grouped[key] = value
        finally:
            for n in names:
                self.iteration.pop(n, None)
            self.iteration.update(saved)
        return results if e.key_expr is None else grouped

    # -- functions ------------------------------------------------------------

    def call(self, e: FunctionCall) -> Any:
        from tunectl.hcl.functions import FUNCTIONS, _Call

        spec = FUNCTIONS.get(e.name)
        if spec is None:
            _fail(
                "Call to unknown function",
                f'There is no function named "{e.name}".' + did_you_mean(e.name, FUNCTIONS),
                e.range,
            )
        args = [self.eval(a) for a in e.args]
        if e.expand_final:
            if not args or not isinstance(args[-1], list | tuple):
                _fail(
                    "Invalid function argument",
                    "The expanding argument (marked with ...) must be a list.",
                    e.args[-1].range if e.args else e.range,
                )
            args = args[:-1] + list(args[-1])
        low, high, impl = spec
        if len(args) < low or (high is not None and len(args) > high):
            if high is None:
                want = f"at least {low}"
            elif low == high:
                want = str(low)
            else:
                want = f"{low} to {high}"
            _fail(
                "Invalid function argument",
                f'Function "{e.name}" expects {want} argument{"s" if want != "1" else ""}, '
                f"but {len(args)} {'was' if len(args) == 1 else 'were'} given.",
                e.range,
            )
        result = impl(_Call(self, e), args)
        if isinstance(result, list | str | Template):
            self.check_size(result, e.range)
        if isinstance(result, list):
            self.charge(len(result), e.range)
        return result


def _contains_template(value: Any) -> bool:
    return _first_template(value) is not None


def _first_template(value: Any) -> Any:
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


def _equal(a: Any, b: Any, rng: SourceRange) -> bool:
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        for v in (x, y):
            if isinstance(v, Template):
                _unknown(v, rng, "in arithmetic or comparisons")
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif _is_number(x) or _is_number(y):
            if not (_is_number(x) and _is_number(y) and x == y):
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
    _fail(
        "Numeric overflow",
        "The result of this arithmetic is too large to be represented.",
        rng,
    )


def _arith(op: str, a: int | float, b: int | float, rng: SourceRange) -> int | float:
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
                _fail(
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
            _fail("Invalid operator", f'The operator "{op}" is not supported.', rng)
    except OverflowError:
        _overflow(rng)
    if isinstance(result, float):
        if not math.isfinite(result):
            _overflow(rng)
    elif result.bit_length() > MAX_INT_BITS:
        _overflow(rng)
    return result
