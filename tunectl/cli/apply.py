"""`tunectl plan`, `apply` and `destroy`."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tunectl.addrs import Address, parse_address
from tunectl.cli.common import (
    LockTimeoutOpt,
    ReplaceOpt,
    TargetOpt,
    VarFileOpt,
    VarOpt,
    color_enabled,
    echo,
    examples,
    load,
    session,
)
from tunectl.diags import DiagnosticError, error

if TYPE_CHECKING:  # what a command needs is imported when it runs (start-up time)
    from tunectl.operations.events import Event
    from tunectl.plans.change import Plan


def _render(plan: Plan, fmt: str, directory: Path | None = None) -> str:
    if fmt == "json":
        from tunectl.views.plan_json import render_plan_json

        return render_plan_json(plan)
    if fmt == "markdown":
        from tunectl.views.plan_markdown import directory_label, render_plan_markdown

        return render_plan_markdown(plan, directory_label(directory) if directory else None)
    from tunectl.cli.common import _CURRENT
    from tunectl.views.plan_human import render_plan

    return render_plan(plan, color=color_enabled(), sources=_CURRENT.get("sources"))


def _render_failure(exc: DiagnosticError, fmt: str, directory: Path) -> str:
    if fmt == "json":
        from tunectl.views.plan_json import render_diagnostics_json

        return render_diagnostics_json(exc.diags)
    from tunectl.cli.common import _CURRENT
    from tunectl.views.plan_markdown import directory_label, render_failure_markdown

    return render_failure_markdown(exc.diags, directory_label(directory), _CURRENT.get("sources"))


def _check_addresses(addresses: list[str], flag: str) -> None:
    for address in addresses:  # --replace also takes a trial: it runs again
        parse_address(address, flag=flag, trials=flag == "--replace")


def _check_preview(count: int | None) -> None:
    from tunectl.operations.preview import MAX_PREVIEW

    if count is not None and not 1 <= count <= MAX_PREVIEW:
        raise DiagnosticError(
            error(
                "Invalid --preview",
                f"--preview {count}: give the number of parameter sets to list, "
                f"from 1 to {MAX_PREVIEW}.",
            )
        )


def plan(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Save the plan to FILE for `tunectl apply FILE`."
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (see docs/plan-json.md).")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the plan as markdown for a pull-request comment."),
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 with no changes, 2 with changes, 1 on error."
        ),
    ] = False,
    destroy: Annotated[
        bool, typer.Option("--destroy", help="Plan to destroy every experiment.")
    ] = False,
    target: TargetOpt = None,
    replace: ReplaceOpt = None,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
    preview: Annotated[
        int | None,
        typer.Option(
            "--preview",
            metavar="N",
            help="List the next N parameter sets each experiment's sampler proposes "
            "(informational; see docs/language.md, Preview).",
        ),
    ] = None,
) -> None:
    """Show what apply would change: experiments created, updated, replaced, destroyed."""
    from tunectl.operations import plan as plan_op
    from tunectl.plans import planfile
    from tunectl.plans.differ import DiffOptions

    fmt = "json" if json_ else "markdown" if markdown else "human"
    try:
        _check_addresses(target or [], "--target")
        _check_addresses(replace or [], "--replace")
        _check_preview(preview)
        ses = session(ctx, var, var_file, lock_timeout)
        load(ses, warn=True)
        options = DiffOptions(destroy=destroy, targets=target or [], replace=replace or [])
        planned = plan_op.run(ses, options, seal=out is not None, preview=preview or 0)
    except DiagnosticError as exc:
        if fmt == "human":
            raise
        # A program (or a pull-request comment) reads stdout: say why there is no plan there.
        echo(_render_failure(exc, fmt, ctx.obj.directory))
        raise typer.Exit(1) from None
    result, key = planned.plan, planned.key
    echo(_render(result, fmt, ctx.obj.directory))
    if result.errors:
        raise typer.Exit(1)
    if out is not None:
        planfile.write(result, out, key)
        if fmt == "human":
            echo(
                f"\nSaved the plan to: {out}\n\nTo perform exactly these actions, run:\n    "
                f'tunectl apply "{out}"'
            )
    # Terraform's 2 means "apply would do something": here that includes trials still to
    # run or to follow, so `plan --detailed-exitcode || apply` works from cron.
    if detailed_exitcode and (result.has_changes or result.pending_work):
        raise typer.Exit(2)


class Interrupts:
    """First Ctrl-C: stop launching, checkpoint, exit. Second: exit at once."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __enter__(self) -> Interrupts:
        self._old = signal.signal(signal.SIGINT, self._handle)
        self._old_term = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.count:
            # After an interrupt the process is on its way out: a second Ctrl-C arriving
            # now still means "exit at once" (130), not a KeyboardInterrupt traceback.
            return
        signal.signal(signal.SIGINT, self._old)
        signal.signal(signal.SIGTERM, self._old_term)

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count == 1:
            sys.stderr.write(
                "\nInterrupt received. Stopping: no new trials; running trials keep running and "
                "the next apply adopts them. Press Ctrl-C again to exit at once.\n"
            )
            self.event.set()
        else:
            sys.stderr.write("\nTwo interrupts received. Exiting immediately.\n")
            sys.stderr.flush()
            import os

            os._exit(130)


def _approve(question: str) -> bool:
    echo(
        f"\n{question}\n  tunectl will perform the actions described above.\n  Only 'yes' will "
        "be accepted to approve.\n"
    )
    try:
        answer = (
            input("  Enter a value: ")
            if sys.stdin and sys.stdin.isatty()
            else sys.stdin.readline().strip()
        )
    except EOFError:
        answer = ""
    return answer.strip() == "yes"


class _Hooks:
    """How apply shows its events, asks for approval and hears Ctrl-C on a terminal."""

    def __init__(self, progress_interval: float = 60.0) -> None:
        from tunectl.views.apply import ApplyView

        self.view = ApplyView(color=color_enabled(), progress_interval=progress_interval)

    def approve(self, question: str) -> bool:
        return _approve(question)

    @contextlib.contextmanager
    def interrupts(self) -> Iterator[threading.Event]:
        with Interrupts() as interrupts:
            yield interrupts.event

    def emit(self, event: Event) -> None:
        from tunectl.operations.events import (
            Destroyed,
            ExperimentChanged,
            Finished,
            LoopPass,
            Note,
            PlanReady,
            RunStarted,
            RunStopped,
            TrialEvent,
        )
        from tunectl.views.apply import destroyed_text

        view = self.view
        if isinstance(event, PlanReady):
            echo(_render(event.plan, "human"))
        elif isinstance(event, ExperimentChanged):
            view.say(f"{Address(event.name)}: {event.what}")
        elif isinstance(event, TrialEvent):
            view.event(event.kind, event.experiment, event.message, event.trial, event.output)
        elif isinstance(event, LoopPass):
            view.tick()
        elif isinstance(event, RunStarted):
            view.start(event.runners)
        elif isinstance(event, RunStopped):
            view.stop()
        elif isinstance(event, Note):
            view.say(event.text)
        elif isinstance(event, Finished):
            view.finished(event.ran, event.failed, event.exported, event.outputs)
        elif isinstance(event, Destroyed):
            echo(destroyed_text(event.count))


def _interval(text: str) -> float:
    from tunectl.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise DiagnosticError(error("Invalid --progress-interval", str(exc))) from None


def _run(
    ctx: typer.Context,
    *,
    plan_path: Path | None,
    auto_approve: bool,
    once: bool,
    destroy: bool,
    target: list[str],
    replace: list[str],
    var: list[str] | None,
    var_file: list[Path] | None,
    lock_timeout: str,
    progress_interval: str = "1m",
) -> None:
    from tunectl.operations import apply as apply_op

    interval = _interval(progress_interval)
    if plan_path is not None:
        request, var = apply_op.saved_request(plan_path, var or [])
    else:
        request = apply_op.ApplyRequest(destroy=destroy, targets=target, replace=replace)
    request = dataclasses.replace(request, once=once, auto_approve=auto_approve)
    _check_addresses(list(request.targets), "--target")
    _check_addresses(list(request.replace), "--replace")
    ses = session(ctx, var, var_file, lock_timeout)
    load(ses, warn=True)
    result = apply_op.run(ses, request, _Hooks(interval))
    if result.outcome == "cancelled":
        echo("\nApply cancelled.")
    if result.outcome != "done":
        raise typer.Exit(1)
    if result.failures:
        raise DiagnosticError(result.failures)


def apply(
    ctx: typer.Context,
    plan_file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="A plan saved with `tunectl plan --out FILE`."),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Skip the interactive approval.")
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Make one reconcile pass and exit (for cron or CI).")
    ] = False,
    target: TargetOpt = None,
    replace: ReplaceOpt = None,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
    progress_interval: Annotated[
        str,
        typer.Option(
            "--progress-interval",
            metavar="DURATION",
            help="When stdout is not a terminal, print each running experiment's status "
            "line this often, e.g. 30s or 5m; 0 for never.",
        ),
    ] = "1m",
) -> None:
    """Reconcile: create, update, replace or destroy experiments, then run their trials
    until every experiment is done."""
    _run(
        ctx,
        plan_path=plan_file,
        auto_approve=auto_approve,
        once=once,
        destroy=False,
        target=target or [],
        replace=replace or [],
        var=var,
        var_file=var_file,
        lock_timeout=lock_timeout,
        progress_interval=progress_interval,
    )


def destroy(
    ctx: typer.Context,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Skip the interactive approval.")
    ] = False,
    target: TargetOpt = None,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Stop every experiment's running trials, delete their models, and remove them."""
    _run(
        ctx,
        plan_path=None,
        auto_approve=auto_approve,
        once=False,
        destroy=True,
        target=target or [],
        replace=[],
        var=var,
        var_file=var_file,
        lock_timeout=lock_timeout,
    )


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "tunectl plan",
            "tunectl plan --out tuning.plan  # then: tunectl apply tuning.plan",
            "tunectl plan --markdown --detailed-exitcode  # in CI, for a pull request",
        )
    )(plan)
    app.command(
        epilog=examples(
            "tunectl apply",
            "tunectl apply tuning.plan",
            "tunectl apply --auto-approve --target experiment.mnist",
        )
    )(apply)
    app.command(epilog=examples("tunectl destroy", "tunectl destroy --target experiment.mnist"))(
        destroy
    )
