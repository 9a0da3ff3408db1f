"""`tunectl trials`, `export`, `dashboard` and `report`: an experiment's results as a
table, as an Optuna study, in optuna-dashboard, and as a report (docs/results.md)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tunectl.cli.common import ExperimentArg, color_enabled, echo, examples, load, session
from tunectl.diags import DiagnosticError, error

if TYPE_CHECKING:  # imported by the commands that use them (start-up time)
    from collections.abc import Iterator

    from tunectl.engine.results import ExperimentResults



@contextmanager
def _results(ctx: typer.Context, address: str) -> Iterator[ExperimentResults]:
    from tunectl.addrs import parse_address
    from tunectl.engine.costs import price
    from tunectl.engine.results import load_results

    parse_address(address, trials=False)  # a typo is reported before anything loads
    ses = session(ctx)
    load(ses)
    state = ses.open_state(create=False)
    try:
        results = load_results(state, address)
        price(ses.config, state, results)
        yield results
    finally:
        state.close()
        ses.close()


def trials(
    ctx: typer.Context,
    address: ExperimentArg,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="KEY",
            help="Order by value (best first), number, duration, started, or a parameter "
            "or metric name (ascending).",
        ),
    ] = "value",
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the order.")] = False,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only trials in this state: complete, pruned, failed, running, pending "
            "(repeatable, or comma-separated).",
        ),
    ] = None,
    top: Annotated[
        int | None, typer.Option("--top", metavar="N", help="Only the first N trials.")
    ] = None,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV (Optuna's column names).")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON (docs/results.md).")] = False,
) -> None:
    """Compare an experiment's trials: parameters, value, metrics, curve, duration, tasks."""
    from tunectl.engine.results import select
    from tunectl.views import trials as view

    if csv_ and json_:
        raise DiagnosticError(error("Conflicting options", "Use --csv or --json, not both."))
    states = [s.strip() for item in state or () for s in item.split(",") if s.strip()]
    with _results(ctx, address) as results:
        chosen = select(results, sort=sort, reverse=reverse, states=states, top=top)
        if json_:
            echo(view.render_json(results, chosen))
        elif csv_:
            typer.echo(view.render_csv(results, chosen), nl=False)
        else:
            echo(view.render_table(results, chosen, color=color_enabled()))


def export(
    ctx: typer.Context,
    address: ExperimentArg,
    storage: Annotated[
        str,
        typer.Option(
            "--storage",
            metavar="URL",
            help="Where to write the study: sqlite:///study.db (any database URL Optuna "
            "takes) or journal:///study.log.",
        ),
    ],
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name", metavar="NAME", help="The study's name (default: the experiment's)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a study of that name in the storage.")
    ] = False,
) -> None:
    """Write an experiment's trials as an Optuna study, for any Optuna tool."""
    from tunectl.operations.study import export as export_study
    from tunectl.operations.study import masked

    with _results(ctx, address) as results:
        study = export_study(results, storage, study_name, overwrite)
        echo(
            f"Exported {results.address} ({len(results.trials)} trials) as the Optuna study "
            f'"{study.study_name}" to {masked(storage)}.'
        )


def dashboard(
    ctx: typer.Context,
    address: ExperimentArg,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="The address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="The port.")] = 8080,
) -> None:
    """Open an experiment in optuna-dashboard (the dashboard extra).

    The dashboard shows the trials as they were when it started.
    """
    try:
        import optuna_dashboard
    except ImportError:
        raise DiagnosticError(
            error(
                "optuna-dashboard is not installed",
                "tunectl dashboard runs optuna-dashboard, an optional extra. Install it with "
                "pip install 'tunectl[dashboard]', or export the study with tunectl export "
                "and open it with any Optuna tool.",
            )
        ) from None
    import optuna

    from tunectl.operations.study import rebuild_study

    storage = optuna.storages.InMemoryStorage()
    with _results(ctx, address) as results:
        rebuild_study(results, storage)
    echo(f"optuna-dashboard: {results.address} at http://{host}:{port}/ (Ctrl+C to stop)")
    # The server runs in a thread and the main thread waits for Ctrl+C: in the main thread,
    # a Ctrl+C arriving while a request is served would be swallowed by wsgiref's handler
    # (a bare `except`), and the server would go on.
    failed: list[OSError] = []

    def serve() -> None:
        try:
            optuna_dashboard.run_server(storage, host=host, port=port)
        except OSError as exc:
            failed.append(exc)

    server = threading.Thread(target=serve, name="dashboard", daemon=True)
    server.start()
    try:
        while server.is_alive():
            server.join(0.2)
    except KeyboardInterrupt:
        pass  # Ctrl+C is how it stops
    if failed:
        raise DiagnosticError(
            error("Cannot start the dashboard", f"Listening on {host}:{port} failed: {failed[0]}")
        ) from None
    echo("Stopped.")


def report(
    ctx: typer.Context,
    address: ExperimentArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="FILE", help="The HTML file, or with --markdown the .md file."
        ),
    ] = Path("report.html"),
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="Write a Markdown summary with PNG plots beside it, for a pull request.",
        ),
    ] = False,
) -> None:
    """Write an HTML report of an experiment: Optuna's plots, trials, configuration.

    It needs the report extra (plotly, scikit-learn, matplotlib).
    """
    from tunectl.operations import report as report_op

    report_op.check_installed(markdown)
    with _results(ctx, address) as results:
        written = report_op.write(results, out, markdown=markdown)
    echo(f"Wrote {written[0]}" + (f" and {len(written) - 1} plots" if len(written) > 1 else ""))


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "tunectl trials experiment.digits --top 5",
            "tunectl trials experiment.digits --state complete --csv > trials.csv",
        )
    )(trials)
    app.command(epilog=examples("tunectl export experiment.digits --storage sqlite:///digits.db"))(
        export
    )
    app.command(epilog=examples("tunectl dashboard experiment.digits --port 8080"))(dashboard)
    app.command(
        epilog=examples(
            "tunectl report experiment.digits -o report.html",
            "tunectl report experiment.digits --markdown -o report.md",
        )
    )(report)
