"""The provider, backend and storage blocks: settings read against declared attributes.

A provider's block is read against the provider's `config_schema` (and its trial and task
blocks against `trial_schema`, through `read_settings`), then handed to the provider's
own `validate_config`, whose diagnostics (errors and warnings) are located here. Backend
and storage blocks are read against `tunectl.config.schema.BACKEND_SCHEMAS` and
`STORAGE_SCHEMAS`; none may hold credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.config.model import ProviderConfig
from tunectl.config.provider_checks import check_provider_block
from tunectl.config.schema import (
    BACKEND_SCHEMAS,
    OPEN,
    REQUIRED_SETTINGS,
    STORAGE_SCHEMAS,
    Reader,
)
from tunectl.diags import Diagnostics, SourceRange, did_you_mean, error
from tunectl.durations import parse_duration
from tunectl.hcl.expr import Scope
from tunectl.hcl.schema import AttrSpec, block_context, check_body
from tunectl.hcl.syntax import Block, Body
from tunectl.hcl.values import Template
from tunectl.providers import registry


def provider_class(name: str, where: SourceRange | None, context: str | None, diags: Diagnostics):
    try:
        return registry.load(name)
    except KeyError:
        installed = sorted(registry.entries())
        diags.append(
            error(
                "Unknown provider",
                f'No provider named "{name}" is installed.{did_you_mean(name, installed)} '
                f"Installed providers: {', '.join(installed) or 'none'}. Install the provider's "
                f"package (e.g. pip install tunectl-provider-{name}) and run tunectl init.",
                where,
                context,
            )
        )
    except registry.ProviderLoadError as exc:
        diags.append(error("Failed to load provider", f"{exc}.", where, context))
    return None


def read_settings(
    body: Body,
    specs: Sequence[AttrSpec],
    reader: Reader,
    skip: Sequence[str],
    what: str,
    deferred: bool = False,
) -> dict[str, Any]:
    """Evaluate a body's provider-specific attributes against the provider's AttrSpecs."""
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for name, attr in body.attributes.items():
        if name in skip:
            continue
        spec = by_name.get(name)
        if spec is None:
            reader.fail(
                attr,
                "Unsupported argument",
                f'An argument named "{name}" is not expected in {what}.'
                f"{did_you_mean(name, list(by_name) + list(skip))}",
            )
            continue
        value = reader.get(name, spec.type)
        if value is None:
            continue
        if isinstance(value, Template) and not deferred:
            reader.fail(
                attr,
                "Value not known until a trial is created",
                f'"{name}" cannot use placeholders.',
            )
            continue
        if spec.choices and value not in spec.choices:
            reader.fail(
                attr,
                "Invalid value",
                f'"{value}" is not a valid {name}.{did_you_mean(str(value), spec.choices)} '
                f"Choose one of: {', '.join(spec.choices)}.",
            )
            continue
        out[name] = value
    for spec in specs:
        if spec.required and spec.name not in body.attributes:
            reader.fail(
                None,
                "Missing required argument",
                f'The argument "{spec.name}" is required in {what}.',
            )
        elif spec.name not in out and spec.default is not None:
            out[spec.name] = spec.default
    return out


def decode_providers(root: Body, scope: Scope, diags: Diagnostics) -> dict[str, ProviderConfig]:
    out: dict[str, ProviderConfig] = {}
    for block in root.blocks_of("provider"):
        if len(block.labels) != 1 or block.labels[0] in out:
            continue
        name = block.labels[0]
        context = block_context(block)
        cls = provider_class(name, block.range, context, diags)
        if cls is None:
            continue
        reader = Reader(block.body, scope, context, diags)
        settings = read_settings(block.body, cls.config_schema, reader, (), f'provider "{name}"')
        check_body(block.body, OPEN, context, diags)  # settings only: no nested blocks
        out[name] = ProviderConfig(name, settings, block.range)
        diags.extend(check_provider_block(cls, settings, block.body, block.range, context))
    return out


def backend_or_storage(
    root: Body, kind: str, scope: Scope, diags: Diagnostics
) -> tuple[str, dict[str, Any], SourceRange | None]:
    """The kind, settings and location of the backend or storage block (or the default)."""
    default: tuple[str, dict[str, Any], SourceRange | None]
    if kind == "backend":
        blocks = [b for t in root.blocks_of("tunectl") for b in t.body.blocks_of("backend")]
        default = ("local", {"path": "state/tunectl.db"}, None)
        schemas = BACKEND_SCHEMAS
    else:
        blocks = root.blocks_of("storage")
        default = ("local", {"path": "state/models", "keep": "all"}, None)
        schemas = STORAGE_SCHEMAS
    if not blocks or len(blocks[0].labels) != 1 or blocks[0].labels[0] not in schemas:
        return default
    block = blocks[0]
    label = block.labels[0]
    context = block_context(block)
    reader = Reader(block.body, scope, context, diags)
    settings = read_settings(block.body, schemas[label], reader, (), f'{kind} "{label}"')
    for required in REQUIRED_SETTINGS.get((kind, label), ()):
        if required not in settings:
            reader.fail(
                None,
                "Missing required argument",
                f'The argument "{required}" is required in {kind} "{label}".',
            )
    for sensitive in ("access_key", "secret_key", "token"):
        if sensitive in block.body.attributes:
            reader.fail(
                block.body.attributes[sensitive],
                "Credentials in configuration",
                "Credentials never go in HCL: use the standard credential chain (environment "
                "or profile).",
            )
    if "keep" in settings:
        keep = settings["keep"]
        if not (
            keep in ("all", "best")
            or (isinstance(keep, int) and not isinstance(keep, bool) and keep > 0)
        ):
            reader.fail(
                block.body.attributes["keep"],
                "Invalid value",
                'keep must be "all", "best" or a positive number of best trials.',
            )
    _check_s3_settings(block, settings, reader)
    if kind == "storage":
        settings.setdefault("keep", "all")
    return label, settings, block.range


def _check_s3_settings(block: Block, settings: Mapping[str, Any], reader: Reader) -> None:
    """An endpoint must be an http(s) URL with a host (botocore's own check fails late,
    without a location); a retry window is a positive duration."""
    from urllib.parse import urlsplit

    endpoint = settings.get("endpoint")
    if isinstance(endpoint, str) and endpoint:
        try:
            parts = urlsplit(endpoint)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # e.g. a port that is not a number
            ok = False
        if not ok:
            reader.fail(
                block.body.attributes["endpoint"],
                "Invalid endpoint",
                f"{endpoint!r} is not an endpoint URL: write the scheme and host, such as "
                '"https://oss-cn-hangzhou.aliyuncs.com" or "http://127.0.0.1:9000".',
            )
    window = settings.get("retry_window")
    if isinstance(window, str):
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            reader.fail(block.body.attributes["retry_window"], "Invalid retry_window", str(exc))
            return
        if seconds <= 0:
            reader.fail(
                block.body.attributes["retry_window"],
                "Invalid retry_window",
                'retry_window must be longer than 0, such as "30s" or "10m" (the default).',
            )
