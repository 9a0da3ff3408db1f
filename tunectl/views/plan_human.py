"""The plan for people: Terraform's layout and wording (`tunectl plan`, `tunectl show FILE`).

`render_plan` is a pure function of a `Plan`; colour (ANSI codes) is the caller's decision,
made once from the output stream (a tty, NO_COLOR unset). The text has no leading or trailing
newline; the CLI prints it as one block.

Created and destroyed experiments print their whole canonical dict as HCL-like blocks;
updated and replaced ones print only the changed attributes, by dotted path, and count the
rest as "unchanged attributes hidden" (leaves as `tunectl.plans.differ.flatten` defines them,
so the count matches the paths the differ compares). The sentences a plan reads in
(`intent_sentence`, `summary_line`) are built here from the plan's fields; plan-time errors
are diagnostics, rendered as every other diagnostic is (`tunectl.diags.render`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tunectl.config.sensitive import SHOWN, is_marker
from tunectl.diags import Diagnostic, SourceFiles, render
from tunectl.hcl.values import hcl_text
from tunectl.plans.change import MISSING, Action, AttrChange, Change, Drift, Plan, TrialIntent
from tunectl.plans.differ import flatten

SEPARATOR = "─" * 77

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLORS = {"+": "\x1b[32m", "~": "\x1b[33m", "-": "\x1b[31m"}

# How nested dicts of the canonical experiment are written (SPEC section 2's blocks).
LABELLED_BY_NAME = ("algorithm", "early_stopping")  # {"name": "tpe", ...} -> algorithm "tpe" {
BLOCK_MAPS = ("param", "task", "metrics")  # {"lr": {...}} -> param "lr" { (one block per entry)
BLOCKS = ("objective", "trial", "lifecycle")  # unlabelled blocks; other dicts are inline maps

# Legend lines in the order Terraform's users read them; only actions present are shown.
LEGEND = (
    (Action.CREATE, "create"),
    (Action.UPDATE, "update in-place"),
    (Action.REPLACE, "destroy and then create replacement"),
    (Action.DESTROY, "destroy"),
)
HEADERS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in-place",
    Action.REPLACE: "must be replaced",
    Action.DESTROY: "will be destroyed",
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class _Style:
    """ANSI codes when `color`, plain text otherwise."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def bold(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.color else text

    def red(self, text: str) -> str:
        return f"{_COLORS['-']}{text}{_RESET}" if self.color else text

    def error(self, text: str) -> str:
        return f"\x1b[1;31m{text}{_RESET}" if self.color else text

    def symbol(self, symbol: str) -> str:
        """The action symbol right-aligned in three columns, as Terraform draws it."""
        pad = " " * (3 - len(symbol))
        if not self.color:
            return pad + symbol
        painted = "".join(f"{_COLORS[ch]}{ch}{_RESET}" if ch in _COLORS else ch for ch in symbol)
        return pad + painted


def intent_sentence(intent: TrialIntent) -> str:
    """What apply will do for one experiment, in trial terms (SPEC section 3)."""
    if intent.rerun and not intent.to_run and intent.running == len(intent.rerun):
        return f"{rerun_clause(intent)} ({intent.done} done)" + budget_clause(intent)
    if intent.rerun:
        return rerun_clause(intent) + "; " + _intent_sentence(intent)
    return _intent_sentence(intent)


def rerun_clause(intent: TrialIntent) -> str:
    """The trials `--replace experiment.X.trial[N]` runs again."""
    numbers = ", ".join(str(n) for n in intent.rerun)
    noun = "trial" if len(intent.rerun) == 1 else "trials"
    return f"will run {noun} {numbers} again (a new attempt with the same parameters)"


def _intent_sentence(intent: TrialIntent) -> str:
    if intent.to_run == 0 and intent.running == 0:
        return (
            f"will run no trials ({intent.done} done, status {intent.status.value})"
            + budget_clause(intent)
        )
    if intent.to_run == 0:
        return (
            f"will start no new trials and follow the {intent.running} running ({intent.done} done)"
            + budget_clause(intent)
        )
    text = (
        f"will run up to {intent.to_run} trials, {intent.max_concurrent} at a time "
        f"({intent.done} done, {intent.running} running)"
    )
    if intent.estimated_cost is not None:
        text += f", estimated cost {intent.currency}{intent.estimated_cost:,.2f}"
    text += budget_clause(intent)
    if intent.schedule:
        text += f"; {intent.schedule}"
    if intent.search:
        text += f"; {intent.search}"
    return text


def carry_sentence(change: Change) -> str:
    """What a new generation starts with (`warm_start`), from `Change.carry`."""
    c = change.carry
    assert c is not None
    if c.source == change.address:
        if c.carried:
            return (
                f"carries {c.carried} of {c.total} trials into the new generation "
                "(warm_start: the complete trials that fit the new space)"
            )
        return (
            f"{c.fit} of {c.total} complete trials fit the new space: warm_start = true "
            "would carry them into the new generation"
        )
    top = f"up to {c.top}, " if c.top else ""
    if c.waits:
        now = f"{c.fit} of its {c.total} complete trials fit now" if c.total else ""
        detail = f"{top}{now}".rstrip(", ")
        return f"waits for {c.source} to finish, then seeds its best trials that fit" + (
            f" ({detail})" if detail else ""
        )
    return (
        f"seeds {c.carried} trials from {c.source} (its best that fit, {top}"
        f"{c.fit} of its {c.total} complete trials fit)"
    )


def preview_lines(change: Change) -> list[str]:
    """`plan --preview N`: the parameter sets the sampler proposes next."""
    if not change.preview:
        return []
    lines = [f"next {len(change.preview)} parameter sets the sampler proposes:"]
    for entry in change.preview:
        values = " ".join(f"{k}={_preview_value(v)}" for k, v in entry["params"].items())
        lines.append(f"  trial {entry['number']}: {values}")
    return lines


def _preview_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def budget_clause(intent: TrialIntent) -> str:
    """With `max_cost`: the spend so far and the range the trials to run bring it to (at
    most: each for its whole time limit), against the budget."""
    if intent.max_cost is None or intent.spent is None:
        return ""
    cur = intent.currency
    low = intent.spent
    if not intent.to_run:
        return f"; spent {cur}{low:,.2f} of max_cost {cur}{intent.max_cost:,.2f}"
    if intent.estimated_cost is None:
        high = "unknown (no timeout)"
    else:
        high = f"{cur}{low + intent.estimated_cost:,.2f}"
        if low + intent.estimated_cost > intent.max_cost:
            high += ", more than max_cost: it may stop the experiment first"
    return (
        f"; spent {cur}{low:,.2f} of max_cost {cur}{intent.max_cost:,.2f}, "
        f"estimated {cur}{low:,.2f} to {high}"
    )


def summary_line(plan: Plan) -> str:
    """Terraform's last line: `Plan: X to add, Y to change, Z to destroy.` or no changes."""
    if not plan.has_changes:
        return "No changes. Your experiments match the configuration."
    add, change, destroy = plan.counts
    return f"Plan: {add} to add, {change} to change, {destroy} to destroy."


def render_error(diag: Diagnostic, sources: SourceFiles | None, *, color: bool) -> str:
    """One plan-time error as every diagnostic is rendered, without its trailing blank line."""
    head, _, rest = render(diag, sources).rstrip().partition(":")
    return _Style(color).error(head + ":") + rest


def hcl_value(value: Any) -> str:
    """One value in HCL syntax, on one line: `"text"`, `1e-05`, `true`, `[32, 64]`, `{ A = 1 }`."""
    # Redaction markers unquoted, as Terraform writes them.
    return hcl_text(value, opaque=lambda v: SHOWN if is_marker(v) else None)


def _key(key: Any) -> str:
    key = str(key)
    return key if _IDENT.match(key) else json.dumps(key, ensure_ascii=False)


def _line(depth: int, symbol: str, text: str, style: _Style) -> str:
    return "    " * depth + style.symbol(symbol) + " " + text


def _close(depth: int) -> str:
    return "    " * (depth + 1) + "}"


def _as_blocks(key: str, value: Any) -> list[tuple[str, dict[str, Any]]] | None:
    """The (header, body) blocks that `key = value` is written as, or None for an attribute."""
    if key in LABELLED_BY_NAME and isinstance(value, dict) and isinstance(value.get("name"), str):
        body = {k: v for k, v in value.items() if k != "name"}
        return [(f"{key} {json.dumps(value['name'], ensure_ascii=False)}", body)]
    if key in BLOCK_MAPS:
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            # Tasks run in the order written; other entries are keyed maps, shown sorted (as
            # Terraform sorts map keys, and as a saved plan's sorted JSON would order them).
            names = list(value) if key == "task" else sorted(value, key=str)
            return [(f"{key} {json.dumps(str(n), ensure_ascii=False)}", value[n]) for n in names]
        # Canonical metrics are a list of {"kind": ..., settings}: metrics "stdout" { ... }.
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and isinstance(v.get("kind"), str) for v in value)
        ):
            return [
                (
                    f"{key} {json.dumps(v['kind'], ensure_ascii=False)}",
                    {k: x for k, x in v.items() if k != "kind"},
                )
                for v in value
            ]
    if key in BLOCKS and isinstance(value, dict) and value:
        return [(key, value)]
    return None


def _body(data: Mapping[str, Any], depth: int, symbol: str, style: _Style) -> list[str]:
    """Attributes (sorted, `=` aligned), then blocks, every line marked with `symbol`."""
    attrs: list[tuple[str, Any]] = []
    blocks: list[tuple[str, dict[str, Any]]] = []
    for key in sorted(data, key=str):
        as_blocks = _as_blocks(str(key), data[key])
        if as_blocks is None:
            attrs.append((_key(key), data[key]))
        else:
            blocks.extend(as_blocks)
    lines = []
    width = max((len(k) for k, _ in attrs), default=0)
    for key, value in attrs:
        text = f"{key.ljust(width)} = {hcl_value(value)}"
        if symbol == "-":
            text += " -> null"
        lines.append(_line(depth, symbol, text, style))
    for header, body in blocks:
        if not body:
            lines.append(_line(depth, symbol, header + " {}", style))
            continue
        lines.append(_line(depth, symbol, header + " {", style))
        lines.extend(_body(body, depth + 1, symbol, style))
        lines.append(_close(depth))
    return lines


def _attr_lines(attrs: list[AttrChange], style: _Style) -> list[str]:
    width = max((len(a.path) for a in attrs), default=0)
    lines = []
    for a in attrs:
        if a.before is MISSING:
            symbol, value = "+", hcl_value(a.after)
        elif a.after is MISSING:
            symbol, value = "-", f"{hcl_value(a.before)} -> null"
        elif is_marker(a.before) and is_marker(a.after):
            # Terraform's form for a changed sensitive value: no "before -> after".
            symbol, value = "~", SHOWN
        elif _sensitive_elements_changed(a.before, a.after):
            changed = {k: a.after[k] for k in a.after if a.before[k] != a.after[k]}
            symbol, value = "~", hcl_value(changed)
        else:
            symbol, value = "~", f"{hcl_value(a.before)} -> {hcl_value(a.after)}"
        text = f"{a.path.ljust(width)} = {value}"
        if a.forces_replacement:
            text += " " + style.red("# forces replacement")
        lines.append(_line(1, symbol, text, style))
    return lines


def _sensitive_elements_changed(before: Any, after: Any) -> bool:
    """Two maps (an env) that differ only in sensitive elements: printing both whole would
    show two identical-looking maps, so only the changed elements are shown."""
    return (
        isinstance(before, dict)
        and isinstance(after, dict)
        and before.keys() == after.keys()
        and all(
            before[k] == after[k] or (is_marker(before[k]) and is_marker(after[k])) for k in before
        )
    )


def unchanged_count(change: Change) -> int:
    """Leaves of `after` that no attribute change mentions (by path or by a parent's path)."""
    if not change.after:
        return 0
    mentioned = [a.path for a in change.attrs]
    return sum(
        1
        for path in flatten(change.after)
        if not any(
            path == m or path.startswith(m + ".") or m.startswith(path + ".") for m in mentioned
        )
    )


def _pending(change: Change) -> bool:
    intent = change.intent
    return intent is not None and (intent.to_run > 0 or intent.running > 0)


def _change(change: Change, plan: Plan, style: _Style) -> list[str]:
    title = "  " + style.bold(f"# {change.address}")
    if change.action is Action.NOOP:
        assert change.intent is not None
        lines = [f"{title} has pending trials", "    " + intent_sentence(change.intent)]
        if change.carry is not None:
            lines.append("    " + carry_sentence(change))
        return lines + ["    " + line for line in preview_lines(change)]
    lines = [f"{title} {HEADERS[change.action]}"]
    reasons = list(change.reasons)
    if change.action is Action.DESTROY and not plan.destroy and not reasons:
        reasons.append(f"{change.address} is not in configuration")
    lines.extend(f"  # (because {reason})" for reason in reasons)
    symbol = change.action.symbol
    lines.append(
        _line(0, symbol, f"experiment {json.dumps(change.name, ensure_ascii=False)} {{", style)
    )
    if change.action is Action.CREATE:
        lines.extend(_body(change.after or {}, 1, "+", style))
    elif change.action is Action.DESTROY:
        lines.extend(_body(change.before or {}, 1, "-", style))
    else:
        lines.extend(_attr_lines(change.attrs, style))
        hidden = unchanged_count(change)
        if hidden:
            noun = "attribute" if hidden == 1 else "attributes"
            lines.append(f"        # ({hidden} unchanged {noun} hidden)")
    lines.append(_close(0))
    lines.extend("    " + sentence for sentence in change.consequences)
    if change.intent is not None:
        lines.append("    " + intent_sentence(change.intent))
    if change.carry is not None:
        lines.append("    " + carry_sentence(change))
    lines.extend("    " + line for line in preview_lines(change))
    return lines


def _drift(drift: list[Drift], style: _Style) -> list[str]:
    lines = [
        style.bold("Note: Objects have changed outside of tunectl"),
        "",
        "tunectl detected the following changes made outside of tunectl since the last "
        '"tunectl apply":',
    ]
    for d in drift:
        lines.append("")
        lines.append("  " + style.bold(f"# {d.address}") + " has changed")
        lines.append(
            _line(0, "~", f"status = {hcl_value(d.before)} -> {hcl_value(d.after)}", style)
        )
        if d.detail:
            lines.append(f"    ({d.detail})")
    lines.append("")
    lines.append(
        "Unless you have made equivalent changes to your configuration, or ignored the relevant "
        "attributes using ignore_changes, the following plan may include actions to undo or "
        "respond to these changes."
    )
    return lines


def _legend(shown: list[Change], style: _Style) -> list[str]:
    present = {c.action for c in shown}
    lines = [
        "tunectl used the selected providers to generate the following execution plan. "
        "Resource actions are indicated with the following symbols:"
    ]
    lines.extend(
        f"{style.symbol(action.symbol)} {words}" for action, words in LEGEND if action in present
    )
    return lines


def _summary(plan: Plan, style: _Style) -> str:
    line = summary_line(plan)
    if line.startswith("Plan:"):
        return style.bold("Plan:") + line.removeprefix("Plan:")
    return style.bold(line)


def render_change(change: Change, plan: Plan, *, color: bool) -> str:
    """One experiment's part of the plan, as `render_plan` shows it."""
    return "\n".join(_change(change, plan, _Style(color)))


def shown_changes(plan: Plan) -> list[Change]:
    """The changes the plan shows: every action but no-op, and no-ops with trials to run."""
    return [c for c in plan.changes if c.action is not Action.NOOP or _pending(c)]


def render_drift(drift: list[Drift], *, color: bool) -> str:
    """Only the "Objects have changed outside of tunectl" section."""
    return "\n".join(_drift(drift, _Style(color)))


def render_plan(plan: Plan, *, color: bool, sources: SourceFiles | None = None) -> str:
    """The plan as Terraform would print it; `color` adds ANSI codes. `sources`, the
    configuration's text, lets plan-time errors quote the line they point at."""
    style = _Style(color)
    shown = [c for c in plan.changes if c.action is not Action.NOOP or _pending(c)]
    sections: list[list[str]] = []
    if plan.drift:
        sections.append(_drift(plan.drift, style))
        sections.append([SEPARATOR])

    if not plan.has_changes:
        if plan.errors:
            sections.append(
                [
                    style.bold("Planning failed.")
                    + " tunectl encountered an error while generating this plan."
                ]
            )
        elif shown:
            sections.append([_summary(plan, style)])
            sections.append(
                [
                    "tunectl has compared your real experiments against your configuration and "
                    "found no differences, but some experiments still have trials to run:"
                ]
            )
            sections.extend(_change(c, plan, style) for c in shown)
            sections.append(
                ["You can apply this plan to run these trials without changing any experiment."]
            )
        elif plan.destroy:
            sections.append([style.bold("No changes. No experiments need to be destroyed.")])
            sections.append(
                [
                    "Either you have not created any experiments yet or the existing experiments "
                    "were already destroyed."
                ]
            )
        else:
            sections.append([_summary(plan, style)])
            if plan.drift:
                sentence = (
                    "Your configuration already matches the changes detected above, "
                    "so no changes are needed."
                )
            else:
                sentence = (
                    "tunectl has compared your real experiments against your configuration and "
                    "found no differences, so no changes are needed."
                )
            sections.append([sentence])
    else:
        sections.append(_legend(shown, style))
        if plan.errors:
            sections.append(
                ["tunectl planned the following actions, but then encountered a problem:"]
            )
        else:
            sections.append(["tunectl will perform the following actions:"])
        sections.extend(_change(c, plan, style) for c in shown)
        sections.append([_summary(plan, style)])

    for diag in plan.errors:
        sections.append([render_error(diag, sources, color=color)])
    return "\n\n".join("\n".join(section) for section in sections)
