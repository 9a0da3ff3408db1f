"""`tunectl report`: Optuna's own plots drawn on the study rebuilt from the state
(`operations.study`), for one self-contained HTML file (plotly, plotly.js embedded) or a
Markdown summary with PNG plots beside it (Optuna's matplotlib plots).

The plots: optimization history, parallel coordinates, parameter importances (fANOVA with a
fixed seed, so a report is reproducible), slice, the contour of the two most important
parameters, and intermediate values (pruned trials included). A plot the trials cannot
support (one parameter has no contour, no trial reported steps) is left out with the
reason, never an error. With several objectives the Pareto front comes first (Optuna's
`plot_pareto_front`, the first two objectives' plane when there are more than three),
importances are drawn per objective, and the other plots show the first objective.
`tunectl.views.report` lays the page out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunectl.diags import DiagnosticError, error
from tunectl.engine.results import ExperimentResults
from tunectl.operations.study import rebuild_study

IMPORTANCE_SEED = 0


@dataclass
class Plot:
    key: str  # a file-name-safe id: history, parallel, importances, slice, contour, curves
    title: str
    figure: Any = None  # a plotly Figure, or a matplotlib Figure with --markdown
    skipped: str = ""  # why there is no figure


def check_installed(markdown: bool) -> None:
    """A diagnostic naming the extra when a package the report draws with is missing."""
    needed = ["plotly", "sklearn"] + (["matplotlib"] if markdown else [])
    missing = []
    for name in needed:
        try:
            __import__(name)
        except ImportError:
            missing.append({"sklearn": "scikit-learn"}.get(name, name))
    if missing:
        raise DiagnosticError(
            error(
                "The report extra is not installed",
                f"tunectl report draws with {', '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed. Install them with "
                "pip install 'tunectl[report]'.",
            )
        )


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def importances(study: optuna.Study) -> dict[str, float]:
    """Each parameter's fANOVA importance (seeded); empty when they cannot be computed
    (fewer than two complete trials, or one parameter)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
    try:
        with _quiet():
            target = _first(study).get("target")  # several objectives: the first one's
            found = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=target
            )
    except (ValueError, RuntimeError):
        return {}
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}


def plots(study: optuna.Study, ranking: dict[str, float], backend: Any) -> list[Plot]:
    """The report's plots, drawn with `backend` (`optuna.visualization` or its
    `matplotlib` module)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    params = sorted({p for t in study.get_trials(deepcopy=False) for p in t.params})
    curves = any(t.intermediate_values for t in study.get_trials(deepcopy=False))
    pair = list(ranking)[:2] if len(ranking) >= 2 else params[:2]
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
    no_complete = "no trial is complete yet"
    first = _first(study)  # several objectives: these plots show the first one
    of = f" of {first['target_name']}" if first else ""
    specs: list[tuple[str, str, Callable[[], Any], str]] = [
        ("history", f"Optimization history{of}",
         lambda: backend.plot_optimization_history(study, **first),
         "" if complete else no_complete),
        ("parallel", f"Parallel coordinates{of}",
         lambda: backend.plot_parallel_coordinate(study, **first),
         "" if complete else no_complete),
        ("importances", "Parameter importances (fANOVA)",
         lambda: backend.plot_param_importances(study, evaluator=evaluator),
         "" if ranking else "importances need two complete trials and a parameter"),
        ("slice", f"Slice{of}", lambda: backend.plot_slice(study, **first),
         "" if complete else no_complete),
        ("contour", f"Contour of {' and '.join(pair)}{of.replace(' of ', ', for ')}",
         lambda: backend.plot_contour(study, params=pair, **first),
         "" if complete and len(pair) == 2 else "a contour needs two parameters"),
        ("curves", "Intermediate values (pruned trials included)",
         lambda: backend.plot_intermediate_values(study),
         "" if curves else "no trial reported intermediate values"),
    ]  # fmt: skip
    if len(study.directions) > 1:
        specs.insert(0, _pareto_spec(study, backend, "" if complete else no_complete))
    out = []
    for key, title, draw, skipped in specs:
        plot = Plot(key, title, skipped=skipped)
        if not skipped:
            try:
                with _quiet():
                    plot.figure = draw()
            except (ValueError, RuntimeError) as exc:
                plot.skipped = f"Optuna could not draw it: {exc}"
        out.append(plot)
    return out


def _first(study: optuna.Study) -> dict[str, Any]:
    """With several objectives, the keyword arguments that make a single-objective plot
    show the first one; none for a single objective."""
    if len(study.directions) == 1:
        return {}
    name = study.metric_names[0] if study.metric_names else "objective 0"
    return {"target": lambda t: t.values[0], "target_name": name}


def _pareto_spec(
    study: optuna.Study, backend: Any, skipped: str
) -> tuple[str, str, Callable[[], Any], str]:
    """Optuna's Pareto-front plot: of every objective when there are two or three, else
    of the first two."""
    count = len(study.directions)
    names = list(study.metric_names or [f"objective {i}" for i in range(count)])
    if count <= 3:
        return (
            "pareto",
            "Pareto front of " + ", ".join(names),
            lambda: backend.plot_pareto_front(study),
            skipped,
        )
    return (
        "pareto",
        f"Pareto front of {names[0]} and {names[1]}",
        lambda: backend.plot_pareto_front(
            study, targets=lambda t: (t.values[0], t.values[1]), target_names=names[:2]
        ),
        skipped,
    )


def write(results: ExperimentResults, out: Path, *, markdown: bool) -> list[Path]:
    """Write the report to `out`; with `markdown`, PNG plots beside it. Returns the paths
    written, the report first."""
    from tunectl.views import report as view

    study = rebuild_study(results)
    ranking = importances(study)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not markdown:
            from plotly.offline import get_plotlyjs

            drawn = plots(study, ranking, optuna.visualization)
            page = view.render_html(results, drawn, ranking, get_plotlyjs())
            out.write_text(page, encoding="utf-8")
            return [out]
        import matplotlib

        matplotlib.use("Agg")  # files only: no display
        import matplotlib.pyplot as plt

        written = [out]
        images: dict[str, str] = {}
        drawn = plots(study, ranking, optuna.visualization.matplotlib)
        for plot in drawn:
            if plot.figure is None:
                continue
            figure = _figure_of(plot.figure)
            path = out.with_name(f"{out.stem}-{plot.key}.png")
            figure.savefig(path, dpi=96, bbox_inches="tight")
            plt.close(figure)
            images[plot.key] = path.name
            written.append(path)
        out.write_text(view.render_markdown(results, drawn, images, ranking), encoding="utf-8")
        return written
    except OSError as exc:
        raise DiagnosticError(
            error("Cannot write the report", f"Writing {exc.filename or out} failed: {exc}")
        ) from None


def _figure_of(drawn: Any) -> Any:
    """The matplotlib Figure of what Optuna's matplotlib plots return (Axes or arrays)."""
    while not hasattr(drawn, "savefig"):
        if hasattr(drawn, "figure"):
            drawn = drawn.figure
        else:
            drawn = drawn.flat[0] if hasattr(drawn, "flat") else drawn[0]
    return drawn
