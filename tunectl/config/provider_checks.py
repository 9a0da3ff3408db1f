"""The provider's part of `validate`: its validation calls, and the metric sources it reads.

The configuration decoder calls these once a provider block or a trial is decoded. Each
turns the provider's answer (`AttributeDiagnostic`s naming attribute paths) into
diagnostics located in the HCL source: the path's first step names an attribute of the
block (or of the first of several bodies that has it: a task's own, then its trial's); a
path that names none points at the block. A provider that raises is reported, never
allowed to hide the user's other errors.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tunectl.diags import Diagnostic, SourceRange, error
from tunectl.hcl.expr import Path
from tunectl.hcl.syntax import Body, Literal, TemplateExpr
from tunectl.providers.base import (
    METRICS_KIND_SOURCES,
    AttributeDiagnostic,
    Provider,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
)
from tunectl.providers.bodies import COMMAND
from tunectl.s3 import is_object_uri


def locate(
    found: ValidateResponse, bodies: Sequence[Body], where: SourceRange | None, context: str
) -> list[Diagnostic]:
    """The provider's diagnostics, each at the attribute its path names (else `where`)."""
    return [_located(diag, bodies, where, context) for diag in found.diagnostics]


def _located(
    diag: AttributeDiagnostic, bodies: Sequence[Body], where: SourceRange | None, context: str
) -> Diagnostic:
    subject = where
    if diag.path and isinstance(diag.path[0], str):
        for body in bodies:
            attr = body.attributes.get(diag.path[0])
            if attr is not None:
                subject = attr.range
                break
    return Diagnostic(diag.severity, diag.summary, diag.detail, subject, context)


def body_problems(provider: type[Provider] | None, name: str, value: Any) -> list[tuple[str, str]]:
    """(summary, detail) for a body the provider's declared kinds cannot take: a shape it
    does not accept, or placeholders its kind refuses. Without a provider class (it
    failed to load: reported already), the `command` body's rules apply."""
    specs = provider.task_bodies if provider is not None else (COMMAND,)
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        return []
    try:
        kind = spec.kind_for(value)
    except ValueError as exc:
        who = provider.name if provider is not None else "the"
        return [("Incorrect attribute value type", f"In the {who} provider, {exc}.")]
    return [("Placeholder in an unsafe position", why) for why in kind.refusals(value)] + [
        ("Invalid task body", f'"{name}": {why}') for why in kind.problems(value)
    ]


def number_slots(provider: type[Provider] | None, name: str, value: Any) -> list[Path]:
    """The placeholders of a body that its kind allows only when their value is a number
    (a SQL placeholder outside a string literal): the loader checks their types."""
    specs = provider.task_bodies if provider is not None else (COMMAND,)
    spec = next((s for s in specs if s.name == name), None)
    try:
        return spec.kind_for(value).number_slots(value) if spec is not None else []
    except ValueError:
        return []


def check_provider_block(
    cls: type[Provider],
    settings: Mapping[str, Any],
    body: Body,
    where: SourceRange,
    context: str,
) -> list[Diagnostic]:
    """`Provider.validate_config` on a provider block's (schema-checked) settings."""
    try:
        found = cls.validate_config(ValidateConfigRequest(dict(settings)))
    except Exception as exc:  # a provider bug must not hide the user's other errors
        return [
            error(
                "Invalid provider settings",
                f"The {cls.name} provider failed: {exc}",
                where,
                context,
            )
        ]
    return locate(found, [body], where, context)


def check_task(
    cls: type[Provider],
    config: Mapping[str, Any],
    settings: Mapping[str, Any],
    task: str,
    bodies: Sequence[Body],
    where: SourceRange,
    context: str,
    body_names: Collection[str] = (),
) -> list[Diagnostic]:
    """`Provider.validate_task` on one task's provider-specific settings; `bodies` are
    where those settings are written, most specific first (the task's, the trial's);
    `body_names` the task bodies it sets."""
    try:
        request = ValidateTaskRequest(dict(settings), dict(config), task, frozenset(body_names))
        found = cls.validate_task(request)
    except Exception as exc:  # a provider bug must not hide the user's other errors
        detail = f"the {cls.name} provider could not check the trial: {exc}"
        return [error("Invalid trial settings", detail, where, context)]
    return locate(found, bodies, where, context)


def _in_storage(body: Body) -> bool:
    """Whether a `metrics "json"` block's path names an object in storage (`oss://...`)."""
    attr = body.attributes.get("path")
    expr = attr.expr if attr is not None else None
    head: object = None
    if isinstance(expr, Literal):
        head = expr.value
    elif isinstance(expr, TemplateExpr) and expr.parts:
        head = expr.parts[0]
    return isinstance(head, str) and is_object_uri(head)


def check_metric_sources(
    cls: type[Provider], bodies: Sequence[Body], context: str, skip: Collection[str] = ()
) -> list[Diagnostic]:
    """A located error for each `metrics "KIND"` block (in `bodies`) whose source the
    provider cannot read; kinds in `skip` are reported elsewhere."""
    readable = cls.capabilities.metric_sources
    kinds = ", ".join(f'metrics "{k}"' for k, s in METRICS_KIND_SOURCES.items() if s in readable)
    out = []
    for body in bodies:
        for block in body.blocks_of("metrics"):
            kind = block.labels[0] if len(block.labels) == 1 else ""
            source = METRICS_KIND_SOURCES.get(kind)
            if source is None or kind in skip or source in readable:
                continue
            if kind == "json" and _in_storage(block.body):
                continue  # tunectl reads it through the storage client, whatever the provider
            out.append(
                error(
                    "Unsupported metrics source",
                    f'The {cls.name} provider cannot read metrics "{kind}" (the tasks\' '
                    f"{source.value} metrics). It reads: {kinds}.",
                    block.range,
                    context,
                )
            )
    return out
