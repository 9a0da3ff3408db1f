"""Submission of trials' tasks, and the backoff of submissions that fail.

A submission is one provider call per pass: the provider retries its own transient faults
(`tunectl.retry`), so a submission that still fails is not retried here but left
`submitting` and taken up again on a later pass (`waiting`, with exponential backoff),
while other trials and experiments go on; the loop never sleeps for it. After
`SUBMIT_ROUNDS` failed passes the trial fails. A permanent refusal stops apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunectl.addrs import Address
from tunectl.diags import DiagnosticError, error
from tunectl.engine.experiment_run import ExperimentRun
from tunectl.engine.hosts import home
from tunectl.engine.pbt import is_pbt, next_slot
from tunectl.engine.pbt import lineage as pbt_lineage
from tunectl.engine.stored_events import before_events
from tunectl.engine.stored_metrics import before
from tunectl.engine.templates import render_templates
from tunectl.engine.trials import (
    build_request,
    metrics_files,
    metrics_logdirs,
    task_key,
    trial_id,
)
from tunectl.providers.base import ProviderError, TaskHandle
from tunectl.s3 import is_object_uri
from tunectl.states import TaskRecord, TrialRecord
from tunectl.status import TaskRecordStatus, TrialStatus

# A submission that failed waits, with exponential backoff, for a later pass; other trials
# and experiments go on meanwhile.
SUBMIT_BACKOFF_MAX = 60.0
SUBMIT_ROUNDS = 6  # then the trial fails (about two minutes of backoff in all)


class Submission(ExperimentRun):
    """Launching trials and submitting their tasks (a part of `Runner`)."""

    def next_retry(self) -> float | None:
        """When the earliest waiting submission is due (clock time), or None."""
        return min((at for _, _, at in self.waiting.values()), default=None)

    def _launch(self) -> bool:
        number = self.state.next_trial_number(self.exp.name)
        lineage: dict[str, Any] = {}
        fixed = None
        if is_pbt(self.exp):
            slot = next_slot(self.state, self.exp)
            if slot is None:
                return False  # the round's last trials still run
            lineage, fixed = pbt_lineage(slot), slot.internal
        suggestion = self._search_engine().ask(number, fixed)
        trial = TrialRecord(
            experiment=self.exp.name,
            number=number,
            id=trial_id(self.exp.name, self.generation, number),
            params=suggestion.params,
            internal=suggestion.internal,
            system_attrs=suggestion.system_attrs,
            status=TrialStatus.PENDING,
            created_at=self.clock(),
            generation=self.generation,
            **lineage,
        )
        self.state.add_trial(trial)
        self.asked += 1
        return self._submit(trial)

    def _submit(self, trial: TrialRecord, series: dict | None = None) -> bool:
        # A key is derived once, when its task is first recorded, and read back after:
        # tasks recorded by an older tunectl keep the key their provider knows them by.
        recorded = [
            t.key
            for t in self.state.tasks_for_trial(self.exp.name, trial.number)
            if t.task_index == trial.task_index and t.attempt == trial.attempt
        ]
        key = (
            recorded[-1]
            if recorded
            else task_key(
                self.state.lineage,
                self.exp.name,
                self.generation,
                trial.number,
                trial.task_index,
                trial.attempt,
            )
        )
        task_spec = self.exp.trial.tasks[trial.task_index]
        task = TaskRecord(
            key=key,
            experiment=self.exp.name,
            trial_number=trial.number,
            task_index=trial.task_index,
            task_name=task_spec.name,
            attempt=trial.attempt,
            provider=self.provider.name,
            status=TaskRecordStatus.SUBMITTING,
            submitted_at=self.clock(),
            generation=self.generation,
            host=home(self.provider.state_dir) if self.provider.capabilities.host_local else None,
        )
        existing = self.state.get_task(key)
        if existing is None:
            # A metrics object in storage is read from its size now: what it holds before
            # the task starts is not this task's.
            placeholders = self._placeholders(trial)
            for uri in metrics_files(task_spec, placeholders):
                if is_object_uri(uri):
                    task.file_cursors.update(before(self._object_store(), uri))
            for logdir in metrics_logdirs(task_spec, placeholders):
                if is_object_uri(logdir):
                    task.file_cursors.update(before_events(self._object_store(), logdir))
            self.state.add_task(task)
        if self.before_launch is not None and self.provider.capabilities.host_local:
            self.before_launch()
        recorded_at = (existing or task).submitted_at
        handle = self._call_submit(trial, trial.task_index, key, recorded_at)
        if handle is None:
            self._wait_to_submit(trial, series)
            return False
        self._submit_failures.pop(trial.number, None)
        now = self.clock()
        with self.state.transaction():
            self.state.update_task(key, handle_id=handle.id, status=TaskRecordStatus.PENDING)
            self.state.update_trial(
                self.exp.name,
                trial.number,
                status=TrialStatus.RUNNING,
                started_at=trial.started_at or now,
            )
        trial.status = TrialStatus.RUNNING
        trial.started_at = trial.started_at or now
        task.handle_id, task.status = handle.id, TaskRecordStatus.PENDING
        active = self._active(trial, task, handle)
        if series:
            active.series = series
        self.active[trial.number] = active
        if trial.task_index == 0 and trial.attempt == 0:
            self.event(
                "start", self.exp.name, f"trial {trial.number} started {_params_text(trial.params)}"
            )
        return True

    def _call_submit(
        self, trial: TrialRecord, task_index: int, key: str, recorded_at: float | None
    ) -> TaskHandle | None:
        model_dir = self._model_dir(trial)
        placeholders = self._placeholders(trial, self._parent_model_dir(trial))
        request = build_request(
            self.exp,
            self.exp.trial.tasks[task_index],
            key=key,
            placeholders=placeholders,
            config_dir=self.config_dir,
            model_dir=model_dir,
            trial_number=trial.number,
            local_files=self.provider.capabilities.local_files,
            bodies=self.provider.task_bodies,
            recorded_at=recorded_at,
        )
        if task_index == 0 and self.exp.trial.templates:
            workdir = Path(request.workdir or self.config_dir)
            render_templates(self.exp.trial.templates, placeholders, workdir)
        try:
            # One call: the provider has retried its transient faults already. Safe to
            # repeat on a later pass: submission is idempotent on the key.
            return self.provider.submit(request)
        except ProviderError as exc:
            if exc.permanent:
                # Every trial would fail the same way: stop here, with the provider's words.
                # The trial stays recorded; the next apply submits it again.
                raise DiagnosticError(
                    error(
                        "Provider refused the trial",
                        f"{Address(self.exp.name, trial.number)}: {exc}. Fix the "
                        "cause (credentials, permissions, trial settings), then run apply again.",
                    )
                ) from None
            # Stays `submitting`: a later pass (or apply) submits the same key again.
            self.event("warn", self.exp.name, f"trial {trial.number}: submission failed: {exc}")
            self._submit_errors[trial.number] = str(exc)
        return None

    def _wait_to_submit(self, trial: TrialRecord, series: dict | None) -> None:
        failures = self._submit_failures.get(trial.number, 0) + 1
        self._submit_failures[trial.number] = failures
        if failures > SUBMIT_ROUNDS:
            self.waiting[trial.number] = (trial, series, 0.0)
            error = self._submit_errors.get(trial.number, "unknown error")
            self._end_unsubmitted(
                trial,
                f"could not be submitted after {SUBMIT_ROUNDS} rounds: {error}",
                TrialStatus.FAILED,
            )
            return
        delay = min(SUBMIT_BACKOFF_MAX, 2.0**failures)
        self.waiting[trial.number] = (trial, series, self.clock() + delay)

    def _end_unsubmitted(
        self, trial: TrialRecord, message: str, status: TrialStatus = TrialStatus.PRUNED
    ) -> None:
        """End a trial whose task was never confirmed submitted."""
        del self.waiting[trial.number]
        for task in self.state.tasks_for_trial(self.exp.name, trial.number):
            if task.status == TaskRecordStatus.SUBMITTING:
                self._cancel_task(task)  # in case the submission did reach the provider
        now = self.clock()
        self.state.update_trial(
            self.exp.name, trial.number, status=status, finished_at=now, message=message
        )
        trial.status, trial.finished_at = status, now
        self.ended.append(trial)
        if self._search is not None:
            self._search.tell(trial.number, status, None)
        self.event(status.value, self.exp.name, f"trial {trial.number} {status.value} ({message})")


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
