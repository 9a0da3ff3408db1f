"""The experiment runner: one experiment's trials, from adoption to its stop conditions.

`Runner` is what the apply loop (`tunectl.engine.reconcile`) drives, one per experiment:
`prepare` adopts what an earlier apply left running, each pass `refresh` takes in what
happened and checks the stop conditions, `launch` fills free slots, `pause` stops the
experiment's clock when apply leaves it. Submission and outcomes are its parts
(`tunectl.engine.submission`, `tunectl.engine.outcomes`).
"""

from __future__ import annotations

from tunectl.addrs import Address
from tunectl.engine.costs import spend, trial_rates
from tunectl.engine.hosts import elsewhere, home
from tunectl.engine.models import delete_stored, kept_trials
from tunectl.engine.notify import GRACE, notify_finished
from tunectl.engine.objective import by_source, combine
from tunectl.engine.outcomes import Outcomes
from tunectl.engine.pareto import kept_on_front
from tunectl.engine.submission import Submission
from tunectl.providers.base import TaskHandle, TaskState
from tunectl.search.stopping import (
    REASON_TEXT,
    Progress,
    compute_progress,
    final_status,
    stop_reason,
    time_used,
)
from tunectl.states import TrialRecord
from tunectl.status import ExperimentStatus, TaskRecordStatus, TrialStatus

# The ended trial statuses, as the state writes them (`progress` counts by them).
ENDED = tuple(s.value for s in TrialStatus if s.ended)
# Stop reasons after which trials still running are cancelled (the experiment is over).
CANCEL_ON = ("goal", "max_duration", "max_failed_trials", "max_cost")


class Runner(Outcomes, Submission):
    """Reconciles one experiment. Not thread-safe; one instance per apply."""

    # -- set-up -------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the history and adopt every trial left running by an earlier apply."""
        now = self.clock()
        restart = self.record.status != ExperimentStatus.RUNNING
        if restart:
            # (Re)starting: an update may have lifted a stop condition.
            self.record.status = ExperimentStatus.RUNNING
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
                    if TaskRecordStatus(task.status).active and not elsewhere(
                        task.host, self.provider.state_dir
                    ):
                        self._cancel_task(task)
            else:
                self._resume(trial)

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
                f"`tunectl state rm {Address(self.exp.name)}` forgets it without stopping it.",
            )
            return
        active = self._active(trial, task, TaskHandle(task.key, task.handle_id or task.key))
        active.series = self._series(trial.number)
        own = active.series  # the current task's reports (its own, with several sources)
        if self.exp.objective.sources_reduce is not None:
            own = by_source(active.series).get(task.task_name, {})  # type: ignore[assignment]
        # Pattern matches number their steps by count: continue the count.
        active.parser.continue_steps(
            {
                name: max((s for s, _ in points if s is not None), default=0)
                for name, points in own.items()
            }
        )
        if active.series:
            _, curve = combine(active.series, self.exp.objective)
            active.reported_step = curve[-1][0] if curve else -1
        if task.status == TaskRecordStatus.SUBMITTING:
            handle = self._call_submit(trial, task.task_index, task.key, task.submitted_at)
            if handle is None:
                self._wait_to_submit(trial, active.series)
                return
            with self.state.transaction():
                self.state.update_task(
                    task.key, handle_id=handle.id, status=TaskRecordStatus.PENDING
                )
            active.handle = handle
        self.active[trial.number] = active
        self.event("adopt", self.exp.name, f"trial {trial.number} adopted ({task.status})")

    # -- one pass -----------------------------------------------------------------------

    def progress(self) -> Progress:
        return compute_progress(
            self.ended,
            direction=self.exp.objective.direction,
            running=len(self.active) + len(self.waiting) + len(self.elsewhere),
            asked=self.asked,
            elapsed=self.record.elapsed,
            clock_since=self.record.clock_since,
            now=self.clock(),
            cost=self._spend() if self.exp.max_cost is not None else 0.0,
        )

    def _spend(self) -> float:
        rates = trial_rates(type(self.provider), self.provider.config, self.exp)
        return spend(self.state, self.exp.name, self.record.generation, rates, self.clock())

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
                    and active.task.status != TaskRecordStatus.RUNNING
                ):
                    self.state.update_task(active.task.key, status=TaskRecordStatus.RUNNING)
                    active.task.status = TaskRecordStatus.RUNNING
                    self.changes += 1
        progress = self.progress()
        reason = stop_reason(self.exp.stop_rules, progress, self.space_size)
        if reason is not None:
            if reason in CANCEL_ON:
                message = f"stopped: {REASON_TEXT[reason]}"
                for active in list(self.active.values()):
                    self._end_trial(active, TrialStatus.PRUNED, message=message, cancel=True)
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
        if self._draining or not self.gate.allows():
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

    def _retain(self) -> None:
        """Apply the storage's `keep`: delete the models of all but the best trials."""
        sign = -1.0 if self.exp.objective.direction == "maximize" else 1.0
        scored = [
            (sign * t.value, t.number)
            for t in self.ended
            if t.status == TrialStatus.COMPLETE and t.value is not None
        ]
        ranked = [number for _, number in sorted(scored)]
        keep = kept_trials(self.models.keep, ranked)
        if self.exp.objective.multi:  # no single best: the Pareto front first
            points = {t.number: t.objective_values for t in self.ended if t.objective_values}
            keep = kept_on_front(self.models.keep, points, self.exp.objective.directions)
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
        status = ExperimentStatus(final_status(reason, progress))
        self.record.status = status
        self.record.stop_reason = reason
        self.record.finished_at = self.clock()
        self._stop_clock()
        self.state.put_experiment(self.record)
        self.finished = True
        self.event("finish", self.exp.name, f"{status.value}: {REASON_TEXT[reason]}")
        notify_finished(self.notifier, self.exp, self.ended, status.value, REASON_TEXT[reason])

    def pause(self, grace: float = GRACE) -> None:
        """Called when apply leaves the experiment: with nothing of it running, its clock
        pauses until the next apply; with trials running (`--once`, an interrupt), their
        time keeps counting toward max_duration. Queued notifications get `grace` s."""
        self.notifier.close(self.event, grace)
        if self.finished or self.active or self.waiting or self.record.clock_since is None:
            return
        self._stop_clock()
        self.state.put_experiment(self.record)

    def _stop_clock(self) -> None:
        now = self.clock()
        self.record.elapsed = time_used(self.record.elapsed, self.record.clock_since, now)
        self.record.clock_since = None
