"""An experiment's trials as a table for people, CSV and JSON (`tunectl trials`).

The table: one row per trial — number (`*` marks the best; with several objectives, each
Pareto-optimal trial), state, each parameter as a column, the objective value (with
several objectives, one column per objective), each metric, the objective's learning
curve as a sparkline, duration, estimated cost (where one is known and not 0), attempts
and the provider's task id. CSV and JSON carry the same fields (cost empty or null when
unknown) with real parameter values (never the sampler's indices) and ISO-8601 UTC
times; the JSON document has a `format_version` (docs/results.md).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.durations import format_duration
from tunectl.engine.results import ExperimentResults, TrialResult
from tunectl.hcl.values import to_json_value, to_string

FORMAT_VERSION = "1.1"
_BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 12


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last `width` values as bars scaled between their min and max."""
    values = list(values)[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _BARS[len(_BARS) // 2] * len(values)
    span = high - low
    return "".join(_BARS[round((v - low) / span * (len(_BARS) - 1))] for v in values)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _duration(t: TrialResult, now: float) -> str:
    seconds = t.duration(now)
    if seconds is None:
        return "-"
    return format_duration(round(seconds)) if seconds >= 1 else f"{seconds:.1f}s"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    when = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def table_cells(
    results: ExperimentResults, trials: Sequence[TrialResult], now: float | None = None
) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows as text cells (also the report's trial table)."""
    now = time.time() if now is None else now
    params = results.param_names
    shown = _objective_names(results)
    metrics = [m for m in results.metric_names if m not in shown]
    curves = any(t.curve for t in trials)
    # PBT: each trial's member, round and parent (the member of each trial by number).
    members = {t.number: t.lineage[0] for t in results.trials if t.lineage is not None}
    family = any(t.lineage for t in trials)
    header = ["trial", "state", *(["lineage"] if family else []), *params, *shown, *metrics]
    if curves:
        header.append("curve")
    costs = any(t.cost for t in trials)  # none known, or all free (local): no column
    header += ["duration", *(["cost"] if costs else []), "tries", "task"]
    rows = []
    for t in trials:
        mark = "*" if _marked(results, t) else " "
        row = [f"{mark}{t.number}", t.status.value]
        if family:
            row.append(lineage_text(t, members))
        row += [_param(t.params[p]) if p in t.params else "-" for p in params]
        row += [_number(v) for v in _objective_cells(results, t)]
        row += [_number(t.metrics.get(m)) for m in metrics]
        if curves:
            row.append(sparkline([v for _, v in t.curve]))
        row += [_duration(t, now), *([_cost(t.cost)] if costs else [])]
        row += [str(t.attempts), t.task_id or "-"]
        rows.append(row)
    return header, rows


def lineage_text(t: TrialResult, members: Mapping[int, int]) -> str:
    """`m3 r2 <- 11`: member 3 in round 2, from trial 11's checkpoint; `(m5)` when the parent
    is another member's (it exploited member 5)."""
    if t.lineage is None:
        return "-"
    member, round_, parent = t.lineage
    text = f"m{member} r{round_}"
    if parent is None:
        return text
    text += f" <- {parent}"
    if members.get(parent, member) != member:
        text += f" (m{members[parent]})"
    return text


def render_table(
    results: ExperimentResults,
    trials: Sequence[TrialResult],
    now: float | None = None,
    color: bool = False,
) -> str:
    """The human table, with a header naming the experiment and a footer for the best;
    with `color`, the best row is bold green and failed trials dim."""
    header, rows = table_cells(results, trials, now)
    # Numbers right-aligned, text left-aligned; the first column holds the best marker.
    numeric = [all(_is_numeric(r[i]) for r in rows) for i in range(len(header))]
    numeric[0] = True
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = [summary_line(results), "", _line(header, widths, numeric)]
    for t, r in zip(trials, rows, strict=True):
        line = _line(r, widths, numeric)
        if color and _marked(results, t):
            line = f"\x1b[1;32m{line}\x1b[0m"
        elif color and t.status.value == "failed":
            line = f"\x1b[2m{line}\x1b[0m"
        lines.append(line)
    if not rows:
        lines.append("(no trials match)")
    if results.multi and results.pareto:
        numbers = ", ".join(str(n) for n in results.pareto)
        lines += ["", f"* pareto front: trials {numbers}"]
    best = results.trial(results.best) if results.best is not None else None
    if best is not None:
        lines += [
            "",
            f"* best: trial {best.number}, {results.objective_label} = {_number(best.value)}",
        ]
        if best.model_uri:
            lines.append(f"  model: {best.model_uri}")
    return "\n".join(lines)


def summary_line(results: ExperimentResults) -> str:
    goal = f"{results.direction} {results.objective_label}"
    if results.multi:
        goal = ", ".join(f"{d} {m}" for m, d in results.objective.objectives)
    return f"{results.address} ({results.status}): {len(results.trials)} trials, {goal}"


def _objective_names(results: ExperimentResults) -> list[str]:
    """The objective's columns: one per objective, or the single objective's label."""
    return results.objective.metric_names if results.multi else [results.objective_label]


def _objective_cells(results: ExperimentResults, t: TrialResult) -> list[float | None]:
    if not results.multi:
        return [t.value]
    return list(t.values) if t.values else [None] * len(results.objective.objectives)


def _marked(results: ExperimentResults, t: TrialResult) -> bool:
    """The best trial, or with several objectives a Pareto-optimal one."""
    return t.number in results.pareto if results.multi else t.number == results.best


def _objective_csv(results: ExperimentResults, t: TrialResult) -> list[str]:
    """The `values_NAME` cells of several objectives; none for a single objective."""
    if not results.multi:
        return []
    return ["" if v is None else repr(v) for v in _objective_cells(results, t)]


def _values(results: ExperimentResults, t: TrialResult) -> dict[str, float] | None:
    """With several objectives, a trial's values by metric name (None without them)."""
    if not results.multi or not t.values:
        return None
    return dict(zip(results.objective.metric_names, t.values, strict=False))


def _param(value: Any) -> str:
    """A parameter value, floats to 6 significant digits (CSV and JSON keep them all)."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return to_string(value)


def _is_numeric(text: str) -> bool:
    text = text.strip().lstrip("*")
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    parts = [
        c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)
    ]
    return "  ".join(parts).rstrip()


def trial_dict(results: ExperimentResults, t: TrialResult, now: float) -> dict[str, Any]:
    """One trial as the JSON document holds it."""
    return {
        "number": t.number,
        "id": t.id,
        "state": t.status.value,
        "best": t.number == results.best,
        "pareto": results.multi and t.number in results.pareto,
        "params": to_json_value(t.params),
        "value": t.value,
        "values": _values(results, t),
        "metrics": dict(sorted(t.metrics.items())),
        "intermediate_values": [[step, value] for step, value in t.curve],
        "created": iso(t.created_at),
        "started": iso(t.started_at),
        "finished": iso(t.finished_at),
        "duration_seconds": t.duration(now),
        "attempts": t.attempts,
        "cost": t.cost,
        "tasks": [
            {
                "name": k.name,
                "provider": k.provider,
                "id": k.id,
                "status": k.status,
                "attempt": k.attempt + 1,
            }
            for k in t.tasks
        ],
        "model_uri": t.model_uri,
        "message": t.message,
    } | _lineage_json(t)


def _lineage_json(t: TrialResult) -> dict[str, Any]:
    if t.lineage is None:
        return {}
    member, round_, parent = t.lineage
    return {"pbt": {"member": member, "round": round_, "parent": parent}}


def render_json(
    results: ExperimentResults, trials: Sequence[TrialResult], now: float | None = None
) -> str:
    now = time.time() if now is None else now
    doc = {
        "format_version": FORMAT_VERSION,
        "experiment": results.address,
        "generation": results.generation,
        "status": results.status,
        "objective": {
            "name": results.objective_label,
            "direction": results.direction,
            "metric": results.objective.metric,
            "metrics": results.objective.metric_names
            if results.multi
            else dict(results.objective.metrics),
            "reduce": results.objective.reduce,
            **({"directions": results.objective.directions} if results.multi else {}),
        },
        "params": {p.name: p.to_dict() for p in results.params},
        "best_trial": results.best,
        "pareto_front": list(results.pareto),
        "trials": [trial_dict(results, t, now) for t in trials],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def render_csv(
    results: ExperimentResults, trials: Sequence[TrialResult], now: float | None = None
) -> str:
    """Columns as Optuna's `trials_dataframe`: number, value, datetimes, duration,
    `params_NAME`, `metrics_NAME`, state; then tunectl's own."""
    now = time.time() if now is None else now
    params = results.param_names
    metrics = results.metric_names
    # Several objectives: `values_NAME` per objective (Optuna's names) and a pareto column.
    objectives = results.objective.metric_names if results.multi else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "value",
            *(f"values_{m}" for m in objectives),
            "datetime_start",
            "datetime_complete",
            "duration_seconds",
            *(f"params_{p}" for p in params),
            *(f"metrics_{m}" for m in metrics),
            "state",
            "best",
            *(["pareto"] if results.multi else []),
            "attempts",
            "task_id",
            "trial_id",
            "model_uri",
            "cost",
        ]
    )
    for t in trials:
        duration = t.duration(now)
        writer.writerow(
            [
                t.number,
                "" if t.value is None else repr(t.value),
                *_objective_csv(results, t),
                iso(t.started_at) or "",
                iso(t.finished_at) or "",
                "" if duration is None else f"{duration:.3f}",
                *(_cell(t.params.get(p)) if p in t.params else "" for p in params),
                *("" if m not in t.metrics else repr(t.metrics[m]) for m in metrics),
                t.status.value,
                "true" if t.number == results.best else "false",
                *([str(_marked(results, t)).lower()] if results.multi else []),
                t.attempts,
                t.task_id,
                t.id,
                t.model_uri or "",
                "" if t.cost is None else f"{t.cost:.6g}",
            ]
        )
    return out.getvalue()


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(value: Any) -> str:
    return "" if value is None else to_string(value)
