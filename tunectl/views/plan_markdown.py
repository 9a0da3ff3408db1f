"""The plan as markdown for a pull-request comment (`tunectl plan --markdown`).

What a reviewer reads first comes first: a heading naming the configuration directory with
the counts, a table of the experiments apply touches, the estimated cost, warnings for what
a destroy or replacement throws away and the plan's errors. Then each experiment's part of
the plan folded in its own `<details>` block, and drift in one more. In the folded parts the
action symbol of each line is moved to the first column so a ```diff block colours it:
`+` green, `-` red, and `!` (an in-place update, `~` in the human plan) orange.

A comment has a size limit (GitHub's is 65,536 characters): a longer plan keeps its
summary and as many experiments' parts as fit, and says how many it left out.
The first line is an HTML comment naming the directory, invisible on the page, by which a
CI job finds its earlier comment to update it (one comment per directory).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tunectl.diags import Diagnostic, SourceFiles, render
from tunectl.plans.change import Action, Change, Plan, error_text
from tunectl.views.plan_human import (
    HEADERS,
    carry_sentence,
    intent_sentence,
    preview_lines,
    render_change,
    render_drift,
    shown_changes,
)

ACTION_WORDS = {
    Action.NOOP: "no change",
    Action.CREATE: "create",
    Action.UPDATE: "update in-place",
    Action.REPLACE: "replace",
    Action.DESTROY: "destroy",
}

GITHUB_LIMIT = 65_536  # characters in one GitHub comment
# What the plan may use of it: a sticky-comment action adds its own marker line.
COMMENT_LIMIT = 60_000

_INDENTED_SYMBOL = re.compile(r"^( +)([-+~]|-/\+) ")


def marker(directory: str) -> str:
    """The invisible first line of a plan comment for `directory` ("--" would end the
    HTML comment early, so it is spaced out)."""
    return f"<!-- tunectl plan: {directory.replace('--', '- -')} -->"


def directory_label(directory: Path) -> str:
    """How a comment names the configuration directory: its path inside the git work tree
    it is in (the repository's root is "."), else its own name."""
    directory = directory.resolve()
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return directory.relative_to(parent).as_posix() or "."
    return directory.name or "/"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _heading(plan: Plan, directory: str | None) -> str:
    where = f" for `{directory}`" if directory else ""
    if not plan.has_changes:
        return f"### tunectl plan{where}: no changes"
    add, change, destroy = plan.counts
    return f"### tunectl plan{where}: {add} to add, {change} to change, {destroy} to destroy"


def _diff_block(text: str) -> list[str]:
    """`text` in a ```diff fence, symbols moved to column 0 (`~` as `!`), the fence longer
    than any backtick run in it."""
    lines = []
    for line in text.splitlines():
        match = _INDENTED_SYMBOL.match(line)
        if match:
            symbol = "!" if match[2] == "~" else match[2]
            line = f"{symbol}{match[1]} {line[match.end() :]}"
        lines.append(line)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "diff", *lines, fence]


def _details(summary: str, body: str) -> str:
    return "\n".join(
        [f"<details><summary>{summary}</summary>", "", *_diff_block(body), "", "</details>"]
    )


def _cost(changes: Sequence[Change]) -> list[str]:
    """The estimated cost of the trials to run, per currency, when a provider knows prices."""
    totals: dict[str, float] = {}
    unknown = 0
    for c in changes:
        intent = c.intent
        if intent is None or intent.to_run == 0 or c.action is Action.DESTROY:
            continue
        if intent.estimated_cost is None:
            unknown += 1
        else:
            totals[intent.currency] = totals.get(intent.currency, 0.0) + intent.estimated_cost
    if not totals:
        return []
    amounts = " + ".join(f"{currency}{total:,.2f}" for currency, total in sorted(totals.items()))
    line = f"**Estimated cost** of the trials to run: {amounts}"
    if unknown:
        noun = "experiment" if unknown == 1 else "experiments"
        line += f" (and {unknown} {noun} whose provider does not know prices)"
    return ["", line]


def _summary(plan: Plan, directory: str | None, rows: int | None = None) -> list[str]:
    """Heading, table (its first `rows` rows, all when None), cost, warnings, errors."""
    out = [_heading(plan, directory)]
    shown = shown_changes(plan)
    if shown:
        out += ["", "| Experiment | Action | Trials |", "|---|---|---|"]
        for c in shown[:rows]:
            trials = intent_sentence(c.intent) if c.intent is not None else "—"
            out.append(f"| `{c.address}` | {ACTION_WORDS[c.action]} | {_cell(trials)} |")
        if rows is not None and rows < len(shown):
            out.append(f"| … | | and {len(shown) - rows} more experiments |")
    out += _cost(shown)
    warnings = [
        f"- `{c.address}` ({ACTION_WORDS[c.action]}): {' '.join(c.consequences)}"
        for c in plan.changes
        if c.action in (Action.DESTROY, Action.REPLACE) and c.consequences
    ]
    if warnings:
        if rows is not None and rows < len(warnings):
            warnings = [*warnings[:rows], f"- and {len(warnings) - rows} more"]
        out += ["", "> **Warning**", ">", *(f"> {w}" for w in warnings)]
    if plan.errors:
        out += ["", "> **Error**", ">", *(f"> - {error_text(e)}" for e in plan.errors)]
    return out


def _parts(plan: Plan) -> list[str]:
    """Each shown experiment's part of the plan, then the drift, as `<details>` blocks."""
    parts = []
    for c in shown_changes(plan):
        if c.action is Action.NOOP:
            # Trials to run: the table says it; a seed and a preview are said here.
            lines = ([carry_sentence(c)] if c.carry else []) + preview_lines(c)
            if lines:
                parts.append(_details(f"<code>{c.address}</code> trials", "\n".join(lines)))
            continue
        # The part without its first line (`# experiment.x will be ...`): the summary says it.
        body = render_change(c, plan, color=False).split("\n", 1)[1]
        parts.append(_details(f"<code>{c.address}</code> {HEADERS[c.action]}", body))
    if plan.drift:
        text = render_drift(plan.drift, color=False)
        parts.append(_details(f"Changed outside of tunectl ({len(plan.drift)})", text))
    return parts


def _left_out(count: int) -> str:
    noun = "experiment's part" if count == 1 else "experiments' parts"
    return (
        f"> **Note**\n>\n> This plan is longer than a pull-request comment can hold (GitHub takes "
        f"{GITHUB_LIMIT:,} characters): {count} {noun} of the plan are left out here. "
        "`tunectl plan` prints the whole plan (see the job's log)."
    )


def render_plan_markdown(
    plan: Plan, directory: str | None = None, limit: int = COMMENT_LIMIT
) -> str:
    """The plan as a pull-request comment (GitHub-flavoured markdown), at most `limit`
    characters; `directory` names the configuration in the heading and the marker."""
    first = [marker(directory)] if directory else []
    parts = _parts(plan)
    summary = "\n".join(first + _summary(plan, directory))
    text = "\n\n".join([summary, *parts])
    if len(text) <= limit:
        return text
    # Too long: the summary first (shortened when even it does not fit), then the parts that
    # fit in order, then a note on what was left out.
    reserve = len(_left_out(len(parts))) + 2
    rows = len(plan.changes)
    while len(summary) + reserve > limit and rows > 0:
        rows //= 2
        summary = "\n".join(first + _summary(plan, directory, rows))
    kept = [summary]
    size = len(summary) + reserve
    for part in parts:
        if size + len(part) + 2 > limit:
            break
        kept.append(part)
        size += len(part) + 2
    kept.append(_left_out(len(parts) - len(kept) + 1))
    return "\n\n".join(kept)[:limit]


def render_failure_markdown(
    diags: Sequence[Diagnostic], directory: str | None, sources: SourceFiles | None = None
) -> str:
    """A comment saying the plan could not be made, with the diagnostics as tunectl prints
    them (configuration errors, a held lock, an unreachable backend)."""
    first = [marker(directory)] if directory else []
    where = f" for `{directory}`" if directory else ""
    errors = [d for d in diags if d.severity == "error"]
    noun = "error" if len(errors) == 1 else "errors"
    text = "\n\n".join(render(d, sources) for d in diags)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join(
        [
            *first,
            f"### tunectl plan{where}: failed",
            "",
            f"The plan could not be made ({len(errors)} {noun}):",
            "",
            fence,
            *text.splitlines(),
            fence,
        ]
    )[:COMMENT_LIMIT]
