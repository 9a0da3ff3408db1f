"""`LocalProvider`: tasks as process trees on this machine, adoptable after a crash.

Each task runs under its own runner process (`runner.py`): a session leader and child
subreaper, so everything the task starts, even through `setsid`, is found and ended with it.

This module is the facade the engine calls; the work is done by the modules beside it:

    taskdir.py  the task directory's layout and files, and a task's status read from them
    spawn.py    claiming a task's lock, its environment, and spawning its runner
    gpus.py     the GPU queue: which task holds which GPU, tasks waiting for GPUs
    watch.py    waiting for tasks through pidfds
    reading.py  reading a task's output and metrics files
    events.py   reading a task's TensorBoard event directories (MetricSource.EVENTS)
    stop.py     cancel and timeouts: SIGTERM, the grace period, SIGKILL
    runner.py   the per-task runner (standard library only; runs in its own interpreter)

Status is derived from the task's files alone, so any tunectl process gets the same
answer (see `taskdir` for the layout and its crash-safety reasoning).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl.providers.base import (
    AttributeDiagnostic,
    AttrSpec,
    Capabilities,
    LogChunk,
    MetricSource,
    MetricsRef,
    Provider,
    ProviderError,
    TaskHandle,
    TaskRequest,
    TaskState,
    TaskStatus,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
    attribute_error,
    attribute_warning,
)
from tunectl_local import reading, spawn, stop
from tunectl_local.events import EventReaders
from tunectl_local.gpus import GpuQueue, gpus_wanted
from tunectl_local.taskdir import TaskFiles, has_outcome, os_errors, write_atomic, write_spec
from tunectl_local.watch import Watcher

__all__ = ["LocalProvider"]


class LocalProvider(Provider):
    """Runs tasks as detached process groups; see the module docstring for the layout."""

    name = "local"
    version = "0.1.0"
    capabilities = Capabilities(
        events=True,
        local_model_dir=True,
        host_local=True,
        local_files=True,
        metric_sources=frozenset({MetricSource.STDOUT, MetricSource.FILE, MetricSource.EVENTS}),
    )
    config_schema = (
        AttrSpec(
            "slots",
            "int",
            default=os.cpu_count() or 1,
            description="How many tasks run at once (default: the number of CPUs).",
        ),
        AttrSpec(
            "gpus",
            "list(string)",
            description="GPU ids handed out to tasks (CUDA_VISIBLE_DEVICES), each to one "
            "running task at a time, round-robin.",
        ),
        AttrSpec(
            "python",
            "string",
            description="Interpreter path exposed to tasks as TUNECTL_PYTHON.",
        ),
    )
    trial_schema = (
        AttrSpec(
            "gpus_per_task",
            "int",
            default=0,
            description="How many of the provider's GPUs the task gets exclusively.",
        ),
    )

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        super().__init__(config, state_dir)
        self.tasks_dir = Path(state_dir) / "tasks"
        self.gpus: list[str] = [str(g) for g in (self.config.get("gpus") or [])]
        python = self.config.get("python")
        self.python: str | None = str(python) if python else None
        self._files = TaskFiles(self.tasks_dir)
        self._queue = GpuQueue(self.gpus, self.tasks_dir)
        self._watcher = Watcher(self._files, self._queue)
        self._seen: dict[str, TaskState] = {}  # state each key had at our last poll
        self._killed: set[str] = set()  # keys already sent SIGKILL after a timeout
        self._events = EventReaders()

    # -- validation ---------------------------------------------------------------------

    @classmethod
    def validate_config(cls, request: ValidateConfigRequest) -> ValidateResponse:
        config = request.config
        out: list[AttributeDiagnostic] = []
        slots = config.get("slots")
        if slots is not None and (not isinstance(slots, int) or slots < 1):
            detail = f'"slots" must be a positive integer, not {slots!r}.'
            out.append(attribute_error(("slots",), "Invalid slots", detail))
        ids = [str(g) for g in config.get("gpus") or []]
        if any(not g.strip() for g in ids):
            out.append(
                attribute_error(("gpus",), "Invalid gpus", '"gpus" cannot contain empty ids.')
            )
        dupes = sorted({g for g in ids if ids.count(g) > 1})
        if dupes:
            detail = f'"gpus" lists {", ".join(dupes)} more than once.'
            out.append(attribute_error(("gpus",), "Invalid gpus", detail))
        python = config.get("python")
        if python and shutil.which(str(python)) is None:
            out.append(
                attribute_warning(
                    ("python",),
                    "Interpreter not found",
                    f'"python" is {str(python)!r}, which is not an executable on this machine.',
                )
            )
        return ValidateResponse(tuple(out))

    @classmethod
    def validate_task(cls, request: ValidateTaskRequest) -> ValidateResponse:
        value = request.settings.get("gpus_per_task", 0)
        gpus = len(request.config.get("gpus") or [])
        problem = None
        try:
            n = int(value if value is not None else 0)
        except (TypeError, ValueError):
            problem = f'"gpus_per_task" must be an integer, not {value!r}.'
        else:
            if n < 0:
                problem = '"gpus_per_task" cannot be negative.'
            elif n > 0 and not gpus:
                problem = (
                    f'"gpus_per_task" is {n} but the local provider has no GPUs: '
                    'list them in its "gpus" attribute.'
                )
            elif n > gpus:
                problem = f'"gpus_per_task" is {n} but the local provider has only {gpus} GPUs.'
        if problem is None:
            return ValidateResponse()
        where = ("gpus_per_task",)
        return ValidateResponse((attribute_error(where, "Invalid trial settings", problem),))

    @classmethod
    def hourly_price(
        cls, config: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> float | None:
        """This machine's time costs nothing tunectl counts (`max_cost` sees 0)."""
        return 0.0

    def capacity(self) -> int | None:
        slots = self.config.get("slots")
        return int(slots) if slots else (os.cpu_count() or 1)

    # -- status and submitting -----------------------------------------------------------

    def _status(self, key: str) -> TaskStatus:
        return self._files.status(key, waiting_here=key in self._queue.waiting)

    def submit(self, request: TaskRequest) -> TaskHandle:
        key = request.key
        handle = TaskHandle(key, key)
        d = self._files.dir(key)
        with os_errors(f"cannot submit task {key}"):
            spawn.reap()
            self._start_queued()
            try:
                self._files.make(key)
            except FileExistsError:
                if key in self._queue.waiting or has_outcome(d):
                    return handle
            lockfd = spawn.claim(d)
            if lockfd is None:
                return handle  # another process is starting or running it
            try:
                if has_outcome(d):
                    os.close(lockfd)
                    return handle
                self._files.restarting(key)
                n = gpus_wanted(request)
                gpus: list[str] = []
                if n:
                    allocated = None if self._queue.waiting else self._queue.allocate(n, key)
                    if allocated is None:
                        write_spec(request, d, [], spawned=False)
                        write_atomic(d / "queued", "")
                        self._queue.enqueue(request, lockfd)
                        return handle
                    gpus = allocated
            except BaseException:
                os.close(lockfd)
                raise
            self._spawn(request, lockfd, gpus, queued=False)
        return handle

    def _spawn(self, request: TaskRequest, lockfd: int, gpus: list[str], queued: bool) -> None:
        """Start the task's runner holding `lockfd` (always closed); hold its GPUs while
        it runs."""
        try:
            pid = spawn.spawn(
                self._files,
                request,
                lockfd,
                gpus,
                python=self.python,
                managed_gpus=bool(self.gpus),
                grace=stop.GRACE,
                queued=queued,
            )
        except BaseException:
            self._queue.release(gpus)
            raise
        if pid is None:
            self._queue.release(gpus)
        else:
            self._queue.hold(gpus, request.key)

    def _start_queued(self) -> None:
        for request, lockfd, gpus in self._queue.ready():
            self._spawn(request, lockfd, gpus, queued=True)

    # -- watching ------------------------------------------------------------------------

    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        out: dict[str, TaskStatus] = {}
        with os_errors("cannot poll tasks"):
            spawn.reap()
            self._start_queued()
            for handle in handles:
                status = self._status(handle.id)
                if status.state is TaskState.RUNNING and stop.enforce_timeout(
                    self._files, handle.id, self._killed
                ):
                    status = self._status(handle.id)
                if status.state.terminal:
                    self._watcher.forget(handle.id)
                self._seen[handle.id] = status.state
                out[handle.id] = status
        return out

    def wait(self, handles: Sequence[TaskHandle], timeout: float) -> None:
        with os_errors("cannot wait for tasks"):
            keys = [handle.id for handle in handles]
            self._watcher.wait(keys, timeout, self._status, self._seen)

    # -- logs and files ------------------------------------------------------------------

    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        key = handle.id
        with os_errors(f"cannot read the output of task {key}"):
            return reading.read_lines(self._files.dir(key) / "out.log", cursor, self._ended(key))

    def read_file(self, handle: TaskHandle, path: str, cursor: int) -> LogChunk:
        key = handle.id
        with os_errors(f"cannot read {path} of task {key}"):
            d = self._files.dir(key)
            target = Path(self._files.spec(key).get("workdir") or str(d)) / path
            start = reading.past_old_lines(d, path, target, cursor)
            return reading.read_lines(target, start, self._ended(key))

    def read_metrics(self, handle: TaskHandle, ref: MetricsRef, cursor: int) -> LogChunk:
        if ref.source is not MetricSource.EVENTS:
            return super().read_metrics(handle, ref, cursor)
        key = handle.id
        with os_errors(f"cannot read the event files {ref.location} of task {key}"):
            d = self._files.dir(key)
            workdir = Path(self._files.spec(key).get("workdir") or str(d))
            return self._events.read(key, d, workdir, ref.location, cursor, self._ended(key))

    def _ended(self, key: str) -> Callable[[], bool]:
        """Whether the task has ended, asked only when a read needs it."""
        return lambda: self._status(key).state.terminal

    # -- stopping and forgetting ---------------------------------------------------------

    def cancel(self, handle: TaskHandle) -> None:
        errors = self.cancel_all([handle])
        if handle.id in errors:
            raise errors[handle.id]

    def cancel_all(self, handles: Sequence[TaskHandle]) -> dict[str, ProviderError]:
        """Stop the tasks together: SIGTERM to each, one shared grace period, then SIGKILL
        to those still running; n tasks that ignore SIGTERM take GRACE, not n x GRACE."""
        errors: dict[str, ProviderError] = {}
        stopping: list[str] = []
        for handle in handles:
            try:
                with os_errors(f"cannot cancel task {handle.id}"):
                    if stop.begin_cancel(self._files, self._queue, handle.id, self._status):
                        stopping.append(handle.id)
            except ProviderError as exc:
                errors[handle.id] = exc
        stop.stop_together(self._files, stopping, errors)
        for handle in handles:
            self._watcher.forget(handle.id)
        return errors

    def cleanup(self, handle: TaskHandle) -> None:
        key = handle.id
        d = self._files.dir(key)
        with os_errors(f"cannot remove the files of task {key}"):
            if not d.is_dir():
                return
            state = self._status(key).state
            if not state.terminal:
                raise ProviderError(f"task {key} is still {state.value}; cancel it first")
            self._watcher.forget(key)
            self._files.forget(key)
            self._events.forget(key)
            self._seen.pop(key, None)
            self._killed.discard(key)
            shutil.rmtree(d)

    def close(self) -> None:
        self._watcher.close()
        # Tasks waiting for a GPU cannot outlive this process: they were never started,
        # and a later submit of the same key starts them.
        self._queue.close()
        spawn.reap()
