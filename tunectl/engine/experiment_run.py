"""One experiment's run in an apply: what it holds, and the helpers every part of it uses.

`ExperimentRun` owns the experiment's in-memory bookkeeping — the trials whose tasks run
(`active`), wait to be submitted (`waiting`) or run on other hosts (`elsewhere`), the
ended trials, the search engine rebuilt from the state — and the small helpers the
submission (`tunectl.engine.submission`) and outcome (`tunectl.engine.outcomes`) parts
share. `tunectl.engine.runner.Runner` puts the parts together; it is what apply uses.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tunectl.config.model import Experiment
from tunectl.engine.metrics import (
    EventLinesParser,
    JsonLinesParser,
    MetricsParser,
    TableRowsParser,
)
from tunectl.engine.models import Generation, ModelStore
from tunectl.engine.notify import Notifier
from tunectl.engine.objective import combine
from tunectl.engine.schedule import ScheduleGate
from tunectl.engine.trials import Placeholders, metrics_files, metrics_logdirs, metrics_queries
from tunectl.providers.base import MetricSource, Provider, ProviderError, TaskHandle
from tunectl.providers.bodies import query_kind
from tunectl.s3 import S3, is_object_uri
from tunectl.states import ExperimentRecord, State, TaskRecord, TrialRecord
from tunectl.status import TaskRecordStatus, TrialStatus

OUTPUT_TAIL = 10  # lines of a task's output kept to show when its trial fails


class Event(Protocol):
    """Where a run reports what happens: (kind, experiment, message), and for a trial that
    ended, its number and the last lines of its task's output."""

    def __call__(
        self,
        kind: str,
        experiment: str,
        message: str,
        trial: int | None = None,
        output: Sequence[str] = (),
        /,
    ) -> None: ...


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
    # The last lines of the task's output (report lines left out), for a failed trial's event.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL))


def _series(state: State, name: str, number: int) -> dict[str, list[tuple[int | None, float]]]:
    series: dict[str, list[tuple[int | None, float]]] = {}
    for m in state.metrics_for(name, number):
        series.setdefault(m.name, []).append((m.step, m.value))
    return series


def search_history(state: State, exp: Experiment) -> list[Any]:
    """The trials of `exp`'s current generation as the search engine rebuilds its study
    from them (`tunectl.engine.search.PastTrial`s): what apply and `plan --preview` ask
    from."""
    from tunectl.engine.search import PastTrial

    history = []
    for trial in state.list_trials(exp.name):
        curve: list[tuple[int, float]] = []
        if trial.status != TrialStatus.FAILED:
            _, curve = combine(_series(state, exp.name, trial.number), exp.objective)
        if trial.status == TrialStatus.PRUNED and trial.last_step is not None:
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
                values=trial.objective_values,
            )
        )
    return history


class ExperimentRun:
    """The state of one experiment's run. Not thread-safe; one instance per apply."""

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
        self.gate = ScheduleGate(exp.schedule, exp.name, clock, event)
        self.notifier = Notifier(exp.notify, exp.name)

    def _search_engine(self) -> Any:
        if self._search is None:
            from tunectl.engine.search import SearchEngine

            self._search = SearchEngine(self.exp, search_history(self.state, self.exp))
        return self._search

    def _series(self, number: int) -> dict[str, list[tuple[int | None, float]]]:
        return _series(self.state, self.exp.name, number)

    def _parser(self, task_index: int) -> MetricsParser:
        task = self.exp.trial.tasks[task_index]
        return MetricsParser(task.metrics, self.exp.objective.metric_names)

    def _active(self, trial: TrialRecord, task: TaskRecord, handle: TaskHandle) -> Active:
        active = Active(trial, task, handle, self._parser(task.task_index))
        spec = self.exp.trial.tasks[task.task_index]
        readable = self.provider.capabilities.metric_sources
        placeholders = self._placeholders(trial)
        for path in metrics_files(spec, placeholders):
            # Objects in storage tunectl reads itself; the tasks' files, the provider.
            if is_object_uri(path) or MetricSource.FILE in readable:
                active.files[path] = JsonLinesParser()
        if MetricSource.TABLE in readable:
            kind = query_kind(self.provider.task_bodies)
            for query in metrics_queries(spec, placeholders, kind):
                active.files[query] = TableRowsParser()
        for logdir, tags in metrics_logdirs(spec, placeholders).items():
            if is_object_uri(logdir) or MetricSource.EVENTS in readable:
                active.files[logdir] = EventLinesParser(tags)
        return active

    def _object_store(self) -> S3 | None:
        """The `storage "s3"` client, which reads metrics files kept in storage."""
        return getattr(self.models, "s3", None)

    def _model_dir(self, trial: TrialRecord) -> str:
        if self.provider.capabilities.local_model_dir:
            return str(self.models.staging_dir(self.place, trial.number))
        # The trial runs elsewhere and writes straight to the store (or nowhere).
        return self.models.remote_dir(self.place, trial.number) or ""

    def _placeholders(
        self, trial: TrialRecord, parent_model_dir: str | None = None
    ) -> Placeholders:
        return Placeholders(
            self.exp,
            self.generation,
            trial.number,
            trial.params,
            self._model_dir(trial),
            parent_model_dir,
        )

    def _parent_model_dir(self, trial: TrialRecord) -> str | None:
        """PBT: where the trial reads its parent's checkpoint (None: not a PBT trial)."""
        if trial.pbt_member is None:
            return None
        from tunectl.engine.pbt import parent_model_dir

        local = self.provider.capabilities.local_model_dir
        return parent_model_dir(self.models, self.place, trial, local)

    def _cancel_task(self, task: TaskRecord) -> None:
        try:
            self.provider.cancel(TaskHandle(task.key, task.handle_id or task.key))
        except ProviderError as exc:
            self.event("warn", self.exp.name, f"could not cancel task {task.key}: {exc}")
            return
        self.state.update_task(
            task.key, status=TaskRecordStatus.CANCELLED, finished_at=self.clock()
        )

    # -- provided by the parts ----------------------------------------------------------

    def _submit(self, trial: TrialRecord, series: dict | None = None) -> bool:
        """Submit the trial's current task (see `Submission`); False when it must wait."""
        raise NotImplementedError
