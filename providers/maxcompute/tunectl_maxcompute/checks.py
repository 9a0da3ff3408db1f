"""Offline checks of `provider "maxcompute" { ... }` and of a MaxCompute task's settings:
what the schema cannot say. No network here (`validate` runs in CI)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tunectl.providers.base import (
    AttributeDiagnostic,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
    attribute_error,
)

# MaxCompute project names: a letter, then letters, digits and underscores (3-28 long).
_PROJECT = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,27}")
# Settings tunectl sets itself on every job (how it finds its jobs again).
RESERVED_HINTS = frozenset({"EXT_PLATFORM_ID", "EXT_TASK_ID", "EXT_NODE_NAME", "TUNECTL_TIMEOUT"})


def check_config(request: ValidateConfigRequest) -> ValidateResponse:
    config = request.config
    out: list[AttributeDiagnostic] = []
    project = str(config.get("project") or "")
    if not _PROJECT.fullmatch(project):
        out.append(
            attribute_error(
                ("project",),
                "Invalid project",
                f'"project" must be a MaxCompute project name (a letter, then letters, digits '
                f"or underscores; 3 to 28 characters), not {project!r}.",
            )
        )
    price = config.get("price_per_hour")
    if price is not None and price < 0:
        out.append(
            attribute_error(
                ("price_per_hour",), "Invalid price", '"price_per_hour" must be 0 or more.'
            )
        )
    for name in ("endpoint", "tunnel_endpoint", "logview_host"):
        value = config.get(name)
        if value is None:
            continue
        url = urlsplit(str(value))
        if url.scheme not in ("http", "https") or not url.hostname or " " in str(value):
            example = "http://service.cn-hangzhou.maxcompute.aliyun.com/api"
            out.append(
                attribute_error(
                    (name,),
                    f"Invalid {name}",
                    f'"{name}" must be an http(s) address such as {example}, not {value!r}.',
                )
            )
    out += _priority(config.get("priority"))
    out += _hints(config.get("hints"))
    interval = config.get("metrics_interval")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0
    ):
        out.append(
            attribute_error(
                ("metrics_interval",),
                "Invalid metrics_interval",
                f'"metrics_interval" must be a number of seconds, 0 or more, not {interval!r}.',
            )
        )
    return ValidateResponse(tuple(out))


def check_task(request: ValidateTaskRequest) -> ValidateResponse:
    out = _priority(request.settings.get("priority")) + _hints(request.settings.get("hints"))
    if {"pai", "sql"} <= request.bodies:
        out.append(
            attribute_error(
                ("sql",),
                "Invalid task",
                f'Task "{request.task}" sets both "pai" and "sql": a MaxCompute task runs one '
                "PAI command or one SQL script. Write them as two tasks, in the order they "
                'run (task "train" { pai = "..." } then task "evaluate" { sql = "..." }); a '
                "trial whose task fails resumes from that task.",
            )
        )
    return ValidateResponse(tuple(out))


def _priority(value: Any) -> list[AttributeDiagnostic]:
    if value is None or (type(value) is int and 0 <= value <= 9):
        return []
    return [
        attribute_error(
            ("priority",),
            "Invalid priority",
            f'"priority" must be a whole number from 0 (first) to 9 (MaxCompute\'s default), '
            f"not {value!r}.",
        )
    ]


def _hints(value: Any) -> list[AttributeDiagnostic]:
    if value is None:
        return []
    if not isinstance(value, Mapping) or any(
        isinstance(v, Mapping | list | tuple) or v is None for v in value.values()
    ):
        return [
            attribute_error(
                ("hints",),
                "Invalid hints",
                '"hints" must be a map of MaxCompute settings to values, such as '
                '{ "odps.sql.mapper.split.size" = "256" }.',
            )
        ]
    reserved = sorted(RESERVED_HINTS & set(value))
    if reserved:
        return [
            attribute_error(
                ("hints",),
                "Invalid hints",
                f"{', '.join(reserved)} {'is' if len(reserved) == 1 else 'are'} set by tunectl "
                "on every job (it finds its jobs by them): leave "
                f"{'it' if len(reserved) == 1 else 'them'} out of hints.",
            )
        ]
    return []
