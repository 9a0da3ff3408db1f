"""The plan as markdown for a pull-request comment (`tunectl plan --markdown`).

A heading with the summary, a table of the experiments apply touches, warnings for what a
destroy or replacement throws away, then the full human plan (without colour) folded in a
`<details>` block, and drift in a second one. In the folded plan the action symbol of each
line is moved to the first column so a ```diff block colours `+` and `-` lines.
"""

from __future__ import annotations

import dataclasses
import re

from tunectl.plans.change import Action, Change, Plan, error_text
from tunectl.views.plan_human import intent_sentence, render_drift, render_plan

ACTION_WORDS = {
    Action.NOOP: "no change",
    Action.CREATE: "create",
    Action.UPDATE: "update in-place",
    Action.REPLACE: "replace",
    Action.DESTROY: "destroy",
}

_INDENTED_SYMBOL = re.compile(r"^( +)([-+~]) ")


def _pending(change: Change) -> bool:
    intent = change.intent
    return intent is not None and (intent.to_run > 0 or intent.running > 0)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _heading(plan: Plan) -> str:
    if not plan.has_changes:
        return "### tunectl plan: no changes"
    add, change, destroy = plan.counts
    return f"### tunectl plan: {add} to add, {change} to change, {destroy} to destroy"


def _diff_block(text: str) -> list[str]:
    """`text` in a ```diff fence, symbols moved to column 0, fence longer than any backtick run."""
    lines = [_INDENTED_SYMBOL.sub(r"\2\1 ", line) for line in text.splitlines()]
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "diff", *lines, fence]


def render_plan_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment (GitHub-flavoured markdown)."""
    out = [_heading(plan)]
    rows = [c for c in plan.changes if c.action is not Action.NOOP or _pending(c)]
    if rows:
        out += ["", "| Experiment | Action | Trials |", "|---|---|---|"]
        for c in rows:
            trials = intent_sentence(c.intent) if c.intent is not None else "—"
            out.append(f"| `{c.address}` | {ACTION_WORDS[c.action]} | {_cell(trials)} |")

    warnings = [
        f"- `{c.address}` ({ACTION_WORDS[c.action]}): {' '.join(c.consequences)}"
        for c in plan.changes
        if c.action in (Action.DESTROY, Action.REPLACE) and c.consequences
    ]
    if warnings:
        out += ["", "> **Warning**", ">", *(f"> {w}" for w in warnings)]
    if plan.errors:
        out += ["", "> **Error**", ">", *(f"> - {error_text(e)}" for e in plan.errors)]

    full = render_plan(dataclasses.replace(plan, drift=[]), color=False)
    out += ["", "<details><summary>Full plan</summary>", "", *_diff_block(full), "", "</details>"]

    if plan.drift:
        text = render_drift(plan.drift, color=False)
        summary = f"Changed outside of tunectl ({len(plan.drift)})"
        out += [
            "",
            f"<details><summary>{summary}</summary>",
            "",
            *_diff_block(text),
            "",
            "</details>",
        ]
    return "\n".join(out)
