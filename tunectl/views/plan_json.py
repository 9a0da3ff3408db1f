"""The plan as JSON (`tunectl plan --json`), for CI and other programs.

The shape is `Plan.to_json()`; its keys and their stability are documented in
docs/plan-json.md. Keys are sorted so the output diffs well between runs.
"""

from __future__ import annotations

import json

from tunectl.plans.change import Plan


def render_plan_json(plan: Plan) -> str:
    """The plan as indented JSON with sorted keys (format_version "1.0")."""
    return json.dumps(plan.to_json(), indent=2, sort_keys=True, default=str)
