"""The plan as a pull-request comment: summary first, a `<details>` per experiment, a diff
GitHub colours, the cost, and a size cap.

Run `UPDATE_GOLDEN=1 pytest tests/views` to rewrite golden/*.md after a deliberate change.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from plans import create, errors, multiple, no_change, no_change_pending, replace, update

from tunectl.diags import SourceRange, error
from tunectl.plans.change import Action, Change, Plan
from tunectl.views.plan_markdown import (
    COMMENT_LIMIT,
    directory_label,
    render_failure_markdown,
    render_plan_markdown,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name,plan", [("multiple", multiple), ("errors", errors)])
def test_golden(name: str, plan) -> None:
    text = render_plan_markdown(plan(), "infra/tuning") + "\n"
    path = GOLDEN / f"markdown-{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run UPDATE_GOLDEN=1 pytest tests/views"
    assert text == path.read_text(encoding="utf-8")


def test_summary_comes_first_then_one_details_per_experiment() -> None:
    text = render_plan_markdown(multiple(), "infra/tuning")
    lines = text.splitlines()
    assert lines[0] == "<!-- tunectl plan: infra/tuning -->"
    assert lines[1] == "### tunectl plan for `infra/tuning`: 1 to add, 1 to change, 1 to destroy"
    table = lines.index("| Experiment | Action | Trials |")
    first_details = next(i for i, line in enumerate(lines) if line.startswith("<details>"))
    assert table < lines.index("> **Warning**") < first_details
    assert (
        "| `experiment.cifar` | create | will run up to 3 trials, 8 at a time (0 done, 0 running) |"
        in lines
    )
    assert "| `experiment.old` | destroy | — |" in lines
    assert any(line.startswith("| `experiment.resnet` | no change |") for line in lines)
    assert not any("experiment.zzz" in line and line.startswith("|") for line in lines)
    summaries = [line for line in lines if line.startswith("<details>")]
    assert summaries == [
        "<details><summary><code>experiment.cifar</code> will be created</summary>",
        "<details><summary><code>experiment.mnist</code> will be updated in-place</summary>",
        "<details><summary><code>experiment.old</code> will be destroyed</summary>",
        "<details><summary>Changed outside of tunectl (1)</summary>",
    ]
    assert text.count("</details>") == 4
    assert "\x1b" not in text


def test_diff_symbols_in_the_first_column_and_in_place_updates_as_bang() -> None:
    text = render_plan_markdown(update())
    assert "```diff" in text
    assert '!   experiment "mnist" {' in text
    assert "!       max_trials = 40 -> 60" in text
    assert not re.search(r"^ +[~+-] ", text, re.MULTILINE)
    created = render_plan_markdown(create())
    assert '+   experiment "mnist" {' in created
    assert "+       max_trials        = 40" in created
    replaced = render_plan_markdown(errors())
    assert '-/+ experiment "mnist" {' in replaced
    assert "!       description " in replaced
    assert "+       param.momentum.high = 0.99 # forces replacement" in replaced


def test_estimated_cost_is_summed_per_currency() -> None:
    plan = multiple()
    assert (
        "**Estimated cost** of the trials to run: ¥3.50 (and 2 experiments whose provider "
        "does not know prices)" in render_plan_markdown(plan)
    )
    for c in plan.changes:
        if c.intent is not None and c.action is not Action.DESTROY:
            c.intent = dataclasses.replace(c.intent, estimated_cost=1.25, currency="$")
    text = render_plan_markdown(plan)
    assert "**Estimated cost** of the trials to run: $3.75\n" in text + "\n"
    assert "**Estimated cost**" not in render_plan_markdown(create())  # no prices known


def test_replace_warns_and_errors_are_quoted() -> None:
    text = render_plan_markdown(replace())
    assert "| `experiment.mnist` | replace |" in text
    assert "> - `experiment.mnist` (replace): This stops 2 running trial(s)." in text
    failed = render_plan_markdown(errors())
    assert "> **Error**" in failed
    assert "> - experiment.mnist has lifecycle.prevent_destroy set" in failed


def test_no_changes() -> None:
    text = render_plan_markdown(no_change())
    assert text == "### tunectl plan: no changes"
    pending = render_plan_markdown(no_change_pending())
    assert pending.startswith("### tunectl plan: no changes\n")
    assert "| `experiment.mnist` | no change | will run up to 26 trials" in pending
    assert "<details>" not in pending  # nothing changes: the table row says it all


def _many(count: int) -> Plan:
    """`count` experiments created, each from the create plan's experiment."""
    base = create().changes[0]
    changes = [
        dataclasses.replace(base, address=f"experiment.e{i:03d}")
        for i in range(count)
    ]
    return Plan(changes=changes)


def test_a_long_plan_is_cut_to_the_comment_limit_with_a_note() -> None:
    whole = render_plan_markdown(_many(60), "big", limit=10**9)
    assert len(whole) > COMMENT_LIMIT
    text = render_plan_markdown(_many(60), "big")
    assert len(text) <= COMMENT_LIMIT
    lines = text.splitlines()
    assert lines[1] == "### tunectl plan for `big`: 60 to add, 0 to change, 0 to destroy"
    assert sum(line.startswith("| `experiment.e") for line in lines) == 60  # the whole table
    kept = text.count("<details>")
    assert 0 < kept < 60
    assert text.count("<details>") == text.count("</details>")  # no block cut in half
    assert text.endswith(
        f"> This plan is longer than a pull-request comment can hold (GitHub takes 65,536 "
        f"characters): {60 - kept} experiments' parts of the plan are left out here. "
        "`tunectl plan` prints the whole plan (see the job's log)."
    )
    assert "<code>experiment.e000</code>" in text  # in the plan's order


def test_even_the_summary_is_cut_when_it_does_not_fit() -> None:
    text = render_plan_markdown(_many(400), limit=8_000)
    assert len(text) <= 8_000
    assert "| … | | and " in text and " more experiments |" in text
    kept = text.count("<details>")
    assert kept == text.count("</details>")
    assert f"{400 - kept} experiments' parts of the plan are left out" in text


def test_failure_comment_shows_the_diagnostics() -> None:
    diag = error(
        "Unsupported argument",
        'An argument named "max_trails" is not expected here. Did you mean "max_trials"?',
        SourceRange("main.hcl", 3),
    )
    text = render_failure_markdown([diag], "infra/tuning")
    lines = text.splitlines()
    assert lines[:5] == [
        "<!-- tunectl plan: infra/tuning -->",
        "### tunectl plan for `infra/tuning`: failed",
        "",
        "The plan could not be made (1 error):",
        "",
    ]
    assert "```\nError: Unsupported argument\n" in text
    assert "on main.hcl line 3" in text
    assert text.endswith("```")


def test_directory_label(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "infra" / "tuning").mkdir(parents=True)
    assert directory_label(tmp_path / "repo" / "infra" / "tuning") == "infra/tuning"
    assert directory_label(tmp_path / "repo") == "."
    (tmp_path / "plain").mkdir()
    assert directory_label(tmp_path / "plain") == "plain"
    odd = render_plan_markdown(no_change(), "a-->b").splitlines()[0]
    assert odd == "<!-- tunectl plan: a- ->b -->"


def test_a_change_block_never_closes_its_fence_early() -> None:
    plan = create()
    change: Change = plan.changes[0]
    assert change.after is not None
    change.after["description"] = "uses ``` fences"
    text = render_plan_markdown(plan)
    assert "````diff" in text
