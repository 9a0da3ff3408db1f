"""A saved plan of a scheduled experiment: the schedule's sentence tells the time, so it
never makes the plan stale; what apply does still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunectl.diags import DiagnosticError
from tunectl.plans.change import Action, Change, Plan, TrialIntent
from tunectl.plans.planfile import SavedPlan, check_changes


def plan(schedule: str, max_trials: int = 4) -> Plan:
    intent = TrialIntent(max_trials=max_trials, max_concurrent=1, to_run=4, schedule=schedule)
    return Plan([Change("experiment.demo", Action.CREATE, None, {"x": 1}, intent=intent)])


def saved(made: Plan) -> SavedPlan:
    return SavedPlan(Path("p.plan"), {"changes": [c.to_json() for c in made.changes]}, b"", "")


def test_a_window_that_opened_since_the_plan_does_not_make_it_stale() -> None:
    before = saved(plan("outside its schedule: the next window opens Sat 2026-12-05 22:00 UTC"))
    check_changes(before, plan("its schedule window is open until Sun 2026-12-06 06:00 UTC"))


def test_what_apply_does_still_counts() -> None:
    before = saved(plan("outside its schedule: ...", max_trials=4))
    with pytest.raises(DiagnosticError, match="Saved plan is stale"):
        check_changes(before, plan("outside its schedule: ...", max_trials=5))
