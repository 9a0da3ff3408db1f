"""What an expression refers to: the `var.*`, `local.*`, `param.*`, ... paths it names.

Read from the syntax tree alone, without evaluating: the configuration uses it to order
locals, to find sensitive values and to check placeholders.
"""

from __future__ import annotations

from typing import Any

from tunectl.diags import SourceRange
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
from tunectl.hcl.values import Path, PathPart


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
