"""Block schemas and typed attribute evaluation.

A `BlockSchema` says which attributes and nested blocks a body may hold; `check_body`
reports unknown, missing and duplicated ones (with "did you mean"). `Reader` evaluates a
body's attributes against a `Scope` and converts them to the declared type, turning every
mistake into a located diagnostic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunectl.diags import Diagnostic, DiagnosticError, Diagnostics, did_you_mean, error
from tunectl.durations import parse_duration
from tunectl.hcl.expr import Scope, evaluate
from tunectl.hcl.syntax import Attribute, Block, Body
from tunectl.hcl.values import Template


@dataclass(frozen=True)
class AttrSchema:
    type: str = "any"  # string number int bool duration list map any command
    required: bool = False
    deferred: bool = False  # may hold ${param.*}/${trial.*}/${experiment.*}


@dataclass(frozen=True)
class BlockSchema:
    attrs: Mapping[str, AttrSchema] = field(default_factory=dict)
    blocks: Mapping[str, NestedBlock] = field(default_factory=dict)
    # Accept any attribute (provider-specific settings are checked by their own schema).
    open_attrs: bool = False


@dataclass(frozen=True)
class NestedBlock:
    schema: BlockSchema
    labels: tuple[str, ...] = ()  # label names, e.g. ("name",)
    max_items: int | None = None
    required: bool = False
    # When the label must be one of these (algorithm names, early-stopping names, ...).
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


_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "int": "a whole number",
    "bool": "a bool (true or false)",
    "duration": 'a duration such as "30m" or "2h"',
    "list": "a list",
    "map": "a map",
    "command": "a string or a list of strings",
}


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


def convert(value: Any, type_: str) -> Any:
    """Convert an evaluated value to `type_`; ValueError with a sentence when it can't."""
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
    elif type_ == "duration":
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str):
            return parse_duration(value)
    elif type_ == "list":
        if isinstance(value, list):
            return value
    elif type_ == "map":
        if isinstance(value, dict):
            return value
    elif type_ == "command":
        if isinstance(value, str | Template):
            if not str(value).strip():
                raise ValueError("must not be empty")
            return value
        if isinstance(value, list) and value:
            for item in value:
                if not isinstance(item, str | Template | int | float) or isinstance(item, bool):
                    raise ValueError("must be a list of strings")
            return [v if isinstance(v, str | Template) else str(v) for v in value]
    got = type_name(value)
    raise ValueError(f"{_TYPE_WORDS.get(type_, type_)} is required, but got {got}")


class Reader:
    """Evaluates attributes of one body, collecting diagnostics instead of raising."""

    def __init__(self, body: Body, scope: Scope, context: str | None, diags: Diagnostics):
        self.body = body
        self.scope = scope
        self.context = context
        self.diags = diags

    def has(self, name: str) -> bool:
        return name in self.body.attributes

    def attr(self, name: str) -> Attribute | None:
        return self.body.attributes.get(name)

    def get(self, name: str, type_: str = "any", default: Any = None, scope: Scope | None = None):
        attr = self.body.attributes.get(name)
        if attr is None:
            return default
        try:
            value = evaluate(attr.expr, scope or self.scope)
        except DiagnosticError as exc:
            self.diags.extend(_with_context(exc.diags, self.context))
            return default
        if value is None:
            return default
        if isinstance(value, Template) and type_ not in ("string", "command", "any"):
            self.fail(
                attr,
                "Value not known until a trial is created",
                f'"{name}" cannot use ${{param.*}}, ${{trial.*}} or ${{experiment.*}}.',
            )
            return default
        try:
            return convert(value, type_)
        except ValueError as exc:
            self.fail(
                attr, "Incorrect attribute value type", f'Inappropriate value for "{name}": {exc}.'
            )
            return default

    def fail(self, attr: Attribute | None, summary: str, detail: str) -> None:
        subject = attr.range if attr is not None else self.body.range
        self.diags.append(error(summary, detail, subject, self.context))


def _with_context(diags: list[Diagnostic], context: str | None) -> list[Diagnostic]:
    if context is None:
        return list(diags)
    return [
        d if d.context else Diagnostic(d.severity, d.summary, d.detail, d.subject, context)
        for d in diags
    ]
