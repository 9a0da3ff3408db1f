"""`tunectl state list / show / rm` and `tunectl force-unlock`: state surgery."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tunectl.addrs import Address, parse_address
from tunectl.cli.common import App, LockTimeoutOpt, echo, examples, load, session
from tunectl.diags import DiagnosticError, error

state_app = App(help="Inspect and change the state by hand.")


@state_app.command("list", epilog=examples("tunectl state list"))
def list_(ctx: typer.Context) -> None:
    """List the addresses in the state."""
    ses = session(ctx.parent)  # type: ignore[arg-type]
    load(ses)
    state = ses.open_state(create=False)
    try:
        for record in state.list_experiments():
            echo(str(Address(record.name)))
    finally:
        state.close()


@state_app.command(
    "show",
    epilog=examples(
        "tunectl state show experiment.mnist", "tunectl state show experiment.mnist.trial[3]"
    ),
)
def show(
    ctx: typer.Context,
    address: Annotated[
        str,
        typer.Argument(metavar="ADDR", help="experiment.NAME or experiment.NAME.trial[N]."),
    ],
) -> None:
    """Show one experiment or trial as stored."""
    parsed = parse_address(address)
    name, number = parsed.experiment, parsed.trial
    ses = session(ctx.parent)  # type: ignore[arg-type]
    load(ses)
    state = ses.open_state(create=False)
    try:
        record = state.get_experiment(name)
        if record is None:
            raise DiagnosticError(error("No such address", f"{address} is not in the state."))
        if number is None:
            data = record.to_dict()
            data["trials"] = state.trial_counts(name)
        else:
            trial = state.get_trial(name, number)
            if trial is None:
                raise DiagnosticError(error("No such address", f"{address} is not in the state."))
            data = trial.to_dict()
        echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    finally:
        state.close()


@state_app.command("rm", epilog=examples("tunectl state rm experiment.mnist"))
def rm(
    ctx: typer.Context,
    address: Annotated[
        str, typer.Argument(metavar="ADDR", help="The experiment to forget: experiment.NAME.")
    ],
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Forget an experiment without stopping its tasks or deleting its models."""
    name = parse_address(address, trials=False).experiment
    ses = session(ctx.parent, lock_timeout=lock_timeout)  # type: ignore[arg-type]
    load(ses)
    with ses.locked("OperationTypeStateRm"):
        state = ses.open_state(create=False)
        try:
            if state.get_experiment(name) is None:
                raise DiagnosticError(error("No such address", f"{address} is not in the state."))
            active = state.active_tasks(name)
            state.backup()
            state.delete_experiment(name)
            ses.save(state)
        finally:
            state.close()
    echo(f"Removed {address}")
    if active:
        echo(
            f"Warning: {len(active)} task(s) may still be running; tunectl no longer manages them."
        )


def force_unlock(
    ctx: typer.Context,
    lock_id: Annotated[
        str, typer.Argument(metavar="ID", help="The lock ID shown in the lock error.")
    ],
) -> None:
    """Release a stuck state lock."""
    ses = session(ctx)
    load(ses)
    ses.backend.force_unlock(lock_id)
    echo("tunectl state has been successfully unlocked!")


def register(app: typer.Typer) -> None:
    app.add_typer(state_app, name="state")
    app.command("force-unlock", epilog=examples("tunectl force-unlock 3f2a1c9e"))(force_unlock)
