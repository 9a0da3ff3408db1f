"""Outputs as text (`NAME = value`, sensitive ones hidden) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tunectl.hcl.values import hcl_text


def hcl_value(value: Any, indent: int = 0) -> str:
    return hcl_text(value, multiline=True, indent=indent)


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
