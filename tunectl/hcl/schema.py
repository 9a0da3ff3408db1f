"""Attribute and block schemas of an HCL body, and typed reading of its attributes.

One type, `AttrSpec`, describes an attribute wherever one is declared: in tunectl's own
block schemas (`tunectl.config.schema`) and in a provider's `config_schema`/`trial_schema`
(`tunectl.providers.base` re-exports it under the same name). A `BlockSchema` says which
attributes and nested blocks a body may hold; `check_body` reports unknown, missing and
duplicated ones (with "did you mean"). `Reader` evaluates a body's attributes against a
`Scope` and converts each to its declared type, turning every mistake into a located
diagnostic: an element of a `list(string)`, `list(number)` or `map(string)` that does not
fit is pointed at where it is written.

Nothing here knows tunectl's blocks; `tunectl.config.schema` adds its own types
("duration", "command") by extending `Reader.convert`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tunectl.diags import (
    Diagnostic,
    DiagnosticError,
    Diagnostics,
    SourceRange,
    did_you_mean,
    error,
)
from tunectl.hcl.expr import Scope, Template, evaluate
from tunectl.hcl.syntax import Attribute, Block, Body, Expr, Literal, ObjectExpr, TupleExpr


@dataclass(frozen=True)
class AttrSpec:
    """One attribute a body accepts.

    `type` is one of: "string", "number", "int", "bool", "list", "map", "any", or a
    collection with a checked element type: "list(string)", "list(number)", "list(int)",
    "list(bool)", "map(string)", "map(number)", ... (a reader may add types of its own).
    `choices` limits a string to listed values; `default` is what a missing attribute
    means; `description` is shown to users (docs, `tunectl providers`); `sensitive` marks a
    value that must not be shown.
    """

    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    choices: tuple[str, ...] = ()
    sensitive: bool = False


def attributes(*specs: AttrSpec) -> dict[str, AttrSpec]:
    """The attributes of a `BlockSchema`, by name."""
    return {spec.name: spec for spec in specs}


@dataclass(frozen=True)
class BlockSchema:
    attrs: Mapping[str, AttrSpec] = field(default_factory=dict)
    blocks: Mapping[str, NestedBlock] = field(default_factory=dict)
    # Accept any attribute (settings checked by their own schema, e.g. a provider's).
    open_attrs: bool = False


@dataclass(frozen=True)
class NestedBlock:
    schema: BlockSchema
    labels: tuple[str, ...] = ()  # label names, e.g. ("name",)
    max_items: int | None = None
    required: bool = False
    # When the first label must be one of these (algorithm names, backend kinds, ...).
    label_choices: tuple[str, ...] = ()


def block_context(block: Block) -> str:
    labels = "".join(f' "{label}"' for label in block.labels)
    return f"in {block.type}{labels}"


def check_body(body: Body, schema: BlockSchema, context: str | None, diags: Diagnostics) -> None:
    """Report unknown attributes/blocks, missing required ones, and duplicates."""
    for name, attr in body.attributes.items():
        if name in schema.attrs or schema.open_attrs:
            continue
        hint = did_you_mean(name, schema.attrs)
        if name in schema.blocks:
            detail = f'"{name}" is a block here, not an argument: write {name} {{ ... }}.'
            diags.append(error("Unsupported argument", detail, attr.range, context))
            continue
        diags.append(
            error(
                "Unsupported argument",
                f'An argument named "{name}" is not expected here.{hint}',
                attr.range,
                context,
            )
        )
    for name, spec in schema.attrs.items():
        if spec.required and name not in body.attributes:
            diags.append(
                error(
                    "Missing required argument",
                    f'The argument "{name}" is required, but no definition was found.',
                    body.range,
                    context,
                )
            )
    seen: dict[str, int] = {}
    for block in body.blocks:
        nested = schema.blocks.get(block.type)
        if nested is None:
            if block.type in schema.attrs:
                detail = f'"{block.type}" is an argument here: write {block.type} = ...'
            else:
                hint = did_you_mean(block.type, schema.blocks)
                detail = f'Blocks of type "{block.type}" are not expected here.{hint}'
            diags.append(error("Unsupported block type", detail, block.range, context))
            continue
        if len(block.labels) != len(nested.labels):
            if nested.labels:
                names = ", ".join(nested.labels)
                detail = (
                    f'A "{block.type}" block needs {len(nested.labels)} label(s): {names}, '
                    f'as in {block.type} "NAME" {{ ... }}.'
                )
            else:
                detail = f'A "{block.type}" block takes no labels: write {block.type} {{ ... }}.'
            diags.append(
                error(
                    "Missing name for block" if not block.labels else "Extraneous label for block",
                    detail,
                    block.range,
                    context,
                )
            )
            continue
        if nested.label_choices and block.labels[0] not in nested.label_choices:
            hint = did_you_mean(block.labels[0], nested.label_choices)
            diags.append(
                error(
                    f"Unknown {block.type.replace('_', ' ')}",
                    f'"{block.labels[0]}" is not a known {block.type}.{hint} '
                    f"Choose one of: {', '.join(nested.label_choices)}.",
                    block.range,
                    context,
                )
            )
        seen[block.type] = seen.get(block.type, 0) + 1
        # Recurse into bodies whose contents this schema declares; open settings blocks
        # (algorithm, provider, ...) are checked by the code that reads them.
        if nested.schema.attrs or nested.schema.blocks:
            check_body(block.body, nested.schema, block_context(block), diags)
        if nested.max_items is not None and seen[block.type] > nested.max_items:
            diags.append(
                error(
                    "Duplicate block",
                    f'Only {nested.max_items} "{block.type}" block is allowed here.',
                    block.range,
                    context,
                )
            )
    for name, nested in schema.blocks.items():
        if nested.required and name not in seen:
            diags.append(
                error(
                    "Missing required block",
                    f'A "{name}" block is required here.',
                    body.range,
                    context,
                )
            )


TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "int": "a whole number",
    "bool": "a bool (true or false)",
    "list": "a list",
    "map": "a map",
}

_COLLECTION = re.compile(r"(list|map)\((\w+)\)")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | Template):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


_PLURALS = {
    "string": "strings",
    "number": "numbers",
    "int": "whole numbers",
    "bool": "bools",
    "any": "values",
}


def type_words(type_: str) -> str:
    """How a type is named in a message: "a string", "a list of strings", ..."""
    collection = _COLLECTION.fullmatch(type_)
    if collection:
        kind, element = collection.groups()
        return f"a {kind} of {_PLURALS.get(element, element)}"
    return TYPE_WORDS.get(type_, type_)


class ElementError(ValueError):
    """An element of a list or map does not fit its element type: `where` is its index
    (int) or key (str)."""

    def __init__(self, where: int | str, problem: str) -> None:
        self.where = where
        self.problem = problem
        shown = f"element {where}" if isinstance(where, int) else f'element "{where}"'
        super().__init__(f"{shown}: {problem}")


def convert(value: Any, type_: str) -> Any:
    """Convert an evaluated value to `type_`; ValueError with a sentence when it can't.

    Numbers and bools read as strings, and numeric strings as numbers, as in HCL; an
    element of a typed collection converts the same way, else `ElementError`.
    """
    if type_ == "any":
        return value
    if type_ == "string":
        if isinstance(value, str | Template):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
    elif type_ in ("number", "int"):
        if isinstance(value, str) and not isinstance(value, bool):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("must be a finite number")
            if type_ == "int":
                if float(value) != int(value):
                    raise ValueError(f"must be a whole number, got {value}")
                return int(value)
            return value
    elif type_ == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    elif type_ == "list":
        if isinstance(value, list):
            return value
    elif type_ == "map":
        if isinstance(value, dict):
            return value
    elif collection := _COLLECTION.fullmatch(type_):
        kind, element = collection.groups()
        if kind == "list" and isinstance(value, list):
            return [_element(i, item, element) for i, item in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {key: _element(key, item, element) for key, item in value.items()}
    raise ValueError(f"{type_words(type_)} is required, but got {type_name(value)}")


def _element(where: int | str, value: Any, type_: str) -> Any:
    try:
        return convert(value, type_)
    except ValueError as exc:
        raise ElementError(where, str(exc)) from None


def element_range(expr: Expr, where: int | str) -> SourceRange | None:
    """Where element `where` of a literal list or map is written, when it is."""
    if isinstance(expr, TupleExpr) and isinstance(where, int) and where < len(expr.items):
        return expr.items[where].range
    if isinstance(expr, ObjectExpr) and isinstance(where, str):
        for key, item in expr.items:
            if isinstance(key, Literal) and str(key.value) == where:
                return item.range
    return None


class Reader:
    """Evaluates attributes of one body, collecting diagnostics instead of raising.

    Subclasses add types by overriding `convert`, and name the types that may hold a
    value known only later (a deferred `Template`) in `TEMPLATE_TYPES`.
    """

    TEMPLATE_TYPES: ClassVar[frozenset[str]] = frozenset({"string", "any"})
    DEFERRED_SUMMARY: ClassVar[str] = "Value not known yet"
    DEFERRED_DETAIL: ClassVar[str] = '"{name}" cannot use a value that is not known yet.'

    def __init__(self, body: Body, scope: Scope, context: str | None, diags: Diagnostics):
        self.body = body
        self.scope = scope
        self.context = context
        self.diags = diags

    def has(self, name: str) -> bool:
        return name in self.body.attributes

    def attr(self, name: str) -> Attribute | None:
        return self.body.attributes.get(name)

    def convert(self, value: Any, type_: str) -> Any:
        return convert(value, type_)

    def get(self, name: str, type_: str = "any", default: Any = None, scope: Scope | None = None):
        attr = self.body.attributes.get(name)
        if attr is None:
            return default
        try:
            value = evaluate(attr.expr, scope or self.scope)
        except DiagnosticError as exc:
            self.diags.extend(with_context(exc.diags, self.context))
            return default
        if value is None:
            return default
        if isinstance(value, Template) and type_ not in self.TEMPLATE_TYPES:
            self.fail(attr, self.DEFERRED_SUMMARY, self.DEFERRED_DETAIL.format(name=name))
            return default
        try:
            return self.convert(value, type_)
        except ElementError as exc:
            where = element_range(attr.expr, exc.where) or attr.range
            self.diags.append(
                error(
                    "Incorrect attribute value type",
                    f'Inappropriate value for "{name}": {exc}.',
                    where,
                    self.context,
                )
            )
            return default
        except ValueError as exc:
            self.fail(
                attr, "Incorrect attribute value type", f'Inappropriate value for "{name}": {exc}.'
            )
            return default

    def fail(self, attr: Attribute | None, summary: str, detail: str) -> None:
        subject = attr.range if attr is not None else self.body.range
        self.diags.append(error(summary, detail, subject, self.context))


def with_context(diags: list[Diagnostic], context: str | None) -> list[Diagnostic]:
    """`diags`, each given `context` unless it has its own."""
    if context is None:
        return list(diags)
    return [
        d if d.context else Diagnostic(d.severity, d.summary, d.detail, d.subject, context)
        for d in diags
    ]
