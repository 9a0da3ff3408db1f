"""`tunectl state list / show / rm / mv` and `tunectl force-unlock`: state surgery."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from tunectl.addrs import Address, parse_address
from tunectl.cli.common import App, LockTimeoutOpt, echo, examples, load, session
from tunectl.diags import DiagnosticError, error

if TYPE_CHECKING:
    from tunectl.states import State

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


@state_app.command(
    "rm",
    epilog=examples(
        "tunectl state rm experiment.mnist", "tunectl state rm experiment.mnist.trial[3]"
    ),
)
def rm(
    ctx: typer.Context,
    address: Annotated[
        str,
        typer.Argument(
            metavar="ADDR",
            help="The experiment or trial to forget: experiment.NAME or experiment.NAME.trial[N].",
        ),
    ],
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Forget an experiment without stopping its tasks or deleting its models, or one
    ended trial: its result, tasks and metrics leave the state (the search, `trials`,
    `export` and `report` no longer see it) and apply runs another in its place."""
    parsed = parse_address(address)
    name = parsed.experiment
    ses = session(ctx.parent, lock_timeout=lock_timeout)  # type: ignore[arg-type]
    load(ses)
    with ses.locked("OperationTypeStateRm"):
        state = ses.open_state(create=False)
        try:
            if state.get_experiment(name) is None:
                raise DiagnosticError(error("No such address", f"{address} is not in the state."))
            if parsed.trial is not None:
                model = _forget_trial(state, address, name, parsed.trial)
                ses.save(state)
                active = []
            else:
                active = state.active_tasks(name)
                state.backup()
                state.delete_experiment(name)
                ses.save(state)
        finally:
            state.close()
    echo(f"Removed {address}")
    if parsed.trial is not None and model:
        echo(f"Its model stays at {model}; tunectl no longer manages it.")
    if active:
        echo(
            f"Warning: {len(active)} task(s) may still be running; tunectl no longer manages them."
        )


def _forget_trial(state: State, address: str, name: str, number: int) -> str | None:
    """Forget one ended trial (backup first, one transaction); its model's address.
    A trial still running is refused: forgetting it would leave its task running unseen."""
    from tunectl.status import TaskRecordStatus

    trial = state.get_trial(name, number)
    if trial is None:
        raise DiagnosticError(error("No such address", f"{address} is not in the state."))
    running = [t for t in state.tasks_for_trial(name, number) if TaskRecordStatus(t.status).active]
    if running or not trial.status.ended:
        raise DiagnosticError(
            error(
                "Trial is running",
                f"{address} is {trial.status.value}: forgetting it would leave its task "
                "running unseen. Let tunectl apply run it to the end, then remove it. "
                "Nothing was changed.",
            )
        )
    state.backup()
    state.forget_trial(name, number)
    return trial.model_uri


@state_app.command(
    "mv",
    epilog=examples(
        "tunectl state mv experiment.mnist experiment.mnist_cnn  # after renaming the block"
    ),
)
def mv(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="ADDR", help="The experiment to rename: experiment.NAME.")
    ],
    destination: Annotated[
        str, typer.Argument(metavar="NEW_ADDR", help="Its new address: experiment.NEW_NAME.")
    ],
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Rename an experiment in the state, with its trials, tasks, metrics and models.

    Rename the experiment block in the configuration too, and plan shows no change: the
    experiment keeps its results instead of being destroyed and created anew. Its trials
    must not be running (let tunectl apply run them to the end first).
    """
    old = parse_address(source, trials=False).experiment
    new = parse_address(destination, trials=False).experiment
    ses = session(ctx.parent, lock_timeout=lock_timeout)  # type: ignore[arg-type]
    load(ses)
    with ses.locked("OperationTypeStateMv"):
        state = ses.open_state(create=False)
        try:
            if state.get_experiment(old) is None:
                raise DiagnosticError(error("No such address", f"{source} is not in the state."))
            if old == new:
                raise DiagnosticError(error("Same address", f"{source} already has that name."))
            if state.get_experiment(new) is not None:
                raise DiagnosticError(
                    error(
                        "Address already in the state",
                        f"{destination} is in the state already. Remove it first with "
                        f"tunectl state rm {destination}, or choose another name.",
                    )
                )
            if state.active_tasks(old):
                raise DiagnosticError(
                    error(
                        "Experiment is running",
                        f"{source} has trials running: let tunectl apply run them to the "
                        "end, then move it. Nothing was changed.",
                    )
                )
            state.backup()
            _rename(state, old, new)
            ses.save(state)
        finally:
            state.close()
    echo(f"Moved {source} to {destination}")


def _rename(state: State, old: str, new: str) -> None:
    """Copy every record of `old` under the name `new`, then forget `old`: one transaction."""
    record = state.get_experiment(old)
    assert record is not None
    tasks = state.all_tasks(old)
    objects = state.model_objects(old)
    generations = {record.generation} | {t.generation for t in tasks}
    generations |= {o.generation for o in objects}
    trials = [t for g in sorted(generations) for t in state.list_trials(old, generation=g)]
    metrics = [m for t in trials for m in state.metrics_for(old, t.number, t.generation)]
    with state.transaction():
        state.delete_experiment(old)
        state.put_experiment(replace(record, name=new))
        for trial in trials:
            state.add_trial(replace(trial, experiment=new))
        for task in tasks:
            state.add_task(replace(task, experiment=new))
        state.add_metrics([replace(m, experiment=new) for m in metrics])
        kept: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for obj in objects:
            kept.setdefault((obj.generation, obj.trial_number), []).append((obj.location, obj.size))
        for (generation, number), found in kept.items():
            state.record_model_objects(new, generation, number, found)


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
