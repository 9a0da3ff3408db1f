"""`tunectl plan`, `apply` and `destroy`."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from tunectl.addrs import parse_address
from tunectl.cli.common import (
    LockTimeoutOpt,
    ReplaceOpt,
    TargetOpt,
    VarFileOpt,
    VarOpt,
    color_enabled,
    echo,
    load,
    workspace,
)
from tunectl.diags import Diagnostic, DiagnosticError, error
from tunectl.plans import planfile
from tunectl.plans.change import Action, Plan
from tunectl.plans.differ import DiffOptions
from tunectl.workspace import Workspace


def _render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        from tunectl.views.plan_json import render_plan_json

        return render_plan_json(plan)
    if fmt == "markdown":
        from tunectl.views.plan_markdown import render_plan_markdown

        return render_plan_markdown(plan)
    from tunectl.views.plan_human import render_plan

    return render_plan(plan, color=color_enabled())


def _check_addresses(addresses: list[str], flag: str) -> None:
    for address in addresses:
        parse_address(address, flag=flag, trials=False)


def _make_plan(ws: Workspace, state, options: DiffOptions) -> Plan:
    drift = ws.refresh(state)
    return ws.plan(state, options, drift)


def plan(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Save the plan to FILE for `tunectl apply FILE`.")
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
) -> None:
    """Show what apply would change: experiments created, updated, replaced, destroyed."""
    _check_addresses(target or [], "--target")
    _check_addresses(replace or [], "--replace")
    ws = workspace(ctx, var, var_file, lock_timeout)
    load(ws, warn=True)
    options = DiffOptions(destroy=destroy, targets=target or [], replace=replace or [])
    with ws.locked("OperationTypePlan"):
        state = ws.open_state(create=True)
        try:
            result = _make_plan(ws, state, options)
            key = state.plan_key() if out is not None else b""  # made before the push
            ws.save(state)  # the refresh may have recorded drift
        finally:
            state.close()
            ws.close()
    fmt = "json" if json_ else "markdown" if markdown else "human"
    echo(_render(result, fmt))
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


def _confirm(question: str) -> None:
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
    if answer.strip() != "yes":
        echo("\nApply cancelled.")
        raise typer.Exit(1)


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
) -> None:
    from tunectl.views.apply import ApplyView

    saved: planfile.SavedPlan | None = None
    if plan_path is not None:
        # Nothing in the file is used before its digest is checked here.
        saved = planfile.read_sealed(plan_path)
        recorded = saved.plan
        destroy = bool(recorded.get("destroy"))
        target = list(recorded.get("targets") or [])
        replace = list(recorded.get("replace") or [])
        merged = [f"{k}={_var_text(v)}" for k, v in (recorded.get("variables") or {}).items()]
        var = merged + list(var or [])
    _check_addresses(target, "--target")
    _check_addresses(replace, "--replace")
    ws = workspace(ctx, var, var_file, lock_timeout)
    load(ws, warn=True)
    view = ApplyView(color=color_enabled())
    operation = "OperationTypeDestroy" if destroy else "OperationTypeApply"
    with ws.locked(operation), Interrupts() as interrupts:
        state = ws.open_state(create=True)
        try:
            if saved is not None:
                planfile.check(
                    saved, state.lineage, state.serial, ws.digest(state), state.plan_key
                )
            state.backup()
            result = _make_plan(
                ws, state, DiffOptions(destroy=destroy, targets=target, replace=replace)
            )
            if saved is not None:
                planfile.check_changes(saved, result)
            if saved is None or result.drift or result.errors:
                echo(_render(result, "human"))
            if result.errors:
                raise typer.Exit(1)
            if not result.has_changes and not result.pending_work:
                if destroy:
                    _destroyed(0)
                    return
                _finish(ws, state, view, run=False)
                return
            if saved is None and not auto_approve:
                question = (
                    "Do you really want to destroy all experiments?"
                    if destroy
                    else "Do you want to perform these actions?"
                )
                _confirm(question)
            experiments = ws.apply_changes(state, result, view.say)
            if destroy:
                ws.record_outputs(state)
                _destroyed(sum(c.action is Action.DESTROY for c in result.changes))
                return
            if experiments:
                _loop(ws, state, experiments, view, once, interrupts)
            failed = [e.name for e in experiments if _status(state, e.name) == "failed"]
            _finish(ws, state, view, run=bool(experiments), failed=bool(failed))
            if failed:
                raise DiagnosticError([_failed(state, name) for name in failed])
        finally:
            try:
                ws.save(state)  # also after an interrupt or an error: the state is consistent
            finally:
                state.close()
                ws.close()


def _status(state, name: str) -> str | None:
    record = state.get_experiment(name)
    return record.status if record is not None else None


def _failed(state, name: str) -> Diagnostic:
    """Terraform exits 1 when it cannot reach the desired state; so does apply when an
    experiment ends failed (SPEC 6 "Exit codes")."""
    from tunectl.search.stopping import REASON_TEXT

    record = state.get_experiment(name)
    reason = REASON_TEXT.get(record.stop_reason, record.stop_reason) if record else ""
    counts = state.trial_counts(name)
    return error(
        f"experiment.{name} failed",
        f"The experiment ended failed ({reason}; {counts['complete']} complete, "
        f"{counts['failed']} failed trials). See the failed trials' messages with "
        f"`tunectl show experiment.{name}` and their output with `tunectl logs "
        f"experiment.{name} --trial N`; fix the cause, then raise the limit or replace the "
        "experiment and apply again.",
    )


def _destroyed(count: int) -> None:
    noun = "experiment" if count == 1 else "experiments"
    echo(f"\nDestroy complete! {count} {noun} destroyed.")


def _var_text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _loop(ws: Workspace, state, experiments, view, once: bool, interrupts: Interrupts) -> None:
    from tunectl.engine.reconcile import LoopOptions, Reconciler, Runner
    from tunectl.search.space import space_size

    models = ws.models()
    # A shared state learns of a local task before it starts (see Runner).
    shared = ws.remote() is not None
    runners = [
        Runner(
            exp,
            state,
            ws.provider(exp.trial.provider),
            models,
            ws.directory,
            space_size(exp.algorithm, exp.params),
            view.event,
            before_launch=(lambda: ws.save(state, force=False, ahead=True)) if shared else None,
        )
        for exp in experiments
    ]
    view.start(runners)
    try:

        def should_stop() -> bool:
            ws.save(state, force=False)  # a remote state is pushed every few seconds
            return interrupts.event.is_set()

        Reconciler(runners, LoopOptions(once=once), should_stop).run()
    finally:
        view.stop()
    if interrupts.event.is_set():
        view.say("Stopped. Running trials keep running; run tunectl apply again to adopt them.")
        # Checkpointed, but not done: exit 1, as Terraform does after an interrupt.
        ws.record_outputs(state)
        raise typer.Exit(1)
    elif once:
        running = sum(len(r.active) for r in runners)
        view.say(f"One pass done (--once); {running} trial(s) running, adopted by the next apply.")


def _finish(ws: Workspace, state, view, run: bool, failed: bool = False) -> None:
    outputs = ws.record_outputs(state)
    if run:
        view.summary(ws.exported(state), "Apply failed." if failed else "Apply complete.")
    else:
        echo("\nNo changes. Your experiments match the configuration.")
    if outputs:
        from tunectl.views.outputs import render_outputs

        echo("\nOutputs:\n")
        echo(render_outputs(outputs))


def apply(
    ctx: typer.Context,
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved with `tunectl plan --out`.")
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
    app.command()(plan)
    app.command()(apply)
    app.command()(destroy)
