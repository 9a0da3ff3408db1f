"""`FakeProvider`: an in-process provider whose tasks are scripted, for core's tests.

Nothing runs: a task is a `Script` — its output (and files) in chunks, its outcome, and
how many polls it takes — played one step per `poll`. Faults are injected on demand. It
keeps the whole provider contract (`tunectl.testing.conformance` passes against it), so
core can be tested without `tunectl_local` and without processes.

Tasks live in a `World` per state directory, shared by every instance made with that
directory in this process: a second instance is a restarted tunectl, which must adopt
the first one's tasks by submitting their keys again.

Use it from a test::

    undo = FakeProvider.install()          # `provider = "fake"` now loads it
    world = FakeProvider.world(state_dir)  # scripts and faults for that state
    world.script("tk-...", Script(output=["acc=0.5"], exit_code=0, polls=3))
    world.fail("submit", times=2)          # the next two submits raise ProviderError
    ...
    undo()

Without a script, a task prints its `command` body (text, line by line: placeholders
are substituted as they are, no shell reads it) and succeeds on its first poll.

Tasks may instead (or also) take a `sql` body: one query or a list of them, rendered by
the `SQL` kind's rules. The fake reads `metrics "table"` (`MetricSource.TABLE`): a read
returns the rows of the task's script (`Script.rows`, one chunk per poll like its output)
whatever the query, and the queries asked are recorded in `World.queries`. Without a
script, the rows are the task's `sql` statements themselves, so `sql = "acc=${param.x}"`
reports `acc`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tunectl.providers import registry
from tunectl.providers.base import (
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
)
from tunectl.providers.bodies import SQL, TEXT, BodySpec, ListOf

__all__ = ["FakeProvider", "Script", "World"]


@dataclass(frozen=True)
class Script:
    """What one task does.

    `output` and each of `files` (path relative to the workdir -> chunks) grow by one
    chunk per poll while the task runs; `polls` is how many polls it runs for (at least
    as many as it has chunks); `pending_polls` how many it waits before. It then ends with
    `exit_code` (0: succeeded), unless its `TaskRequest.timeout` passed first.
    """

    output: Sequence[str | bytes] = ()
    exit_code: int = 0
    polls: int = 0
    pending_polls: int = 0
    files: Mapping[str, Sequence[str | bytes]] = field(default_factory=dict)
    message: str = ""
    # The rows a `metrics "table"` query returns, in chunks like `output`.
    rows: Sequence[str | bytes] = ()


def _bytes(chunk: str | bytes) -> bytes:
    return chunk if isinstance(chunk, bytes) else chunk.encode()


@dataclass
class _Task:
    request: TaskRequest
    script: Script
    id: str
    submitted_at: float
    state: TaskState = TaskState.PENDING
    step: int = 0  # polls played
    output: bytearray = field(default_factory=bytearray)
    files: dict[str, bytearray] = field(default_factory=dict)
    rows: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None

    def advance(self, now: float) -> None:
        """Play one poll's step."""
        if self.state.terminal:
            return
        timeout = self.request.timeout
        if timeout is not None and now - self.submitted_at >= timeout:
            self.end(TaskState.FAILED, None, f"timed out after {timeout:g}s", now)
            return
        self.step += 1
        script = self.script
        if self.step <= script.pending_polls:
            return
        if self.state is TaskState.PENDING:
            self.state, self.started_at = TaskState.RUNNING, now
        played = self.step - script.pending_polls  # running polls so far
        self.emit(played - 1)
        longest = max(len(script.output), len(script.rows), _longest(script.files))
        if played >= max(script.polls, longest, 1):
            ok = script.exit_code == 0
            state = TaskState.SUCCEEDED if ok else TaskState.FAILED
            self.end(state, script.exit_code, script.message, now)

    def emit(self, index: int) -> None:
        if index < len(self.script.output):
            self.output += _bytes(self.script.output[index])
        if index < len(self.script.rows):
            self.rows += _bytes(self.script.rows[index])
        for path, chunks in self.script.files.items():
            if index < len(chunks):
                self.files.setdefault(path, bytearray()).extend(_bytes(chunks[index]))

    def end(self, state: TaskState, exit_code: int | None, message: str, now: float) -> None:
        self.state, self.exit_code, self.message = state, exit_code, message
        self.finished_at = now

    def status(self) -> TaskStatus:
        return TaskStatus(
            self.state, self.exit_code, self.message, self.started_at, self.finished_at
        )


def _longest(files: Mapping[str, Sequence[Any]]) -> int:
    return max((len(chunks) for chunks in files.values()), default=0)


def _default_script(request: TaskRequest) -> Script:
    text = str(request.bodies.get("command", ""))
    sql = request.bodies.get("sql", [])
    rows = [f"{q}\n" for q in ([sql] if isinstance(sql, str) else sql)]
    return Script(output=[text + "\n"] if text else [], rows=["".join(rows)] if rows else [])


class World:
    """The tasks, scripts and pending faults of one state directory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, _Task] = {}
        self.scripts: dict[str, Script] = {}
        # Chooses the script of a task without one in `scripts`.
        self.default: Callable[[TaskRequest], Script] = _default_script
        self.faults: dict[str, list[tuple[ProviderError, bool]]] = {}
        self.calls: dict[str, int] = {}  # calls made, by name ("submit", "poll", ...)
        self.started: dict[str, int] = {}  # tasks started, by key (idempotency checks)
        self.queries: list[str] = []  # the `metrics "table"` queries read, in order
        self._ids = 0

    def script(self, key: str, script: Script) -> None:
        """Play `script` for the task submitted with `key`."""
        self.scripts[key] = script

    def fail(
        self,
        call: str,
        times: int = 1,
        message: str = "503 Service Unavailable (throttled)",
        *,
        permanent: bool = False,
        after: bool = False,
    ) -> None:
        """Make the next `times` calls of `call` ("submit", "poll", "read", "cancel")
        raise `ProviderError(message)`. With `after`, the call first does its work (a
        submit whose answer was lost: the task exists, the caller does not know)."""
        error = ProviderError(message, permanent=permanent)
        self.faults.setdefault(call, []).extend([(error, after)] * times)

    def lose(self, key: str) -> None:
        """The provider forgets the task: it is LOST from its next poll."""
        task = self.tasks[key]
        task.state, task.message = TaskState.LOST, "the fake provider lost the task"
        task.finished_at = time.time()

    def _fault(self, call: str, after: bool) -> None:
        self.calls[call] = self.calls.get(call, 0) + (0 if after else 1)
        queue = self.faults.get(call)
        if queue and queue[0][1] == after:
            raise queue.pop(0)[0]

    def _new_id(self) -> str:
        self._ids += 1
        return f"fake-{self._ids}"


class FakeProvider(Provider):
    """Scripted tasks in this process; see the module docstring."""

    name = "fake"
    version = "1"
    capabilities = Capabilities(
        events=True,
        metric_sources=frozenset({MetricSource.STDOUT, MetricSource.FILE, MetricSource.TABLE}),
    )
    task_bodies = (
        BodySpec(
            "command",
            (TEXT,),
            noun="a command",
            description="The task's output when no script is given.",
        ),
        BodySpec(
            "sql",
            (SQL, ListOf(SQL)),
            noun="a query",
            description="Statements, run in order; without a script, the rows of its table.",
        ),
    )
    # How long `wait` sleeps: tasks change only when polled, so there is nothing to await.
    tick: ClassVar[float] = 0.005
    _worlds: ClassVar[dict[Path, World]] = {}

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        super().__init__(config, state_dir)
        self.shared = self.world(state_dir)

    @classmethod
    def world(cls, state_dir: Path) -> World:
        """The world of `state_dir` (made on first use)."""
        key = Path(state_dir).resolve()
        if key not in cls._worlds:
            cls._worlds[key] = World()
        return cls._worlds[key]

    @classmethod
    def install(cls) -> Callable[[], None]:
        """Make `provider = "fake"` load this class in this process; returns the undo."""
        return registry.register(cls)

    def _task(self, handle: TaskHandle) -> _Task:
        task = self.shared.tasks.get(handle.key)
        if task is None or task.id != handle.id:
            raise ProviderError(f"fake: no task {handle.id}")
        return task

    def submit(self, request: TaskRequest) -> TaskHandle:
        world = self.shared
        with world.lock:
            world._fault("submit", after=False)
            task = world.tasks.get(request.key)
            if task is None:
                script = world.scripts.get(request.key) or world.default(request)
                task = _Task(request, script, world._new_id(), time.time())
                world.tasks[request.key] = task
                world.started[request.key] = world.started.get(request.key, 0) + 1
            world._fault("submit", after=True)
            return TaskHandle(request.key, task.id)

    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        world = self.shared
        with world.lock:
            world._fault("poll", after=False)
            now = time.time()
            out: dict[str, TaskStatus] = {}
            for handle in handles:
                task = world.tasks.get(handle.key)
                if task is None or task.id != handle.id:
                    out[handle.id] = TaskStatus(TaskState.LOST, message="unknown to the fake")
                    continue
                task.advance(now)
                out[handle.id] = task.status()
            return out

    def wait(self, handles: Sequence[TaskHandle], timeout: float) -> None:
        time.sleep(min(self.tick, max(timeout, 0.0)))

    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        with self.shared.lock:
            self.shared._fault("read", after=False)
            task = self._task(handle)
            return _lines(bytes(task.output), cursor, task.state.terminal)

    def read_file(self, handle: TaskHandle, path: str, cursor: int) -> LogChunk:
        with self.shared.lock:
            self.shared._fault("read", after=False)
            task = self._task(handle)
            data = bytes(task.files.get(path, b""))
            return _lines(data, cursor, task.state.terminal)

    def read_metrics(self, handle: TaskHandle, ref: MetricsRef, cursor: int) -> LogChunk:
        if ref.source is not MetricSource.TABLE:
            return super().read_metrics(handle, ref, cursor)
        with self.shared.lock:
            self.shared._fault("read", after=False)
            self.shared.queries.append(ref.location)
            task = self._task(handle)
            return _lines(bytes(task.rows), cursor, task.state.terminal)

    def cancel(self, handle: TaskHandle) -> None:
        with self.shared.lock:
            self.shared._fault("cancel", after=False)
            task = self._task(handle)
            if not task.state.terminal:
                task.end(TaskState.CANCELLED, None, "cancelled", time.time())

    def cleanup(self, handle: TaskHandle) -> None:
        with self.shared.lock:
            self.shared.tasks.pop(handle.key, None)


def _lines(data: bytes, cursor: int, ended: bool) -> LogChunk:
    """The complete lines of `data` after `cursor` (and an unfinished last line once the
    task has ended), with the byte cursor after them."""
    rest = data[cursor:]
    end = len(rest) if ended else rest.rfind(b"\n") + 1
    if end <= 0:
        return LogChunk([], cursor)
    text = rest[:end].decode(errors="replace")
    return LogChunk(text.splitlines(), cursor + end)
