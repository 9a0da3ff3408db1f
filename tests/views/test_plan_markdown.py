from __future__ import annotations

from plans import create, multiple, no_change, no_change_pending, replace

from tunectl.views.plan_markdown import render_plan_markdown


def test_heading_table_and_details() -> None:
    text = render_plan_markdown(multiple())
    lines = text.splitlines()
    assert lines[0] == "### tunectl plan: 1 to add, 1 to change, 1 to destroy"
    assert "| Experiment | Action | Trials |" in lines
    assert (
        "| `experiment.cifar` | create | will run up to 3 trials, 8 at a time (0 done, 0 running) |"
        in lines
    )
    assert "| `experiment.old` | destroy | — |" in lines
    assert any(line.startswith("| `experiment.resnet` | no change |") for line in lines)
    assert not any("experiment.zzz" in line and line.startswith("|") for line in lines)
    assert "> **Warning**" in lines
    assert "<details><summary>Full plan</summary>" in lines
    assert "<details><summary>Changed outside of tunectl (1)</summary>" in lines
    assert text.count("</details>") == 2
    assert "\x1b" not in text


def test_full_plan_is_a_diff_block_with_symbols_first() -> None:
    text = render_plan_markdown(create())
    assert "```diff" in text
    assert '+   experiment "mnist" {' in text
    assert "+       max_trials        = 40" in text
    assert "Changed outside" not in text
    assert "> **Warning**" not in text


def test_replace_warns() -> None:
    text = render_plan_markdown(replace())
    assert "| `experiment.mnist` | replace |" in text
    assert "> - `experiment.mnist` (replace): This stops 2 running trial(s)." in text


def test_no_changes() -> None:
    text = render_plan_markdown(no_change())
    assert text.startswith("### tunectl plan: no changes\n")
    assert "| Experiment |" not in text
    assert "<details>" in text
    pending = render_plan_markdown(no_change_pending())
    assert pending.startswith("### tunectl plan: no changes\n")
    assert "| `experiment.mnist` | no change | will run up to 26 trials" in pending
