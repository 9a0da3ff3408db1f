"""An experiment's trials as a table for people, CSV and JSON (`tunectl trials`).

The table: one row per trial — number (`*` marks the best), state, each parameter as a
column, the objective value, each metric, the objective's learning curve as a sparkline,
duration, attempts and the provider's task id. CSV and JSON carry the same fields with
real parameter values (never the sampler's indices) and ISO-8601 UTC times; the JSON
document has a `format_version` (docs/results.md).
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

FORMAT_VERSION = "1.0"
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
    metrics = [m for m in results.metric_names if m != results.objective.metric]
    curves = any(t.curve for t in trials)
    # PBT: each trial's member, round and parent (the member of each trial by number).
    members = {t.number: t.lineage[0] for t in results.trials if t.lineage is not None}
    family = any(t.lineage for t in trials)
    header = ["trial", "state", *(["lineage"] if family else []), *params]
    header += [results.objective_label, *metrics]
    if curves:
        header.append("curve")
    header += ["duration", "tries", "task"]
    rows = []
    for t in trials:
        mark = "*" if t.number == results.best else " "
        row = [f"{mark}{t.number}", t.status.value]
        if family:
            row.append(lineage_text(t, members))
        row += [_param(t.params[p]) if p in t.params else "-" for p in params]
        row.append(_number(t.value))
        row += [_number(t.metrics.get(m)) for m in metrics]
        if curves:
            row.append(sparkline([v for _, v in t.curve]))
        row += [_duration(t, now), str(t.attempts), t.task_id or "-"]
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
        if color and t.number == results.best:
            line = f"\x1b[1;32m{line}\x1b[0m"
        elif color and t.status.value == "failed":
            line = f"\x1b[2m{line}\x1b[0m"
        lines.append(line)
    if not rows:
        lines.append("(no trials match)")
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
    return (
        f"{results.address} ({results.status}): {len(results.trials)} trials, "
        f"{results.direction} {results.objective_label}"
    )


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
        "params": to_json_value(t.params),
        "value": t.value,
        "metrics": dict(sorted(t.metrics.items())),
        "intermediate_values": [[step, value] for step, value in t.curve],
        "created": iso(t.created_at),
        "started": iso(t.started_at),
        "finished": iso(t.finished_at),
        "duration_seconds": t.duration(now),
        "attempts": t.attempts,
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
            "metrics": dict(results.objective.metrics),
            "reduce": results.objective.reduce,
        },
        "params": {p.name: p.to_dict() for p in results.params},
        "best_trial": results.best,
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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "value",
            "datetime_start",
            "datetime_complete",
            "duration_seconds",
            *(f"params_{p}" for p in params),
            *(f"metrics_{m}" for m in metrics),
            "state",
            "best",
            "attempts",
            "task_id",
            "trial_id",
            "model_uri",
        ]
    )
    for t in trials:
        duration = t.duration(now)
        writer.writerow(
            [
                t.number,
                "" if t.value is None else repr(t.value),
                iso(t.started_at) or "",
                iso(t.finished_at) or "",
                "" if duration is None else f"{duration:.3f}",
                *(_cell(t.params.get(p)) if p in t.params else "" for p in params),
                *("" if m not in t.metrics else repr(t.metrics[m]) for m in metrics),
                t.status.value,
                "true" if t.number == results.best else "false",
                t.attempts,
                t.task_id,
                t.id,
                t.model_uri or "",
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else to_string(value)
