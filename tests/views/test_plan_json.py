from __future__ import annotations

import json

import pytest
from plans import PLANS, replace

from tunectl.plans.change import FORMAT_VERSION, error_text
from tunectl.plans.planfile import from_json
from tunectl.views.plan_human import render_plan
from tunectl.views.plan_json import render_plan_json


@pytest.mark.parametrize("name", sorted(PLANS))
def test_round_trips(name: str) -> None:
    plan = PLANS[name]()
    data = json.loads(render_plan_json(plan))
    assert data["format_version"] == FORMAT_VERSION == "1.0"
    assert data == json.loads(json.dumps(plan.to_json(), default=str))
    # A saved plan renders exactly like the plan it came from. A plan with errors is never
    # saved, and its JSON keeps each error's sentence, not its summary or source range.
    rebuilt = from_json(data)
    assert [error_text(d) for d in rebuilt.errors] == data["errors"]
    assert [d.detail for d in rebuilt.errors] == [d.detail for d in plan.errors]
    plan.errors = rebuilt.errors = []
    assert render_plan(rebuilt, color=False) == render_plan(plan, color=False)


def test_keys_are_sorted_and_added_attributes_have_no_before() -> None:
    text = render_plan_json(replace())
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert set(data) == {
        "changes", "config_digest", "destroy", "drift", "errors", "format_version",
        "lineage", "replace", "serial", "summary", "targets", "variables",
    }  # fmt: skip
    added = [a for a in data["changes"][0]["attributes"] if a["path"] == "param.momentum.low"]
    assert added == [{"path": "param.momentum.low", "after": 0.5, "forces_replacement": True}]
    assert data["summary"] == {"add": 1, "change": 0, "destroy": 1}
