"""Destroy one experiment: stop its running tasks, clean them up, delete its stored models
and forget it. Refused, with nothing touched, while a task runs on another host."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from tunectl.addrs import Address
from tunectl.diags import DiagnosticError, error
from tunectl.engine.hosts import elsewhere
from tunectl.engine.models import ModelStore, delete_stored
from tunectl.operations.session import Session
from tunectl.providers.base import TaskHandle
from tunectl.states import State
from tunectl.states.backend import storage_call


def destroy_experiment(session: Session, state: State, models: ModelStore, name: str) -> None:
    here = session.state_path().parent
    foreign = [t for t in state.active_tasks(name) if elsewhere(t.host, here)]
    if foreign:
        hosts = ", ".join(sorted({str(t.host) for t in foreign}))
        trials = ", ".join(str(n) for n in sorted({t.trial_number for t in foreign}))
        raise DiagnosticError(
            error(
                "Tasks run on another host",
                f"{Address(name)}: trial(s) {trials} run on host {hosts}, and only "
                "that host can stop them. Run this command there; or run `tunectl state "
                f"rm {Address(name)}` to forget the experiment without stopping them. "
                "Nothing was stopped or deleted.",
            )
        )
    # All of a provider's tasks at once, so their grace periods run side by side.
    by_provider: dict[str, list[Any]] = {}
    for task in state.active_tasks(name):
        by_provider.setdefault(task.provider, []).append(task)
    for provider_name, tasks in by_provider.items():
        handles = {task.handle_id or task.key: task for task in tasks}
        errors = session.provider(provider_name).cancel_all(
            [TaskHandle(task.key, handle_id) for handle_id, task in handles.items()]
        )
        for handle_id, task in handles.items():
            if handle_id not in errors:
                state.update_task(task.key, status="cancelled", finished_at=time.time())
        if errors:
            handle_id, exc = next(iter(errors.items()))
            raise DiagnosticError(
                error(
                    "Failed to stop a task",
                    f"Task {handles[handle_id].key} of {Address(name)} could not be "
                    f"stopped: {exc}. Nothing was deleted; run the command again.",
                )
            ) from exc
    for task in state.all_tasks(name):
        with contextlib.suppress(Exception):
            handle = TaskHandle(task.key, task.handle_id or task.key)
            session.provider(task.provider).cleanup(handle)
    storage_call(lambda: delete_stored(state, models, name))
    state.delete_experiment(name)
