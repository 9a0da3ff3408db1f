"""Golden-file tests for the human plan renderer.

Run `UPDATE_GOLDEN=1 pytest tests/views` to rewrite the files under golden/ after a
deliberate change of layout; review the diff like any other change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from plans import PLANS, create, errors, multiple, no_change, update

from tunectl.diags import SourceFiles, error
from tunectl.plans.change import MISSING, Action, AttrChange, Change, Plan
from tunectl.views.plan_human import SEPARATOR, hcl_value, render_plan, unchanged_count

GOLDEN = Path(__file__).parent / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("name", sorted(PLANS))
def test_golden(name: str) -> None:
    text = render_plan(PLANS[name](), color=False) + "\n"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run UPDATE_GOLDEN=1 pytest tests/views"
    assert text == path.read_text(encoding="utf-8")


def test_color_adds_ansi_codes_and_nothing_else() -> None:
    plan = multiple()
    colored = render_plan(plan, color=True)
    plain = render_plan(plan, color=False)
    assert ANSI.search(colored)
    assert "\x1b[32m+" in colored and "\x1b[33m~" in colored and "\x1b[31m-" in colored
    assert "\x1b[1m" in colored
    assert "\x1b" not in plain
    assert ANSI.sub("", colored) == plain


def test_no_color_has_no_escape_anywhere() -> None:
    for factory in PLANS.values():
        assert "\x1b" not in render_plan(factory(), color=False)


def test_no_change_is_exactly_terraforms_message() -> None:
    assert render_plan(no_change(), color=False) == (
        "No changes. Your experiments match the configuration.\n\n"
        "tunectl has compared your real experiments against your configuration and found no "
        "differences, so no changes are needed."
    )
    assert render_plan(Plan(), color=False) == render_plan(no_change(), color=False)


def test_legend_lists_only_present_actions() -> None:
    text = render_plan(create(), color=False)
    assert "  + create" in text
    assert "update in-place" not in text and "  - destroy" not in text
    assert text.endswith("Plan: 1 to add, 0 to change, 0 to destroy.")
    assert SEPARATOR not in text


def test_update_counts_hidden_attributes() -> None:
    change = update().changes[0]
    assert unchanged_count(change) == 27
    one = Change(
        "experiment.x", Action.UPDATE, after={"a": 1, "b": 2}, attrs=[AttrChange("a", 0, 1)]
    )
    text = render_plan(Plan(changes=[one]), color=False)
    assert "# (1 unchanged attribute hidden)" in text
    none = Change("experiment.x", Action.UPDATE, after={"a": 1}, attrs=[AttrChange("a", 0, 1)])
    assert "unchanged" not in render_plan(Plan(changes=[none]), color=False)


def test_removed_attribute_goes_to_null() -> None:
    change = Change(
        "experiment.x",
        Action.UPDATE,
        after={"max_trials": 4},
        attrs=[AttrChange("max_failed_trials", 5, MISSING)],
    )
    assert "      - max_failed_trials = 5 -> null" in render_plan(
        Plan(changes=[change]), color=False
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (40, "40"),
        (5.0, "5"),
        (1e-05, "1e-05"),
        (0.1, "0.1"),
        (0.30000000000000004, "0.30000000000000004"),
        ('say "hi"\n', '"say \\"hi\\"\\n"'),
        ("${param.lr}", '"${param.lr}"'),
        ([32, 64, 128], "[32, 64, 128]"),
        ({"EPOCHS": "5"}, '{ EPOCHS = "5" }'),
        ({"b": 1, "a b": 2}, '{ "a b" = 2, b = 1 }'),
        ({}, "{}"),
        ([], "[]"),
    ],
)
def test_hcl_values(value: object, text: str) -> None:
    assert hcl_value(value) == text


def test_errors_come_last() -> None:
    plan = Plan(
        errors=[
            error(
                "Invalid --replace address",
                "--replace experiment.nope: no experiment with that address is in the "
                "configuration.",
            )
        ]
    )
    text = render_plan(plan, color=False)
    assert text.startswith("Planning failed.")
    assert text.endswith(
        "Error: Invalid --replace address\n\n"
        "--replace experiment.nope: no experiment with that address is in the configuration."
    )


def test_errors_quote_their_source_line() -> None:
    plan = errors()
    sources = SourceFiles({"main.hcl": "\n" * 40 + "  lifecycle {\n"})
    text = render_plan(plan, color=False, sources=sources)
    assert (
        "Error: Experiment cannot be destroyed\n\n"
        '  on main.hcl line 41, in experiment "mnist":\n'
        "  41:   lifecycle {\n\n"
        "experiment.mnist has lifecycle.prevent_destroy set"
    ) in text
    colored = render_plan(plan, color=True, sources=sources)
    assert "\x1b[1;31mError:\x1b[0m Experiment cannot be destroyed" in colored
