"""What happened to running trials: polling, reading metrics, pruning, ending trials.

A task that ended is read to the end of its output before it is judged; a trial's end is
recorded (with its model stored) before its task is cancelled, and a trial whose model
cannot be stored yet stays active so a later pass tries again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tunectl.addrs import Address
from tunectl.diags import DiagnosticError, error
from tunectl.durations import format_duration
from tunectl.engine.experiment_run import Active, ExperimentRun
from tunectl.engine.metrics import (
    REPORT_PREFIX,
    EventLinesParser,
    JsonLinesParser,
    Sample,
    TableRowsParser,
)
from tunectl.engine.notify import notify
from tunectl.engine.objective import combine, metric_values, objective_values, source_name
from tunectl.engine.stored_events import read_stored_events
from tunectl.engine.stored_metrics import read_stored
from tunectl.providers.base import (
    LogChunk,
    MetricSource,
    MetricsRef,
    ProviderError,
    TaskState,
    TaskStatus,
)
from tunectl.s3 import is_object_uri
from tunectl.states import MetricRecord
from tunectl.status import TaskRecordStatus, TrialStatus

# A trial whose task the provider lost (an infrastructure failure, not the trial's own) is
# relaunched this many times without counting toward its `retries`.
INFRA_RELAUNCHES = 3
# A task that ended is read to the end of its output before it is judged; this bounds the
# reads (each bounded by the provider) in case something it left behind keeps writing.
DRAIN_READS = 10_000
# Skipped-line warnings shown per task attempt; `tunectl logs` marks every skipped line.
WARNINGS_SHOWN = 5


def _source(key: str, parser: JsonLinesParser) -> MetricsRef:
    """What `Active.files` names: a metrics file's path, or a `metrics "table"` query
    (read with a `TableRowsParser`), whose cursor is kept under its text."""
    if isinstance(parser, TableRowsParser):
        return MetricsRef(MetricSource.TABLE, key)
    if isinstance(parser, EventLinesParser):
        return MetricsRef(MetricSource.EVENTS, key)
    return MetricsRef(MetricSource.FILE, key)


class Outcomes(ExperimentRun):
    """Taking in what tasks did and ending trials (a part of `Runner`)."""

    def _poll(self) -> dict[str, TaskStatus]:
        handles = [a.handle for a in self.active.values()]
        try:
            return self.provider.poll(handles)
        except ProviderError as exc:
            self.event("warn", self.exp.name, f"could not poll tasks: {exc}")
            return {}

    def _read_metrics(self, active: Active, to_end: bool = False) -> None:
        """Take in what the task reported since the last read: one bounded read of its
        output and of each metrics file, or with `to_end` reads until nothing is left.

        Each read is recorded (samples and cursors, in one transaction) before the next,
        so memory stays bounded however much the task printed.
        """
        for _ in range(DRAIN_READS if to_end else 1):
            if not self._read_once(active) or active.trial.number not in self.active:
                return
        if to_end:
            self.event(
                "warn",
                self.exp.name,
                f"trial {active.trial.number}: its output still grows after its task ended; "
                f"stopped reading after {DRAIN_READS} reads",
            )

    def _read_once(self, active: Active) -> bool:
        """One read; True when it moved a cursor (there may be more to read)."""
        task = active.task
        cursors = dict(task.file_cursors)
        try:
            # Every read first, then parsing: a failed read must not feed a parser twice.
            read = self.provider.read_metrics
            chunk = read(active.handle, MetricsRef(MetricSource.STDOUT), task.log_cursor)
            files = [
                (
                    path,
                    self._read_stored(path, parser, cursors)
                    if is_object_uri(path)
                    else read(active.handle, _source(path, parser), cursors.get(path, 0)),
                )
                for path, parser in active.files.items()
            ]
        except ProviderError as exc:
            self.event(
                "warn", self.exp.name, f"trial {active.trial.number}: cannot read output: {exc}"
            )
            return False
        whole = chunk.lines[:-1] if chunk.partial else chunk.lines
        active.tail.extend(line for line in whole if not line.startswith(REPORT_PREFIX))
        samples = active.parser.feed(chunk.lines, chunk.partial)
        warnings = active.parser.take_warnings()
        for path, fchunk in files:
            parser = active.files[path]
            samples.extend(parser.feed(fchunk.lines, fchunk.partial))
            warnings.extend(f"{path}: {w}" for w in parser.take_warnings())
            cursors[path] = fchunk.cursor
        if self.exp.objective.sources_reduce is not None:  # each task is a metric source
            samples = [replace(s, name=source_name(task.task_name, s.name)) for s in samples]
        self._warn_skipped(active, warnings)
        moved = chunk.cursor != task.log_cursor or cursors != task.file_cursors
        if not moved and not samples:
            return False
        bad = next((s for s in samples if not math.isfinite(s.value)), None)
        if bad is not None:
            samples = samples[: samples.index(bad)]
        now = self.clock()
        records = [
            MetricRecord(
                self.exp.name, active.trial.number, s.name, s.step, s.value, now, self.generation
            )
            for s in samples
        ]
        with self.state.transaction():
            if records:
                self.state.add_metrics(records)
            self.state.update_task(task.key, log_cursor=chunk.cursor, file_cursors=cursors)
        task.log_cursor = chunk.cursor
        task.file_cursors = cursors
        self.changes += 1
        for s in samples:
            active.series.setdefault(s.name, []).append((s.step, s.value))
        if bad is not None:
            self._end_trial(active, TrialStatus.FAILED, message=_non_finite(bad), cancel=True)
            return False
        if samples:
            self._maybe_prune(active)
        return moved

    def _read_stored(self, path: str, parser: JsonLinesParser, cursors: dict) -> LogChunk:
        """A metrics file or event directory in storage, read by tunectl itself."""
        if isinstance(parser, EventLinesParser):
            return read_stored_events(self._object_store(), path, cursors)
        return read_stored(self._object_store(), path, cursors)

    def _warn_skipped(self, active: Active, warnings: Sequence[str]) -> None:
        number = active.trial.number
        for text in warnings:
            active.warned += 1
            if active.warned <= WARNINGS_SHOWN:
                self.event("warn", self.exp.name, f"trial {number}: {text}")
            elif active.warned == WARNINGS_SHOWN + 1:
                self.event(
                    "warn",
                    self.exp.name,
                    f"trial {number}: more malformed lines skipped; `tunectl logs "
                    f"{Address(self.exp.name, number)}` marks each skipped report line",
                )

    def _maybe_prune(self, active: Active) -> None:
        if self.exp.early_stopping.name == "none":
            return
        _, curve = combine(active.series, self.exp.objective)
        new = [(step, value) for step, value in curve if step > active.reported_step]
        if not new:
            return
        search = self._search_engine()
        for step, value in new:
            active.reported_step = step
            if search.report(active.trial.number, step, value):
                self._end_trial(
                    active,
                    TrialStatus.PRUNED,
                    value=value,
                    message=f"pruned at step {step}",
                    cancel=True,
                )
                return

    def _task_ended(self, active: Active, status: TaskStatus) -> None:
        trial, task = active.trial, active.task
        self.changes += 1
        task_status = TaskRecordStatus(status.state.value)
        with self.state.transaction():
            self.state.update_task(
                task.key,
                status=task_status,
                exit_code=status.exit_code,
                finished_at=self.clock(),
                message=status.message,
            )
        if status.state is TaskState.SUCCEEDED:
            if task.task_index + 1 < len(self.exp.trial.tasks):
                trial.task_index += 1
                self.state.update_trial(self.exp.name, trial.number, task_index=trial.task_index)
                del self.active[trial.number]
                self._submit(trial, active.series)
                return
            value, _ = combine(active.series, self.exp.objective)
            values = objective_values(active.series, self.exp.objective)
            if value is None and values is None:
                self._end_trial(active, TrialStatus.FAILED, message=self._no_value(active))
            else:
                self._end_trial(active, TrialStatus.COMPLETE, value=value, values=values)
            return
        what = status.message or f"task {task.task_name} {task_status.value}"
        if status.exit_code not in (None, 0) and not status.message:
            what = f"task {task.task_name} exited with code {status.exit_code}"
        lost = sum(
            1
            for t in self.state.tasks_for_trial(self.exp.name, trial.number)
            if t.status == TaskRecordStatus.LOST
        )
        own_failures = trial.attempt - lost + (1 if status.state is TaskState.LOST else 0)
        infra = status.state is TaskState.LOST and lost <= INFRA_RELAUNCHES
        if infra or own_failures < self.exp.trial.retries:
            trial.attempt += 1
            why = "infrastructure failure" if infra else "retry"
            self.event(
                "retry",
                self.exp.name,
                f"trial {trial.number}: {what}; relaunching ({why}, attempt {trial.attempt + 1})",
            )
            self.state.update_trial(
                self.exp.name, trial.number, attempt=trial.attempt, message=what
            )
            del self.active[trial.number]
            self._submit(trial, active.series)
            return
        self._end_trial(active, TrialStatus.FAILED, message=what)

    def _no_value(self, active: Active) -> str:
        objective = self.exp.objective
        names = ", ".join(objective.metric_names)
        if (
            objective.metrics
            and objective.reduce != "final"
            and all(name in active.series for name in names.split(", "))
        ):
            return (
                f"the trial never reported {names} at the same step; a weighted objective "
                f'with reduce = "{objective.reduce}" combines the metrics step by step'
            )
        return f"the trial reported no value for {names}"

    def _end_trial(
        self,
        active: Active,
        status: TrialStatus,
        *,
        value: float | None = None,
        values: list[float] | None = None,  # several objectives: one value each
        message: str = "",
        cancel: bool = False,
    ) -> None:
        trial = active.trial
        now = self.clock()
        finals = metric_values(active.series, self.exp.objective)
        model_uri = None
        stored: list[tuple[str, int]] = []
        try:
            if status == TrialStatus.COMPLETE:
                model_uri, stored = self.models.finish(self.place, trial.number)
            else:  # what a pruned or failed trial wrote is the state's to delete, too
                stored = self.models.record(self.place, trial.number)
        except Exception as exc:
            from tunectl.s3 import StorageError

            if not isinstance(exc, StorageError):
                raise
            # The model stays staged and the trial active: the next pass sees its task
            # ended again and retries the upload (passes are spaced out while nothing
            # changes). Nothing is recorded as done before the model is safe. Past the
            # store's retry_window, apply stops cleanly; the next apply tries again.
            first = self._store_failing.setdefault(trial.number, now)
            window = getattr(self.models, "retry_window", None)
            if window is not None and now - first >= window:
                raise DiagnosticError(
                    error(
                        "Model storage unavailable",
                        f"{Address(self.exp.name)}: the model of trial {trial.number} could "
                        f"not be stored for {format_duration(window)} (retry_window): {exc}. "
                        "It stays staged, and the trial is finished by the next apply once "
                        'the store answers; raise retry_window in storage "s3" to wait longer.',
                    )
                ) from None
            if now == first:
                self.event("warn", self.exp.name, f"trial {trial.number}: {exc}; will retry")
            return
        self._store_failing.pop(trial.number, None)
        fields: dict[str, Any] = {}
        if self._search is not None:  # else it is built later from the state, with this result
            self._search.tell(trial.number, status, value, values)
            # Pruners such as hyperband keep their bookkeeping on the trial: keep it too.
            fields["system_attrs"] = self._search.system_attrs(trial.number)
        with self.state.transaction():
            self.state.update_trial(
                self.exp.name,
                trial.number,
                status=status,
                value=value,
                values=finals,
                finished_at=now,
                message=message,
                model_uri=model_uri,
                last_step=active.reported_step if active.reported_step >= 0 else None,
                objective_values=values or [],
                **fields,
            )
            if stored:
                self.state.record_model_objects(
                    self.exp.name, self.generation, trial.number, stored
                )
        if cancel:
            self._cancel_task(active.task)
        trial.status, trial.value, trial.finished_at = status, value, now
        trial.objective_values = values or []
        del self.active[trial.number]
        notify(self.notifier, self.exp, self.ended, trial, message)
        self.ended.append(trial)
        text = f"trial {trial.number} {status.value}"
        if value is not None:
            text += f": {value:g}"
        elif values:
            pairs = zip(self.exp.objective.metric_names, values, strict=False)
            text += ": " + ", ".join(f"{name} {v:g}" for name, v in pairs)
        if message and status != TrialStatus.COMPLETE:
            text += f" ({message})"
        output = list(active.tail) if status == TrialStatus.FAILED else []
        self.event(status.value, self.exp.name, text, trial.number, output)


def _non_finite(sample: Sample) -> str:
    """Why a trial that reported NaN or an infinity failed (Optuna fails it too)."""
    value = "NaN" if math.isnan(sample.value) else "an infinite value"
    at = f" at step {sample.step}" if sample.step is not None else ""
    return f'metric "{sample.name}" reported {value}{at}; a NaN or infinite value fails the trial'
