"""A safe evaluator for the expressions `tunectl.hcl.syntax` parses (no eval/exec).

Values are those of `tunectl.hcl.values`. Every failure is a `DiagnosticError` pointing at
the expression. Functions come from `tunectl.hcl.functions`, which knows the evaluator only
through its `Budget`.

Evaluation is bounded: strings longer than `MAX_STRING` characters, lists longer than
`MAX_LIST` elements, more than `MAX_STEPS` units of work in one `evaluate` call and too
deep nesting are reported as diagnostics rather than exhausting memory or time. Values
returned may share structure with the scope's values; treat them as immutable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.diags import DiagnosticError, SourceRange, did_you_mean, error
from tunectl.hcl.functions import FUNCTIONS, Call
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
from tunectl.hcl.values import (
    MAX_LIST,
    MAX_STRING,
    Path,
    PathPart,
    Template,
    a_or_an,
    arithmetic,
    equal,
    fail,
    first_template,
    is_number,
    not_known,
    number_text,
    to_string,
    type_name,
)

MAX_STEPS = 2_000_000


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
    ev = Evaluator(scope)
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


class Evaluator:
    """One evaluation: the scope, the for-expression variables bound now, the work done."""

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
            fail(
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
            fail(
                "Value too large",
                f"This string would be {len(value)} characters long; the limit is {MAX_STRING}.",
                rng,
            )
        if isinstance(value, list) and len(value) > MAX_LIST:
            fail(
                "Value too large",
                f"This list would have {len(value)} elements; the limit is {MAX_LIST}.",
                rng,
            )
        if isinstance(value, Template):
            size = sum(len(p) for p in value.parts if isinstance(p, str))
            if size > MAX_STRING:
                fail(
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
            fail("Invalid expression", f"Unsupported expression {type(e).__name__}.", e.range)
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
                fail(
                    "Invalid template interpolation value",
                    "The expression result is null. Only non-null values can be "
                    "interpolated into a string.",
                    part.range,
                )
            else:
                if isinstance(value, list | tuple | Mapping):
                    self.charge_value(value, part.range)
                    template = first_template(value)
                    if template is not None:
                        not_known(template, part.range, "inside a list or map here")
                text = to_string(value)
                parts.append(text)
                size += len(text)
            if size > MAX_STRING:
                fail(
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
                fail(
                    "Duplicate object key",
                    f'The key "{key}" is set more than once in this object.',
                    key_expr.range,
                )
            out[key] = self.eval(value_expr)
        return out

    def key(self, value: Any, rng: SourceRange) -> str:
        if isinstance(value, str):
            return value
        if is_number(value):
            return number_text(value)
        if isinstance(value, Template):
            not_known(value, rng, "as an object key")
        fail(
            "Invalid object key",
            f"Object keys must be strings, but this is {a_or_an(type_name(value))}.",
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
                fail(
                    "Invalid reference",
                    f'The "{root}" object cannot be accessed directly. Instead, access one '
                    f"of its attributes, like {root}.name.",
                    e.range,
                )
            name = self.step_key(steps[0])
            if not isinstance(name, str):
                fail(
                    "Invalid reference",
                    f"A {kind} must be referenced by name, like {root}.name.",
                    e.range,
                )
            table = scope.variables if root == "var" else scope.locals
            if name not in table:
                if root == "var":
                    fail(
                        "Reference to undeclared input variable",
                        f'An input variable with the name "{name}" has not been declared.'
                        + did_you_mean(name, table),
                        e.range,
                    )
                fail(
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
        fail(
            "Reference to undeclared resource",
            f'A reference to "{shown}" is not valid here. Only {valid} can be referenced '
            "here." + did_you_mean(root, roots),
            e.range,
        )

    def path_key(self, key: Any, rng: SourceRange) -> PathPart:
        if isinstance(key, Template):
            not_known(key, rng, "as an index")
        if isinstance(key, str):
            return key
        if is_number(key) and float(key).is_integer():
            return int(key)
        fail(
            "Invalid index",
            f"An index must be a string or a whole number, but this is {a_or_an(type_name(key))}.",
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
            not_known(key, rng, "as an index")
        if isinstance(value, Template) and value.reference is not None:
            return Template([(*value.reference, self.path_key(key, rng))])
        if isinstance(value, Mapping):
            if is_number(key):
                key = number_text(key)
            if not isinstance(key, str):
                fail(
                    "Invalid index",
                    f"An object key must be a string, but this is {a_or_an(type_name(key))}.",
                    rng,
                )
            if key in value:
                return value[key]
            if attr:
                fail(
                    "Unsupported attribute",
                    f'This object does not have an attribute named "{key}".'
                    + did_you_mean(key, [str(k) for k in value]),
                    rng,
                )
            fail(
                "Invalid index",
                f'The given key "{key}" does not identify an element in this object.'
                + did_you_mean(key, [str(k) for k in value]),
                rng,
            )
        if isinstance(value, list | tuple):
            if attr:
                fail(
                    "Unsupported attribute",
                    f'Can\'t access attribute "{key}" on a list. Use an index like [0] to '
                    "get one of its elements.",
                    rng,
                )
            if isinstance(key, str) and re.fullmatch(r"-?[0-9]+", key):
                key = int(key)
            if not is_number(key) or not float(key).is_integer():
                fail(
                    "Invalid index",
                    f"A list index must be a whole number, but this is {a_or_an(type_name(key))}.",
                    rng,
                )
            index = int(key)
            if not 0 <= index < len(value):
                fail(
                    "Invalid index",
                    f"The given index {index} is out of range: the list has {len(value)} "
                    f"element{'s' if len(value) != 1 else ''}.",
                    rng,
                )
            return value[index]
        what = "null" if value is None else a_or_an(type_name(value))
        if attr:
            fail(
                "Unsupported attribute",
                f'Can\'t access attribute "{key}": this value is {what}, which has no attributes.',
                rng,
            )
        fail("Invalid index", f"This value is {what}, which cannot be indexed.", rng)

    # -- operators ------------------------------------------------------------

    def unary(self, e: UnaryOp) -> Any:
        value = self.eval(e.operand)
        if isinstance(value, Template):
            not_known(value, e.range, "in arithmetic or comparisons")
        if e.op == "-":
            if not is_number(value):
                fail(
                    "Invalid operand",
                    "Unsuitable value for unary operand: a number is required, but this is "
                    f"{a_or_an(type_name(value))}.",
                    e.operand.range,
                )
            return -value
        if not isinstance(value, bool):
            fail(
                "Invalid operand",
                "Unsuitable value for unary operand: a bool is required, but this is "
                f"{a_or_an(type_name(value))}.",
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
                not_known(value, e.range, "in arithmetic or comparisons")
        if op in ("==", "!="):
            for value in (left, right):
                if isinstance(value, list | dict):
                    self.charge_value(value, e.range)
            same = equal(left, right, e.range)
            return same if op == "==" else not same
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
        return arithmetic(op, left, right, e.range)

    def need_bool(self, value: Any, rng: SourceRange, side: str) -> None:
        if isinstance(value, Template):
            not_known(value, rng, "in a logical operation")
        if not isinstance(value, bool):
            fail(
                "Invalid operand",
                f"Unsuitable value for {side} operand: a bool is required, but this is "
                f"{a_or_an(type_name(value))}.",
                rng,
            )

    def need_number(self, value: Any, rng: SourceRange, side: str) -> None:
        if not is_number(value):
            fail(
                "Invalid operand",
                f"Unsuitable value for {side} operand: a number is required, but this is "
                f"{a_or_an(type_name(value))}.",
                rng,
            )

    def conditional(self, e: Conditional) -> Any:
        cond = self.eval(e.condition)
        if isinstance(cond, Template):
            not_known(cond, e.condition.range, "as a condition")
        if not isinstance(cond, bool):
            fail(
                "Incorrect condition type",
                "The condition expression must be a bool (true or false), but this is "
                f"{a_or_an(type_name(cond))}.",
                e.condition.range,
            )
        return self.eval(e.true_expr if cond else e.false_expr)

    def for_expr(self, e: ForExpr) -> Any:
        collection = self.eval(e.collection)
        if isinstance(collection, Template):
            not_known(collection, e.collection.range, "as the collection of a for expression")
        items: Iterable[tuple[Any, Any]]
        if isinstance(collection, list | tuple):
            items = enumerate(collection)
        elif isinstance(collection, Mapping):
            items = ((k, collection[k]) for k in sorted(collection))
        elif collection is None:
            fail(
                "Iteration over null value",
                "A null value cannot be used as the collection in a for expression.",
                e.collection.range,
            )
        else:
            fail(
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
                        not_known(keep, e.condition.range, "as a for condition")
                    if not isinstance(keep, bool):
                        fail(
                            "Invalid 'for' condition",
                            "The 'if' clause of a for expression must be a bool, but this is "
                            f"{a_or_an(type_name(keep))}.",
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
                    fail(
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
        spec = FUNCTIONS.get(e.name)
        if spec is None:
            fail(
                "Call to unknown function",
                f'There is no function named "{e.name}".' + did_you_mean(e.name, FUNCTIONS),
                e.range,
            )
        args = [self.eval(a) for a in e.args]
        if e.expand_final:
            if not args or not isinstance(args[-1], list | tuple):
                fail(
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
            fail(
                "Invalid function argument",
                f'Function "{e.name}" expects {want} argument{"s" if want != "1" else ""}, '
                f"but {len(args)} {'was' if len(args) == 1 else 'were'} given.",
                e.range,
            )
        result = impl(Call(self, e), args)
        if isinstance(result, list | str | Template):
            self.check_size(result, e.range)
        if isinstance(result, list):
            self.charge(len(result), e.range)
        return result
