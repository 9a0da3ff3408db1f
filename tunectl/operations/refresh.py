"""Refresh: poll every active task and record what changed outside of tunectl (drift)."""

from __future__ import annotations

from typing import Any

from tunectl.addrs import Address
from tunectl.diags import DiagnosticError, error
from tunectl.engine.hosts import elsewhere
from tunectl.operations.session import Session
from tunectl.plans.change import Drift
from tunectl.providers.base import ProviderError, TaskHandle, TaskState
from tunectl.states import State


def refresh(session: Session, state: State) -> list[Drift]:
    """Poll every active task; record what changed outside of tunectl."""
    drift: list[Drift] = []
    by_provider: dict[str, list[Any]] = {}
    for task in state.active_tasks():
        if elsewhere(task.host, session.state_path().parent):
            continue  # only its own host can see it; apply says so
        by_provider.setdefault(task.provider, []).append(task)
    for name, tasks in by_provider.items():
        provider = session.provider(name)
        handles = [
            TaskHandle(t.key, t.handle_id or t.key) for t in tasks if t.status != "submitting"
        ]
        try:
            statuses = provider.poll(handles) if handles else {}
        except ProviderError as exc:
            raise DiagnosticError(
                error("Failed to refresh", f"The {name} provider could not be reached: {exc}")
            ) from exc
        for task in tasks:
            status = statuses.get(task.handle_id or task.key)
            if status is None or not status.state.terminal:
                continue
            before = task.status.value
            state.update_task(
                task.key,
                status=status.state.value,
                exit_code=status.exit_code,
                message=status.message,
            )
            trial_status = {TaskState.SUCCEEDED: "succeeded"}.get(status.state, status.state.value)
            detail = status.message
            if status.state is TaskState.FAILED and status.exit_code is not None and not detail:
                detail = f"task {task.task_name} exited with code {status.exit_code}"
            drift.append(
                Drift(
                    str(Address(task.experiment, task.trial_number)),
                    before,
                    trial_status,
                    detail,
                )
            )
    return drift
