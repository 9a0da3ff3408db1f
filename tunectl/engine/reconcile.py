"""The apply loop: drive every experiment's trials to completion, one checkpoint per step.

Order of writes (what makes `kill -9` at any moment safe):

1. a trial is recorded with its parameters before anything is submitted;
2. its task is recorded as `submitting`, with a key derived from (lineage, experiment,
   generation, trial, task, attempt), before the provider is called;
3. the provider's `submit` is idempotent on that key, so a restarted apply simply submits
   every `submitting` task again and gets the existing one back;
4. a pruned or stopped trial is marked in the state before its task is cancelled; on
   restart, active tasks of ended trials are cancelled (nothing is left unowned).

The search engine (Optuna) is rebuilt from the state, never the other way round.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from tunectl.config.model import Experiment
from tunectl.diags import DiagnosticError, error
from tunectl.durations import format_duration
from tunectl.engine.hosts import elsewhere, home
from tunectl.engine.metrics import JsonLinesParser, MetricsParser, Sample
from tunectl.engine.models import Generation, ModelStore, delete_stored, kept_trials
from tunectl.engine.objective import combine, metric_values
from tunectl.engine.trials import Placeholders, build_request, metrics_files, task_key, trial_id
from tunectl.providers.base import (
    MetricSource,
    MetricsRef,
    Provider,
    ProviderError,
    TaskHandle,
    TaskState,
    TaskStatus,
)
from tunectl.search.stopping import REASON_TEXT, Progress, final_status, stop_reason, time_used
from tunectl.states import ExperimentRecord, MetricRecord, State, TaskRecord, TrialRecord

ENDED = ("complete", "pruned", "failed")
# A trial whose task the provider lost (an infrastructure failure, not the trial's own) is
# relaunched this many times without counting toward its `retries`.
INFRA_RELAUNCHES = 3
# Submission: a few quick tries (tenacity), then the trial waits, with exponential backoff,
# for a later pass; other trials and experiments go on meanwhile.
SUBMIT_TRIES = 3
SUBMIT_BACKOFF_MAX = 60.0
SUBMIT_ROUNDS = 6  # then the trial fails (about two minutes of backoff in all)
# Stop reasons after which trials still running are cancelled (the experiment is over).
CANCEL_ON = ("goal", "max_duration", "max_failed_trials")
# A task that ended is read to the end of its output before it is judged; this bounds the
# reads (each bounded by the provider) in case something it left behind keeps writing.
DRAIN_READS = 10_000
# Skipped-line warnings shown per task attempt; `tunectl logs` marks every skipped line.
WARNINGS_SHOWN = 5

Event = Callable[[str, str, str], None]  # (kind, experiment, message)


@dataclass
class Active:
    """A trial whose current task is submitted and not yet seen to end."""

    trial: TrialRecord
    task: TaskRecord
    handle: TaskHandle
    parser: MetricsParser
    series: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    reported_step: int = -1
    # The task's metrics files (resolved for this trial), each with its own parser.
    files: dict[str, JsonLinesParser] = field(default_factory=dict)
    warned: int = 0  # skipped-line warnings shown so far


class Runner:
    """Reconciles one experiment. Not thread-safe; one instance per apply."""

    def __init__(
        self,
        exp: Experiment,
        state: State,
        provider: Provider,
        models: ModelStore,
        config_dir: Path,
        space_size: int | None,
        event: Event,
        clock: Callable[[], float] = time.time,
        before_launch: Callable[[], None] | None = None,
    ) -> None:
        """`before_launch` is called after a host-local task is recorded and before it is
        launched: with a shared (S3) state it saves the record there first, so an apply in
        another working directory or on another machine never launches the trial again
        after this one is killed (write-ahead; other providers find their tasks by key)."""
        self.exp = exp
        self.before_launch = before_launch
        self.state = state
        self.provider = provider
        self.models = models
        self.config_dir = config_dir
        self.space_size = space_size
        self.event = event
        self.clock = clock
        record = state.get_experiment(exp.name)
        assert record is not None, "the experiment must be in the state before it runs"
        self.record: ExperimentRecord = record
        self.generation = record.generation
        self.place = Generation.of(state, exp.name, record.generation)
        self.active: dict[int, Active] = {}
        # Trials whose task runs on another host (host-local providers): number -> host.
        # Never polled, relaunched or counted as lost here; they hold their slot.
        self.elsewhere: dict[int, str] = {}
        # Trials whose task could not be submitted yet: number -> (trial, series, retry at).
        self.waiting: dict[int, tuple[TrialRecord, dict | None, float]] = {}
        self._submit_failures: dict[int, int] = {}
        # Trials whose model could not be stored yet: number -> when the first try failed.
        self._store_failing: dict[int, float] = {}
        self._submit_errors: dict[int, str] = {}
        self._draining = False  # a stop condition holds: launch nothing new
        self.changes = 0  # grows whenever a pass sees something new (adaptive polling)
        self.ended: list[TrialRecord] = []  # ended trials in number order
        self.asked = 0
        self._search: Any = None
        self.finished = False

    # -- set-up -------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the history and adopt every trial left running by an earlier apply."""
        now = self.clock()
        restart = self.record.status in ("pending", "succeeded", "failed", "stopped")
        if restart:
            # (Re)starting: an update may have lifted a stop condition.
            self.record.status = "running"
            self.record.started_at = self.record.started_at or now
            self.record.finished_at = None
            self.record.stop_reason = ""
        if restart or self.record.clock_since is None:
            # max_duration's clock resumes where the last apply paused it (not from zero).
            self.record.clock_since = self.record.clock_since or now
            self.state.put_experiment(self.record)
        trials = self.state.list_trials(self.exp.name)
        self.asked = len(trials)
        self.ended = [t for t in trials if t.status in ENDED]
        for trial in trials:
            if trial.status in ENDED:
                for task in self.state.tasks_for_trial(self.exp.name, trial.number):
                    # Another host's task is stopped by that host's apply, which sees the
                    # trial ended.
                    if task.status in ("submitting", "pending", "running") and not elsewhere(
                        task.host, self.provider.state_dir
                    ):
                        self._cancel_task(task)
            else:
                self._resume(trial)

    def _search_engine(self) -> Any:
        if self._search is None:
            from tunectl.engine.search import PastTrial, SearchEngine

            history = []
            for trial in self.state.list_trials(self.exp.name):
                curve: list[tuple[int, float]] = []
                if trial.status != "failed":
                    series = self._series(trial.number)
                    _, curve = combine(series, self.exp.objective)
                if trial.status == "pruned" and trial.last_step is not None:
                    # What the pruner saw: values read after the pruning step are not.
                    curve = [(s, v) for s, v in curve if s <= trial.last_step]
                history.append(
                    PastTrial(
                        number=trial.number,
                        state=trial.status,
                        internal=trial.internal,
                        value=trial.value,
                        intermediate=curve,
                        system_attrs=trial.system_attrs,
                    )
                )
            self._search = SearchEngine(self.exp, history)
        return self._search

    def _series(self, number: int) -> dict[str, list[tuple[int | None, float]]]:
        series: dict[str, list[tuple[int | None, float]]] = {}
        for m in self.state.metrics_for(self.exp.name, number):
            series.setdefault(m.name, []).append((m.step, m.value))
        return series

    def _parser(self, task_index: int) -> MetricsParser:
        task = self.exp.trial.tasks[task_index]
        return MetricsParser(task.metrics, self.exp.objective.metric_names)

    def _active(self, trial: TrialRecord, task: TaskRecord, handle: TaskHandle) -> Active:
        active = Active(trial, task, handle, self._parser(task.task_index))
        spec = self.exp.trial.tasks[task.task_index]
        readable = self.provider.capabilities.metric_sources
        if MetricSource.FILE in readable and any(m.kind == "json" for m in spec.metrics):
            for path in metrics_files(spec, self._placeholders(trial)):
                active.files[path] = JsonLinesParser()
        return active

    def _resume(self, trial: TrialRecord) -> None:
        tasks = [
            t
            for t in self.state.tasks_for_trial(self.exp.name, trial.number)
            if t.task_index == trial.task_index and t.attempt == trial.attempt
        ]
        if not tasks:
            self._submit(trial)
            return
        task = tasks[-1]
        if elsewhere(task.host, self.provider.state_dir):
            assert task.host is not None
            self.elsewhere[trial.number] = task.host
            self.event(
                "elsewhere",
                self.exp.name,
                f"Warning: trial {trial.number} runs on host {task.host}, not here "
                f"({home(self.provider.state_dir)}): run `tunectl apply` there (that host, "
                "that directory) to follow it, or `tunectl destroy` there to stop it; "
                f"`tunectl state rm experiment.{self.exp.name}` forgets it without stopping it.",
            )
            return
        active = self._active(trial, task, TaskHandle(task.key, task.handle_id or task.key))
        active.series = self._series(trial.number)
        # Pattern matches number their steps by count: continue the count.
        active.parser.continue_steps(
            {
                name: max((s for s, _ in points if s is not None), default=0)
                for name, points in active.series.items()
            }
        )
        if active.series:
            _, curve = combine(active.series, self.exp.objective)
            active.reported_step = curve[-1][0] if curve else -1
        if task.status == "submitting":
            handle = self._call_submit(trial, task.task_index, task.key)
            if handle is None:
                self._wait_to_submit(trial, active.series)
                return
            with self.state.transaction():
                self.state.update_task(task.key, handle_id=handle.id, status="pending")
            active.handle = handle
        self.active[trial.number] = active
        self.event("adopt", self.exp.name, f"trial {trial.number} adopted ({task.status})")

    # -- one pass -----------------------------------------------------------------------

    def progress(self) -> Progress:
        counts = {s: 0 for s in ENDED}
        best_value: float | None = None
        best_index = -1
        for i, t in enumerate(self.ended):
            counts[t.status] += 1
            if (
                t.status == "complete"
                and t.value is not None
                and (best_value is None or self._better(t.value, best_value))
            ):
                best_value, best_index = t.value, i
        return Progress(
            complete=counts["complete"],
            pruned=counts["pruned"],
            failed=counts["failed"],
            running=len(self.active) + len(self.waiting) + len(self.elsewhere),
            best_value=best_value,
            since_best=len(self.ended) - 1 - best_index if best_index >= 0 else 0,
            elapsed=time_used(self.record.elapsed, self.record.clock_since, self.clock()),
            asked=self.asked,
        )

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.exp.objective.direction == "maximize" else a < b

    def refresh(self) -> bool:
        """Take in what happened to running trials, then check the stop conditions.

        Returns True when the experiment may launch trials now.
        """
        if self.finished:
            return False
        if self.active:
            statuses = self._poll()
            for number in sorted(self.active):
                active = self.active[number]
                status = statuses.get(active.handle.id)
                # A task that ended is read to the end before it is judged (a metric may
                # follow any amount of output); a running one a bounded chunk per pass.
                self._read_metrics(active, to_end=status is not None and status.state.terminal)
                if number not in self.active:
                    continue  # pruned or failed while reading
                if status is not None and status.state.terminal:
                    self._task_ended(active, status)
                elif (
                    status is not None
                    and status.state is TaskState.RUNNING
                    and active.task.status != "running"
                ):
                    self.state.update_task(active.task.key, status="running")
                    active.task.status = "running"
                    self.changes += 1
        progress = self.progress()
        reason = stop_reason(self.exp, progress, self.space_size)
        if reason is not None:
            if reason in CANCEL_ON:
                message = f"stopped: {REASON_TEXT[reason]}"
                for active in list(self.active.values()):
                    self._end_trial(active, "pruned", message=message, cancel=True)
                for trial, _, _ in list(self.waiting.values()):
                    self._end_unsubmitted(trial, message)
            if not self.active and not self.waiting and not self.elsewhere:
                self._finish(reason, self.progress())
            # No new trials; trials already asked for still get submitted.
            self._draining = True
            return bool(self.waiting)
        self._draining = False
        return True

    def launch(self, capacity: int | None = None) -> int:
        """Launch trials up to `max_concurrent`, the budget and `capacity` free slots."""
        if self.finished:
            return 0
        launched = 0
        now = self.clock()
        for number, (trial, series, retry_at) in sorted(self.waiting.items()):
            if capacity is not None and launched >= capacity:
                return launched
            if retry_at <= now and len(self.active) < self.exp.max_concurrent:
                del self.waiting[number]
                if self._submit(trial, series):
                    launched += 1
        if self._draining:
            return launched
        if capacity is not None:
            capacity -= launched
        progress = self.progress()
        busy = len(self.active) + len(self.waiting) + len(self.elsewhere)
        room = self.exp.max_concurrent - busy
        if capacity is not None:
            room = min(room, capacity)
        left = self.exp.max_trials - progress.done - busy
        if self.space_size is not None:
            left = min(left, self.space_size - self.asked)
        for _ in range(max(0, min(room, left))):
            if not self._launch():
                break
            launched += 1
        return launched

    @property
    def stranded(self) -> bool:
        """Nothing left to do on this host: what still runs, runs on other hosts."""
        return bool(self.elsewhere) and not self.active and not self.waiting

    def next_retry(self) -> float | None:
        """When the earliest waiting submission is due (clock time), or None."""
        return min((at for _, _, at in self.waiting.values()), default=None)

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
                    read(active.handle, MetricsRef(MetricSource.FILE, path), cursors.get(path, 0)),
                )
                for path in active.files
            ]
        except ProviderError as exc:
            self.event(
                "warn", self.exp.name, f"trial {active.trial.number}: cannot read output: {exc}"
            )
            return False
        samples = active.parser.feed(chunk.lines, chunk.partial)
        warnings = active.parser.take_warnings()
        for path, fchunk in files:
            parser = active.files[path]
            samples.extend(parser.feed(fchunk.lines, fchunk.partial))
            warnings.extend(f"{path}: {w}" for w in parser.take_warnings())
            cursors[path] = fchunk.cursor
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
            self._end_trial(active, "failed", message=_non_finite(bad), cancel=True)
            return False
        if samples:
            self._maybe_prune(active)
        return moved

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
                    f"experiment.{self.exp.name}.trial[{number}]` marks each skipped report line",
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
                    active, "pruned", value=value, message=f"pruned at step {step}", cancel=True
                )
                return

    def _task_ended(self, active: Active, status: TaskStatus) -> None:
        trial, task = active.trial, active.task
        self.changes += 1
        task_status = status.state.value
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
            if value is None:
                self._end_trial(active, "failed", message=self._no_value(active))
            else:
                self._end_trial(active, "complete", value=value)
            return
        what = status.message or f"task {task.task_name} {task_status}"
        if status.exit_code not in (None, 0) and not status.message:
            what = f"task {task.task_name} exited with code {status.exit_code}"
        lost = sum(
            1 for t in self.state.tasks_for_trial(self.exp.name, trial.number) if t.status == "lost"
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
        self._end_trial(active, "failed", message=what)

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
        status: str,
        *,
        value: float | None = None,
        message: str = "",
        cancel: bool = False,
    ) -> None:
        trial = active.trial
        now = self.clock()
        finals = metric_values(active.series, self.exp.objective)
        model_uri = None
        stored: list[tuple[str, int]] = []
        try:
            if status == "complete":
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
                        f"experiment.{self.exp.name}: the model of trial {trial.number} could "
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
            self._search.tell(trial.number, status, value)
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
                **fields,
            )
            if stored:
                self.state.record_model_objects(
                    self.exp.name, self.generation, trial.number, stored
                )
        if cancel:
            self._cancel_task(active.task)
        trial.status, trial.value, trial.finished_at = status, value, now
        del self.active[trial.number]
        self.ended.append(trial)
        text = f"trial {trial.number} {status}"
        if value is not None:
            text += f": {value:g}"
        if message and status != "complete":
            text += f" ({message})"
        self.event(status, self.exp.name, text)

    def _cancel_task(self, task: TaskRecord) -> None:
        try:
            self.provider.cancel(TaskHandle(task.key, task.handle_id or task.key))
        except ProviderError as exc:
            self.event("warn", self.exp.name, f"could not cancel task {task.key}: {exc}")
            return
        self.state.update_task(task.key, status="cancelled", finished_at=self.clock())

    def _launch(self) -> bool:
        number = self.state.next_trial_number(self.exp.name)
        suggestion = self._search_engine().ask(number)
        trial = TrialRecord(
            experiment=self.exp.name,
            number=number,
            id=trial_id(self.exp.name, self.generation, number),
            params=suggestion.params,
            internal=suggestion.internal,
            system_attrs=suggestion.system_attrs,
            status="pending",
            created_at=self.clock(),
            generation=self.generation,
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
            status="submitting",
            submitted_at=self.clock(),
            generation=self.generation,
            host=home(self.provider.state_dir) if self.provider.capabilities.host_local else None,
        )
        if self.state.get_task(key) is None:
            self.state.add_task(task)
        if self.before_launch is not None and self.provider.capabilities.host_local:
            self.before_launch()
        handle = self._call_submit(trial, trial.task_index, key)
        if handle is None:
            self._wait_to_submit(trial, series)
            return False
        self._submit_failures.pop(trial.number, None)
        now = self.clock()
        with self.state.transaction():
            self.state.update_task(key, handle_id=handle.id, status="pending")
            self.state.update_trial(
                self.exp.name, trial.number, status="running", started_at=trial.started_at or now
            )
        trial.status = "running"
        trial.started_at = trial.started_at or now
        task.handle_id, task.status = handle.id, "pending"
        active = self._active(trial, task, handle)
        if series:
            active.series = series
        self.active[trial.number] = active
        if trial.task_index == 0 and trial.attempt == 0:
            self.event(
                "start", self.exp.name, f"trial {trial.number} started {_params_text(trial.params)}"
            )
        return True

    def _model_dir(self, trial: TrialRecord) -> str:
        if self.provider.capabilities.local_model_dir:
            return str(self.models.staging_dir(self.place, trial.number))
        # The trial runs elsewhere and writes straight to the store (or nowhere).
        return self.models.remote_dir(self.place, trial.number) or ""

    def _placeholders(self, trial: TrialRecord) -> Placeholders:
        return Placeholders(
            self.exp, self.generation, trial.number, trial.params, self._model_dir(trial)
        )

    def _call_submit(self, trial: TrialRecord, task_index: int, key: str) -> TaskHandle | None:
        model_dir = self._model_dir(trial)
        placeholders = Placeholders(
            self.exp, self.generation, trial.number, trial.params, model_dir
        )
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
        )
        try:
            # Safe to repeat: submission is idempotent on the key.
            for attempt in Retrying(
                stop=stop_after_attempt(SUBMIT_TRIES),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                retry=retry_if_exception(
                    lambda e: isinstance(e, ProviderError) and not e.permanent
                ),
                reraise=True,
            ):
                with attempt:
                    return self.provider.submit(request)
        except ProviderError as exc:
            if exc.permanent:
                # Every trial would fail the same way: stop here, with the provider's words.
                # The trial stays recorded; the next apply submits it again.
                raise DiagnosticError(
                    error(
                        "Provider refused the trial",
                        f"experiment.{self.exp.name} trial {trial.number}: {exc}. Fix the "
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
                trial, f"could not be submitted after {SUBMIT_ROUNDS} rounds: {error}", "failed"
            )
            return
        delay = min(SUBMIT_BACKOFF_MAX, 2.0**failures)
        self.waiting[trial.number] = (trial, series, self.clock() + delay)

    def _end_unsubmitted(self, trial: TrialRecord, message: str, status: str = "pruned") -> None:
        """End a trial whose task was never confirmed submitted."""
        del self.waiting[trial.number]
        for task in self.state.tasks_for_trial(self.exp.name, trial.number):
            if task.status == "submitting":
                self._cancel_task(task)  # in case the submission did reach the provider
        now = self.clock()
        self.state.update_trial(
            self.exp.name, trial.number, status=status, finished_at=now, message=message
        )
        trial.status, trial.finished_at = status, now
        self.ended.append(trial)
        if self._search is not None:
            self._search.tell(trial.number, status, None)
        self.event(status, self.exp.name, f"trial {trial.number} {status} ({message})")

    def _retain(self) -> None:
        """Apply the storage's `keep`: delete the models of all but the best trials."""
        sign = -1.0 if self.exp.objective.direction == "maximize" else 1.0
        scored = [
            (sign * t.value, t.number)
            for t in self.ended
            if t.status == "complete" and t.value is not None
        ]
        ranked = [number for _, number in sorted(scored)]
        keep = kept_trials(self.models.keep, ranked)
        if keep is None:
            return
        drop = [
            t.number
            for t in self.state.list_trials(self.exp.name)
            if t.model_uri is not None and t.number not in keep
        ]
        if not drop:
            return
        try:
            delete_stored(self.state, self.models, self.exp.name, drop)
        except Exception as exc:
            from tunectl.s3 import StorageError

            if not isinstance(exc, StorageError):
                raise
            self.event("warn", self.exp.name, f"could not apply keep: {exc}")
            return
        with self.state.transaction():
            for number in drop:
                self.state.update_trial(self.exp.name, number, model_uri=None)
        self.event("keep", self.exp.name, f"deleted the models of {len(drop)} trial(s) (keep)")

    def _finish(self, reason: str, progress: Progress) -> None:
        self._retain()
        status = final_status(reason, progress)
        self.record.status = status
        self.record.stop_reason = reason
        self.record.finished_at = self.clock()
        self._stop_clock()
        self.state.put_experiment(self.record)
        self.finished = True
        self.event("finish", self.exp.name, f"{status}: {REASON_TEXT[reason]}")

    def pause(self) -> None:
        """Called when apply leaves the experiment: with nothing of it running, its clock
        pauses until the next apply; with trials running (`--once`, an interrupt), their
        time keeps counting toward max_duration."""
        if self.finished or self.active or self.waiting or self.record.clock_since is None:
            return
        self._stop_clock()
        self.state.put_experiment(self.record)

    def _stop_clock(self) -> None:
        now = self.clock()
        self.record.elapsed = time_used(self.record.elapsed, self.record.clock_since, now)
        self.record.clock_since = None


def _non_finite(sample: Sample) -> str:
    """Why a trial that reported NaN or an infinity failed (Optuna fails it too)."""
    value = "NaN" if math.isnan(sample.value) else "an infinite value"
    at = f" at step {sample.step}" if sample.step is not None else ""
    return f'metric "{sample.name}" reported {value}{at}; a NaN or infinite value fails the trial'


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class LoopOptions:
    once: bool = False
    tick: float = 0.5  # longest wait between passes while tasks run (metrics latency)
    # Providers that cannot signal changes are polled adaptively: from poll_min, doubling
    # while nothing changes, up to poll_max; back to poll_min as soon as something does.
    poll_min: float = 0.5
    poll_max: float = 10.0


class Reconciler:
    """Runs several experiments side by side until each is done (or `--once`)."""

    def __init__(
        self, runners: Sequence[Runner], options: LoopOptions, should_stop: Callable[[], bool]
    ):
        self.runners = list(runners)
        self.options = options
        self.should_stop = should_stop
        self._interval = options.poll_min

    def run(self) -> None:
        for runner in self.runners:
            runner.prepare()
        try:
            self._loop()
        finally:
            for runner in self.runners:
                runner.pause()

    def _loop(self) -> None:
        while True:
            before = sum(r.changes for r in self.runners)
            stopping = self.should_stop()
            # Everything that ended is taken in before free slots are counted, so a slot
            # freed in this pass is filled in this pass.
            ready = [runner for runner in self.runners if runner.refresh()]
            capacity = self._capacity()
            for runner in ready if not stopping else ():
                cap = capacity.get(id(runner.provider))
                launched = runner.launch(cap)
                if cap is not None:
                    capacity[id(runner.provider)] = cap - launched
            if stopping or self.options.once or all(r.finished or r.stranded for r in self.runners):
                return
            if sum(r.changes for r in self.runners) != before:
                self._interval = self.options.poll_min
            else:
                self._interval = min(self.options.poll_max, self._interval * 2)
            self._wait()

    def _capacity(self) -> dict[int, int | None]:
        """Free slots per provider instance (shared by every experiment using it)."""
        out: dict[int, int | None] = {}
        for runner in self.runners:
            limit = runner.provider.capacity()
            if limit is None:
                out[id(runner.provider)] = None
                continue
            used = sum(len(r.active) for r in self.runners if r.provider is runner.provider)
            out[id(runner.provider)] = max(0, limit - used)
        return out

    def _wait(self) -> None:
        by_provider: dict[int, tuple[Provider, list[TaskHandle]]] = {}
        for runner in self.runners:
            entry = by_provider.setdefault(id(runner.provider), (runner.provider, []))
            entry[1].extend(a.handle for a in runner.active.values())
        waiting = [(p, hs) for p, hs in by_provider.values() if hs]
        evented = [(p, hs) for p, hs in waiting if p.capabilities.events]
        timeout = self.options.tick if evented else self._interval
        if len(evented) < len(waiting):  # a polled provider is due at the current interval
            timeout = min(timeout, self._interval)
        retries = [at for r in self.runners if (at := r.next_retry()) is not None]
        if retries:  # wake for the earliest submission due
            timeout = max(0.0, min(timeout, min(retries) - time.time()))
        elif not waiting:
            timeout = min(timeout, 0.05)
        if not evented:
            time.sleep(timeout)
            return
        # Providers that signal changes wait for them (sharing the time when several do).
        share = timeout / len(evented)
        for provider, handles in evented:
            provider.wait(handles, share)
