"""Outputs as text (`NAME = value`, sensitive ones hidden) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def hcl_value(value: Any, indent: int = 0) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"{pad}{hcl_value(v, indent + 1)},\n" for v in value) + f"{end}]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        width = max(len(str(k)) for k in value)
        lines = [
            f"{pad}{str(k).ljust(width)} = {hcl_value(v, indent + 1)}\n" for k, v in value.items()
        ]
        return "{\n" + "".join(lines) + f"{end}}}"
    return json.dumps(str(value))


def render_outputs(outputs: Mapping[str, tuple[Any, bool]]) -> str:
    lines = []
    for name in sorted(outputs):
        value, sensitive = outputs[name]
        lines.append(f"{name} = {'<sensitive>' if sensitive else hcl_value(value)}")
    return "\n".join(lines)


def outputs_json(outputs: Mapping[str, tuple[Any, bool]]) -> str:
    data = {
        name: {"value": value, "sensitive": sensitive}
        for name, (value, sensitive) in sorted(outputs.items())
    }
    return json.dumps(data, indent=2, sort_keys=True)
