"""Input variables: declarations, values from every source, type conversion, validation.

Precedence, lowest first (as Terraform): `default`, `TUNECTL_VAR_name` environment
variables, `--var-file` files in the order given, `--var NAME=VALUE` in the order given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl.config.model import Variable
from tunectl.config.schema import VARIABLE_SCHEMA, Reader, convert
from tunectl.config.sensitive import refers_to
from tunectl.diags import DiagnosticError, Diagnostics, SourceRange, error
from tunectl.hcl.expr import Scope, evaluate
from tunectl.hcl.schema import check_body
from tunectl.hcl.syntax import Block, Body, parse
from tunectl.names import check_name

_TYPE_RE = re.compile(
    r"^(string|number|bool|any|list|map|list\((string|number|bool|any)\)|map\((string|number|bool|any)\))$"
)


def _type_text(block: Block, diags: Diagnostics) -> str | None:
    attr = block.body.attributes.get("type")
    if attr is None:
        return None
    from tunectl.hcl.syntax import FunctionCall, Literal, Traversal

    expr = attr.expr
    text: str | None = None
    if isinstance(expr, Traversal) and not expr.steps:
        text = expr.root
    elif isinstance(expr, FunctionCall) and len(expr.args) == 1:
        arg = expr.args[0]
        if isinstance(arg, Traversal) and not arg.steps:
            text = f"{expr.name}({arg.root})"
    elif isinstance(expr, Literal) and isinstance(expr.value, str):
        text = expr.value
    if text is None or not _TYPE_RE.match(text):
        diags.append(
            error(
                "Invalid type specification",
                "A type is one of: string, number, bool, any, list(T), map(T).",
                attr.range,
                f'in variable "{block.labels[0]}"',
            )
        )
        return None
    return text


def declare(blocks: Sequence[Block], diags: Diagnostics) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    for block in blocks:
        context = f'in variable "{block.labels[0]}"' if block.labels else None
        check_body(block.body, VARIABLE_SCHEMA, context, diags)
        if len(block.labels) != 1:
            continue
        name = block.labels[0]
        invalid = check_name(name, "variable", block.range)
        if invalid is not None:
            diags.append(invalid)
            continue
        if name in out:
            diags.append(
                error(
                    "Duplicate variable declaration",
                    f'A variable named "{name}" was already declared at {out[name].range}. '
                    "Variable names must be unique within a configuration.",
                    block.range,
                )
            )
            continue
        reader = Reader(block.body, Scope(), context, diags)
        var = Variable(
            name=name,
            type=_type_text(block, diags),
            description=reader.get("description", "string", ""),
            sensitive=reader.get("sensitive", "bool", False),
            range=block.range,
        )
        if "default" in block.body.attributes:
            var.has_default = True
            var.default = reader.get("default")
            if var.default is not None and var.type:
                try:
                    var.default = convert(var.default, var.type)
                except ValueError as exc:
                    reader.fail(
                        block.body.attributes["default"],
                        "Invalid default value for variable",
                        f"{exc}.",
                    )
        out[name] = var
    return out


def _parse_cli_value(raw: str, type_: str | None) -> Any:
    """A --var or environment value: strings stay strings; others parse as HCL/JSON."""
    if type_ in (None, "string"):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        body = parse(f"v = {raw}\n", "<value>")
        return evaluate(body.attributes["v"].expr, Scope())


def resolve(
    variables: Mapping[str, Variable],
    cli_vars: Sequence[str],
    var_files: Sequence[Path],
    environ: Mapping[str, str],
    diags: Diagnostics,
) -> dict[str, Any]:
    """Evaluate every variable's value; collect diagnostics for bad or missing ones."""
    raw: dict[str, tuple[Any, str, SourceRange | None]] = {}
    for key, value in environ.items():
        if key.startswith("TUNECTL_VAR_") and key[12:] in variables:
            raw[key[12:]] = (value, f"environment variable {key}", None)
    for path in var_files:
        _read_var_file(path, variables, raw, diags)
    for item in cli_vars:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            diags.append(
                error(
                    "Invalid -var option",
                    f'The given --var option "{item}" is not correctly specified. '
                    "It must be a variable name and value separated by an equals sign, "
                    "like --var max_trials=40.",
                )
            )
            continue
        if name not in variables:
            diags.append(_undeclared(name, "--var option", variables))
            continue
        raw[name] = (value, "--var option", None)

    values: dict[str, Any] = {}
    for name, var in variables.items():
        if name in raw:
            value, origin, where = raw[name]
            try:
                if isinstance(value, str) and origin != "variables file":
                    value = _parse_cli_value(value, var.type)
                if var.type:
                    value = convert(value, var.type)
            except (ValueError, DiagnosticError) as exc:
                msg = exc.diags[0].summary if isinstance(exc, DiagnosticError) else str(exc)
                if var.sensitive:
                    # The reason may quote the value (`got "..."`): say only what is wanted.
                    msg = f"it must be {_a_type(var.type)} (the value is sensitive: not shown)"
                diags.append(
                    error(
                        "Invalid value for input variable",
                        f'The value for variable "{name}" from the {origin} is not valid: {msg}.',
                        where,
                    )
                )
                continue
            values[name] = value
        elif var.has_default:
            values[name] = var.default
        else:
            diags.append(
                error(
                    "No value for required variable",
                    f'The variable "{name}" has no default. Set it with --var {name}=VALUE, '
                    f"a --var-file, or the environment variable TUNECTL_VAR_{name}.",
                    var.range,
                    f'in variable "{name}"',
                )
            )
    return values


def _a_type(type_: str | None) -> str:
    text = type_ or "any"
    return ("an " if text[0] in "aeiou" else "a ") + text


def validate(
    blocks: Sequence[Block],
    values: Mapping[str, Any],
    diags: Diagnostics,
    sensitive: Collection[str] = (),
) -> None:
    """Run every variable's `validation` blocks against its value.

    An `error_message` that refers to a `sensitive` variable is not shown (as Terraform)."""
    hidden = frozenset(("var", name) for name in sensitive)
    scope = Scope(variables=values, sensitive=hidden)
    for block in blocks:
        if len(block.labels) != 1 or block.labels[0] not in values:
            continue
        context = f'in variable "{block.labels[0]}"'
        for rule in block.body.blocks_of("validation"):
            reader = Reader(rule.body, scope, context, diags)
            cond_attr = rule.body.attributes.get("condition")
            if cond_attr is None:
                continue
            ok = reader.get("condition")
            if ok is None:
                continue
            if not isinstance(ok, bool):
                reader.fail(
                    cond_attr,
                    "Invalid validation condition",
                    "The condition must be true or false.",
                )
                continue
            if not ok:
                message_attr = rule.body.attributes.get("error_message")
                if message_attr is not None and refers_to(message_attr.expr, hidden):
                    message = (
                        "The error message included a sensitive value, so it will not be displayed."
                    )
                else:
                    message = reader.get("error_message", "string", "") or "the value is not valid"
                diags.append(
                    error(
                        "Invalid value for variable",
                        f"{message}\n\nThis was checked by the validation rule at {rule.range}.",
                        cond_attr.range,
                        context,
                    )
                )


def _read_var_file(
    path: Path,
    variables: Mapping[str, Variable],
    raw: dict[str, tuple[Any, str, SourceRange | None]],
    diags: Diagnostics,
) -> None:
    try:
        text = path.read_text()
    except OSError as exc:
        diags.append(
            error(
                "Failed to read variables file",
                f"Given variables file {path} does not exist or cannot be read: {exc.strerror}.",
            )
        )
        return
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            diags.append(error("Invalid variables file", f"{path} is not valid JSON: {exc}."))
            return
        if not isinstance(data, dict):
            diags.append(error("Invalid variables file", f"{path} must hold a JSON object."))
            return
        for name, value in data.items():
            if name not in variables:
                diags.append(_undeclared(name, f"variables file {path}", variables))
            else:
                raw[name] = (value, "variables file", None)
        return
    try:
        body: Body = parse(text, str(path))
    except DiagnosticError as exc:
        diags.extend(exc.diags)
        return
    for block in body.blocks:
        diags.append(
            error(
                "Unexpected block in variables file",
                "A variables file holds only NAME = VALUE lines.",
                block.range,
            )
        )
    for name, attr in body.attributes.items():
        if name not in variables:
            diags.append(_undeclared(name, f"variables file {path}", variables, attr.range))
            continue
        try:
            raw[name] = (evaluate(attr.expr, Scope()), "variables file", attr.range)
        except DiagnosticError as exc:
            diags.extend(exc.diags)


def _undeclared(
    name: str, origin: str, variables: Mapping[str, Variable], where: SourceRange | None = None
):
    from tunectl.diags import did_you_mean

    return error(
        "Value for undeclared variable",
        f'A variable named "{name}" was assigned in the {origin}, but the configuration '
        f"does not declare it.{did_you_mean(name, variables)} Declare it with a "
        f'variable "{name}" block, or remove the assignment.',
        where,
    )
