"""The plan as JSON (`tunectl plan --json`), for CI and other programs.

The shape is `Plan.to_json()`; its keys and their stability are documented in
docs/plan-json.md. Keys are sorted so the output diffs well between runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tunectl.config.sensitive import holds_marker, shown
from tunectl.diags import Diagnostic
from tunectl.plans.change import Plan


def render_plan_json(plan: Plan) -> str:
    """The plan as indented JSON with sorted keys (format_version "1.0").

    A value derived from a sensitive variable is the string "(sensitive value)", and its
    attribute change says `"sensitive": true`; the salted hashes a plan file keeps to tell
    changes apart are not printed."""
    data = plan.to_json()
    for change in data["changes"]:
        for attr in change["attributes"]:
            if holds_marker(attr.get("before")) or holds_marker(attr.get("after")):
                attr["sensitive"] = True
    return json.dumps(shown(data), indent=2, sort_keys=True, default=str)


def render_diagnostics_json(diags: Sequence[Diagnostic]) -> str:
    """What `plan --json` prints when no plan could be made (a configuration error, a held
    lock): the shape of `validate --json`, with `valid` false, so a program reads both the
    same way. A plan object has `changes`; this one has `diagnostics` instead."""
    errors = [d for d in diags if d.severity == "error"]
    return json.dumps(
        {
            "format_version": "1.0",
            "valid": False,
            "error_count": len(errors),
            "warning_count": len(diags) - len(errors),
            "diagnostics": [d.to_json() for d in diags],
        },
        indent=2,
    )
