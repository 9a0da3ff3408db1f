"""The report of `tunectl report`: one self-contained HTML page, or Markdown for a pull
request.

The HTML page embeds plotly.js once, in the page's head (reports are opened offline: no
CDN), then each plot as a `<div>` drawn by it, the parameter importances, the trial table
and the experiment's configuration. Every value from the state is HTML-escaped.
The Markdown summary names the PNG files written beside it. With several objectives there
is no best trial: both name the Pareto-optimal trials instead, marked in the trial table.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.engine.results import ExperimentResults
from tunectl.views.trials import summary_line, table_cells

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
td { white-space: nowrap; } .wide { overflow-x: auto; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #eef7ee; font-weight: 600; }
.plot { min-height: 450px; } .skipped { color: #777; font-style: italic; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _numeric(cell: str) -> bool:
    try:
        float(cell.lstrip("*"))
    except ValueError:
        return cell == "-"
    return True


def _trial_table(results: ExperimentResults) -> str:
    header, rows = table_cells(results, results.trials)
    lines = [
        "<div class='wide'><table class='trials'>",
        "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header),
    ]
    for row in rows:
        best = row[0].startswith("*")
        cells = "".join(
            f"<td class='num'>{_e(c)}</td>" if _numeric(c) else f"<td>{_e(c)}</td>" for c in row
        )
        lines.append(f"<tr{' class=best' if best else ''}>{cells}</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def _importance_table(ranking: Mapping[str, float]) -> str:
    if not ranking:
        return "<p class='skipped'>Importances need two complete trials.</p>"
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{value:.3f}</td></tr>"
        for name, value in ranking.items()
    )
    head = "<tr><th>parameter</th><th>importance</th></tr>"
    return f"<table class='importances'>{head}{rows}</table>"


def render_html(
    results: ExperimentResults,
    plots: Sequence[Any],
    ranking: Mapping[str, float],
    plotlyjs: str,
) -> str:
    """The page; `plots` are `operations.report.Plot`s holding plotly figures, `plotlyjs`
    the plotly.js bundle that draws them."""
    sections = []
    for plot in plots:
        sections.append(f"<h2>{_e(plot.title)}</h2>")
        if plot.figure is None:
            sections.append(f"<p class='skipped'>Not drawn: {_e(plot.skipped)}.</p>")
            continue
        div = plot.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{plot.key}",
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(f"<div class='plot' data-plot='{_e(plot.key)}'>{div}</div>")
    best = results.trial(results.best) if results.best is not None else None
    summary = [f"<p>{_e(summary_line(results))}.</p>"]
    if best is not None:
        params = ", ".join(f"{k} = {v}" for k, v in best.params.items())
        summary.append(
            f"<p>Best: trial {best.number}, {_e(results.objective_label)} = "
            f"{best.value:.6g} ({_e(params)})"
            + (f"; model <code>{_e(best.model_uri)}</code>" if best.model_uri else "")
            + ".</p>"
        )
    if results.multi:
        summary.append(f"<p>{_e(pareto_sentence(results))}</p>")
    config = json.dumps(results.config, indent=2, sort_keys=True, ensure_ascii=False)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            f"<title>{_e(results.address)}: tunectl report</title>",
            f"<style>{_STYLE}</style>",
            # plotly.js itself, once: the page draws offline.
            f"<script type='text/javascript'>{plotlyjs}</script>",
            "</head><body>",
            f"<h1>{_e(results.address)}</h1>",
            *summary,
            *sections,
            "<h2>Parameter importances</h2>",
            _importance_table(ranking),
            "<h2>Trials</h2>",
            _trial_table(results),
            "<h2>Configuration</h2>",
            f"<pre>{_e(config)}</pre>",
            "</body></html>",
        ]
    )


def pareto_sentence(results: ExperimentResults) -> str:
    """Which trials are Pareto-optimal, with their values."""
    if not results.pareto:
        return "Pareto front: no trial is complete yet."
    names = results.objective.metric_names
    parts = []
    for number in results.pareto:
        trial = results.trial(number)
        values = trial.values if trial is not None else []
        shown = ", ".join(f"{n} {v:.6g}" for n, v in zip(names, values, strict=False))
        parts.append(f"trial {number} ({shown})")
    return f"Pareto front ({len(parts)} trials): " + "; ".join(parts) + "."


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def render_markdown(
    results: ExperimentResults,
    plots: Sequence[Any],
    images: Mapping[str, str],
    ranking: Mapping[str, float],
    top: int = 10,
) -> str:
    """A summary for a pull request: the best trial, importances, the best `top` trials,
    then each plot's image (`images`: plot key -> file name beside the Markdown file)."""
    from tunectl.engine.results import select

    lines = [f"### {results.address}", "", summary_line(results) + "."]
    best = results.trial(results.best) if results.best is not None else None
    if best is not None:
        lines += [
            "",
            f"**Best: trial {best.number}**, {results.objective_label} = {best.value:.6g}",
        ]
        lines += [f"- `{k}` = `{v}`" for k, v in best.params.items()]
        if best.model_uri:
            lines.append(f"- model: `{best.model_uri}`")
    if results.multi:
        lines += ["", f"**{pareto_sentence(results)}**"]
    if ranking:
        lines += ["", "| parameter | importance |", "|---|---:|"]
        lines += [f"| `{_md(k)}` | {v:.3f} |" for k, v in ranking.items()]
    chosen = select(results, top=top)
    header, rows = table_cells(results, chosen)
    lines += ["", f"Top {len(rows)} trials:", ""]
    lines.append("| " + " | ".join(_md(h) for h in header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(_md(c.strip()) for c in row) + " |" for row in rows]
    for plot in plots:
        lines += ["", f"#### {plot.title}", ""]
        if plot.key in images:
            lines.append(f"![{plot.title}]({images[plot.key]})")
        else:
            lines.append(f"_Not drawn: {plot.skipped}._")
    return "\n".join(lines) + "\n"
