"""`tunectl show`, `output` and `logs`: reading the state, saved plans, trial output."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tunectl.addrs import Address, check_trial_option, is_address_like, parse_address
from tunectl.cli.common import AddrArg, color_enabled, echo, examples, load, session
from tunectl.diags import DiagnosticError, error
from tunectl.hcl.values import json_text, to_string
from tunectl.names import check_name, is_valid_name, shown

if TYPE_CHECKING:  # imported by the commands that use them (start-up time)
    from tunectl.operations.session import Session
    from tunectl.states import State


def _is_file(path: str) -> bool:
    """Whether `path` names a file; a path the system refuses (too long) names none."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _open_readonly(ctx: typer.Context) -> tuple[Session, State]:
    ses = session(ctx)
    load(ses)
    return ses, ses.open_state(create=False)


def show(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE | ADDR]",
            help="A saved plan file, or an address such as experiment.mnist.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the state, a saved plan, one experiment's trials, or one trial."""
    if target is not None and not is_address_like(target) and _is_file(target):
        from tunectl.plans import planfile

        saved = planfile.read(Path(target))
        if json_:
            from tunectl.config.sensitive import shown as redacted

            echo(json.dumps(redacted(saved), indent=2, sort_keys=True))
        else:
            from tunectl.views.plan_human import render_plan

            echo(render_plan(planfile.from_json(saved), color=color_enabled()))
        return
    if target is not None and not is_address_like(target) and not is_valid_name(target):
        raise DiagnosticError(
            error(
                "No such plan file or address",
                f"{shown(target)} is neither a saved plan file nor an address. Addresses look "
                "like experiment.mnist or experiment.mnist.trial[12].",
            )
        )
    from tunectl.operations import outputs as outputs_op
    from tunectl.search.stopping import REASON_TEXT

    # Check the address before loading anything: a typo is reported alone.
    address = parse_address(target) if target is not None else None
    ses, state = _open_readonly(ctx)
    try:
        if address is None:
            data: dict[str, Any] = {
                "lineage": state.lineage,
                "serial": state.serial,
                "experiments": outputs_op.exported(state),
            }
            if json_:
                echo(json.dumps(data, indent=2, sort_keys=True, default=str))
                return
            if not data["experiments"]:
                echo("The state has no experiments.")
                return
            for name, exp in sorted(data["experiments"].items()):
                t = exp["trials"]
                why = REASON_TEXT.get(exp.get("stop_reason") or "", "")
                echo(f"# {Address(name)}: {exp['status']}" + (f" ({why})" if why else ""))
                echo(
                    f"    trials: {t['complete']} complete, {t['pruned']} pruned, "
                    f"{t['failed']} failed, {t['running']} running"
                )
                if exp["best"] is None:  # several objectives: the Pareto front
                    front = ", ".join(str(p["trial"]) for p in exp["pareto"])
                    echo(f"    pareto: trials {front}" if front else "    pareto: -")
                elif exp["best"]["value"] is not None:
                    echo(
                        f"    best:   trial {exp['best']['number']} = "
                        f"{exp['best']['value']:.6g} "
                        f"{json_text(exp['best']['params'])}"
                    )
                    if exp["best"]["model_uri"]:
                        echo(f"    model:  {exp['best']['model_uri']}")
            return
        name, number = address.experiment, address.trial
        if state.get_experiment(name) is None:
            raise DiagnosticError(
                error("No such experiment", f"{Address(name)} is not in the state.")
            )
        if number is None:
            trials = state.list_trials(name)
            if json_:
                echo(
                    json.dumps([t.to_dict() for t in trials], indent=2, sort_keys=True, default=str)
                )
                return
            echo(f"{'trial':>6}  {'status':<9} {'value':>12}  params")
            for t in trials:
                value = _value_text(t)
                echo(f"{t.number:>6}  {t.status.value:<9} {value:>12}  {json_text(t.params)}")
            return
        trial = state.get_trial(name, number)
        if trial is None:
            raise DiagnosticError(error("No such trial", f"{target} is not in the state."))
        tasks = state.tasks_for_trial(name, number)
        metrics = state.metrics_for(name, number)
        if json_:
            detail: dict[str, Any] = trial.to_dict()
            detail["tasks"] = [t.to_dict() for t in tasks]
            detail["metrics"] = [m.to_dict() for m in metrics]
            echo(json.dumps(detail, indent=2, sort_keys=True, default=str))
            return
        echo(_trial_text(str(address), trial, tasks, metrics))
    finally:
        state.close()


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _value_text(trial: Any) -> str:
    """A trial's value, or with several objectives its values, for people."""
    if trial.objective_values:
        return ", ".join(f"{v:.6g}" for v in trial.objective_values)
    return "-" if trial.value is None else f"{trial.value:.6g}"


def _trial_text(address: str, trial: Any, tasks: list[Any], metrics: list[Any]) -> str:
    """One trial for people: what it tried, how it went, where its model is."""
    value = _value_text(trial)
    lines = [
        f"# {address}: {trial.status.value}",
        f"    id:       {trial.id}",
        f"    value:    {value}",
        f"    params:   {json_text(trial.params)}",
        f"    started:  {_when(trial.started_at)}",
        f"    finished: {_when(trial.finished_at)}",
    ]
    if trial.attempt:
        lines.append(f"    attempts: {trial.attempt + 1}")
    if trial.message:
        lines.append(f"    message:  {trial.message}")
    if trial.model_uri:
        lines.append(f"    model:    {trial.model_uri}")
    if trial.values:
        finals = ", ".join(f"{k}={v:.6g}" for k, v in sorted(trial.values.items()))
        lines.append(f"    metrics:  {finals} ({len(metrics)} values recorded)")
    for task in tasks:
        code = "" if task.exit_code is None else f", exit code {task.exit_code}"
        lines.append(
            f"    task {task.task_name} (attempt {task.attempt + 1}): {task.status.value}{code}"
            f"  [{task.provider} {task.handle_id or task.key}]"
        )
    return "\n".join(lines)


def output(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One output's name.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print every output as JSON.")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print one string or number output with no quoting.")
    ] = False,
) -> None:
    """Show the outputs recorded by the last apply."""
    from tunectl.operations import outputs as outputs_op
    from tunectl.views.outputs import hcl_value, outputs_json, render_outputs

    invalid = check_name(name, "output") if name is not None else None
    if invalid is not None:
        raise DiagnosticError(invalid)

    ses = session(ctx)
    load(ses)
    outputs = outputs_op.recorded(ses, name)
    if name is not None:
        if name not in outputs:
            raise DiagnosticError(
                error(
                    "Output not found",
                    f'The output "{name}" is not in the state. Apply the configuration first, '
                    "or check the name with tunectl output.",
                )
            )
        value, _ = outputs[name]
        if json_:
            echo(json.dumps(value))
        elif raw:
            if isinstance(value, dict | list) or value is None:
                raise DiagnosticError(
                    error(
                        "Unsupported value for raw output",
                        f'The output "{name}" is not a string or number; use --json.',
                    )
                )
            echo(to_string(value))
        else:
            echo(hcl_value(value))
        return
    if json_:
        echo(outputs_json(outputs))
    elif outputs:
        echo(render_outputs(outputs))
    else:
        echo("No outputs found: declare output blocks and run tunectl apply.")


def logs(
    ctx: typer.Context,
    address: AddrArg,
    trial: Annotated[
        int | None, typer.Option("--trial", help="The trial number (default: the latest).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing while the trial runs.")
    ] = False,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also print the report lines (@tunectl ...) that tunectl read metrics from.",
        ),
    ] = False,
) -> None:
    """Print a trial's output, task by task.

    Which trial it prints is said on stderr first, so stdout is the trial's own output. The
    report lines a trial printed with tunectl.report are left out unless --all is given;
    a malformed one is printed, with the reason tunectl skipped it.
    """
    from tunectl.providers.base import TaskHandle

    parsed = parse_address(address)
    name = parsed.experiment
    number = check_trial_option(trial) if trial is not None else parsed.trial
    ses, state = _open_readonly(ctx)
    try:
        if state.get_experiment(name) is None:
            raise DiagnosticError(
                error("No such experiment", f"{Address(name)} is not in the state.")
            )
        if number is None:
            trials = state.list_trials(name)
            if not trials:
                raise DiagnosticError(error("No trials", f"{Address(name)} has no trials yet."))
            number = trials[-1].number
            which = " (the latest)"
        else:
            which = ""
        record = state.get_trial(name, number)
        tasks = state.tasks_for_trial(name, number)
        if not tasks:
            raise DiagnosticError(error("No such trial", f"{Address(name, number)} has no tasks."))
        how = f": {record.status.value}" if record is not None else ""
        echo(f"==> {Address(name, number)}{which}{how} <==", err=True)
        hidden = 0
        for task in tasks:
            provider = ses.provider(task.provider)
            handle = TaskHandle(task.key, task.handle_id or task.key)
            if len(tasks) > 1:
                echo(f"==> task {task.task_name} (attempt {task.attempt + 1}) <==")
            for line in provider.log_header(handle):
                echo(line)
            cursor = 0
            while True:
                cursor, skipped = _print_log(provider, handle, cursor, all_)
                hidden += skipped
                if not follow:
                    break
                status = provider.poll([handle]).get(handle.id)
                if status is None or status.state.terminal:
                    hidden += _print_log(provider, handle, cursor, all_)[1]
                    break
                time.sleep(0.5)
        if hidden:
            echo(f"({hidden} report lines not shown: --all shows them)", err=True)
    finally:
        state.close()
        ses.close()


def _print_log(provider: Any, handle: Any, cursor: int, reports: bool) -> tuple[int, int]:
    """Print the task's output from `cursor` to its current end, in bounded reads; mark
    each report line apply skipped, and leave out the good ones unless `reports`. Returns
    the cursor after it and how many lines were left out."""
    from tunectl.engine.metrics import REPORT_PREFIX, report_line_problem

    hidden = 0
    unfinished = False  # inside a line longer than one read: not a report line
    while True:
        chunk = provider.read_log(handle, cursor)
        for i, line in enumerate(chunk.lines):
            last = i == len(chunk.lines) - 1
            if unfinished or (chunk.partial and last):
                unfinished = chunk.partial and last
                typer.echo(line, nl=not unfinished)
                continue
            problem = report_line_problem(line)
            if not reports and not problem and line.startswith(REPORT_PREFIX):
                hidden += 1
                continue
            echo(line)
            if problem:
                echo(f"tunectl: warning: the report line above was skipped: {problem}")
        if chunk.cursor == cursor:
            return cursor, hidden
        cursor = chunk.cursor


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "tunectl show",
            "tunectl show experiment.mnist",
            "tunectl show experiment.mnist.trial[3] --json",
            "tunectl show tuning.plan  # a plan saved with tunectl plan --out",
        )
    )(show)
    app.command(epilog=examples("tunectl output", "tunectl output best_params --json"))(output)
    app.command(
        epilog=examples(
            "tunectl logs experiment.mnist  # the latest trial",
            "tunectl logs experiment.mnist.trial[3] --follow",
            "tunectl logs experiment.mnist --trial 3 --all  # with the report lines",
        )
    )(logs)
