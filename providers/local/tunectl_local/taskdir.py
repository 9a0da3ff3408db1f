"""The task directory: its layout, its files, and a task's status read from them alone.

Layout of one task, `<state_dir>/tasks/<key>/`:

    spec.json   what was started (env *names* only, never values), deadline, GPUs
    lock        flock'ed (LOCK_EX) by the parent before spawning; the fd is inherited by
                the runner and the parent's copy closed, so it is held exactly as long as
                the runner (or anything it started that kept the fd) lives
    pid         the runner's pid (= its process group and session id)
    out.log     stdout and stderr merged, written directly by the task
    started     touched by the runner before it runs the command
    exit        the command's exit status ("N\\n", one write; incomplete content is ignored),
                written once every process the command started has ended
    cancelled   written by `cancel`
    timedout    written by `poll` when the deadline passed (JSON: timeout, time)
    queued      the task waits in this process for free GPUs
    error       JSON {state, message}: the task could not be started
    files_before.json
                the metrics files that existed before the task started (see `reading`)

Crash safety: status is derived from these files alone, so any tunectl process, including
one started after the one that spawned the task was killed, gets the same answer. Every
file tunectl writes is written whole (`private_files.write_atomic`); `exit` and `pid` are
only believed once they end in a newline, so a reader never acts on half a write. The
directories are 0700 and the files 0600, whatever the umask (SPEC §6): tunectl makes them
through `tunectl.private_files`, and the runner writes `started` and `exit` itself, 0600,
while the command runs with the user's umask.

This module owns the paths and the reading and writing of the markers; it starts and
signals nothing. The caches in `TaskFiles` hold only what cannot change any more (a
spawned task's spec, the pid of a task that has started).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunectl import private_files
from tunectl.providers.base import ProviderError, TaskRequest, TaskState, TaskStatus

KEY = re.compile(r"[a-z0-9-]{1,64}")
# Written in spec.json in place of a command, workdir or setting derived from a sensitive
# variable (TaskRequest.sensitive): the task gets the value, no file does.
SENSITIVE = "(sensitive value)"
WAITING_FOR_GPU = "waiting for a free GPU"


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_atomic(path: Path, text: str) -> None:
    private_files.write_atomic(path, text)


def unlink(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def lock_held(path: Path) -> bool:
    """True if some process holds the task's lock (its runner, while it lives)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our shared lock
    return False


def group_alive(pgid: int | None) -> bool:
    if pgid is None:
        return True  # cannot tell; trust the lock
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_message(code: int) -> str | None:
    number = -code if code < 0 else code - 128 if code > 128 else 0
    if 0 < number < signal.NSIG:
        return f"killed by signal {number}"
    return None


@contextlib.contextmanager
def os_errors(what: str) -> Iterator[None]:
    """Turn unexpected OS failures into ProviderError with a readable message."""
    try:
        yield
    except ProviderError:
        raise
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        raise ProviderError(f"local provider: {what}: {detail}{where}") from exc


def has_outcome(d: Path) -> bool:
    """True once the task was started, stopped or failed to start (no restart then)."""
    return any((d / name).exists() for name in ("started", "exit", "cancelled", "error"))


def fail(d: Path, state: TaskState, message: str) -> None:
    """Record that the task could not be started, and the state it ends in."""
    write_atomic(d / "error", json.dumps({"state": state.value, "message": message}))


def workdir(request: TaskRequest, d: Path) -> Path:
    return Path(os.path.abspath(request.workdir)) if request.workdir else d


def write_spec(request: TaskRequest, d: Path, gpus: list[str], spawned: bool) -> None:
    now = time.time()
    command = request.command if isinstance(request.command, str) else list(request.command)
    hidden = request.sensitive
    spec = {
        "key": request.key,
        "experiment": request.experiment,
        "trial_number": request.trial_number,
        "task_name": request.task_name,
        "command": SENSITIVE if "command" in hidden else command,
        "workdir": SENSITIVE if "workdir" in hidden else str(workdir(request, d)),
        "env_names": sorted(request.env),  # values may be secret: never stored
        "timeout": request.timeout,
        "deadline": now + request.timeout if spawned and request.timeout else None,
        "model_dir": request.model_dir,
        "settings": {
            k: SENSITIVE if f"settings.{k}" in hidden else v for k, v in request.settings.items()
        },
        "tags": dict(request.tags),
        "gpus": gpus,
        "spawned": spawned,
        "submitted_at": now,
        "submitted_by_pid": os.getpid(),
    }
    write_atomic(d / "spec.json", json.dumps(spec, indent=1, default=str) + "\n")


class TaskFiles:
    """The task directories under `tasks_dir`, with caches of what no longer changes."""

    def __init__(self, tasks_dir: Path) -> None:
        self.tasks_dir = tasks_dir
        self._specs: dict[str, dict[str, Any]] = {}
        self._pids: dict[str, int] = {}
        self._made = False

    def dir(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise ProviderError(f"local provider: invalid task key {key!r}")
        return self.tasks_dir / key

    def make(self, key: str) -> None:
        """Create the task's directory (FileExistsError if it exists)."""
        d = self.dir(key)
        if not self._made:
            private_files.make_dirs(self.tasks_dir)
            self._made = True
        private_files.mkdir(d)

    def spec(self, key: str) -> dict[str, Any]:
        spec = self._specs.get(key)
        if spec is None:
            text = read_text(self.dir(key) / "spec.json")
            try:
                spec = json.loads(text) if text else {}
            except ValueError:
                spec = {}
            if spec.get("spawned"):
                self._specs[key] = spec  # immutable once the task runs
        return spec

    def pid(self, key: str) -> int | None:
        pid = self._pids.get(key)
        if pid is not None:
            return pid
        text = read_text(self.dir(key) / "pid")
        try:
            pid = int(text) if text and text.endswith("\n") else None
        except ValueError:
            return None
        if pid is not None and (self.dir(key) / "started").exists():
            self._pids[key] = pid  # final: a task is only started again before `started`
        return pid

    def restarting(self, key: str) -> None:
        """Forget what an earlier, unstarted attempt left (the task is started again)."""
        d = self.dir(key)
        unlink(d / "queued", d / "error", d / "pid")
        self._specs.pop(key, None)
        self._pids.pop(key, None)

    def record_pid(self, key: str, pid: int) -> None:
        """The runner was spawned: its spec is now final, its pid known."""
        self._specs.pop(key, None)
        self._pids[key] = pid
        write_atomic(self.dir(key) / "pid", f"{pid}\n")

    def forget(self, key: str) -> None:
        self._specs.pop(key, None)
        self._pids.pop(key, None)

    def running(self, key: str, d: Path) -> bool:
        """Something holds the lock, and the task's process group still exists (a process
        that left the group with the fd cannot keep the task alive)."""
        return lock_held(d / "lock") and group_alive(self.pid(key))

    def status(self, key: str, waiting_here: bool) -> TaskStatus:
        """The task's status from its files; `waiting_here`: it waits in this process's
        GPU queue."""
        d = self.dir(key)
        if waiting_here:
            return TaskStatus(TaskState.PENDING, message=WAITING_FOR_GPU)
        try:
            names = set(os.listdir(d))  # one look instead of a probe per marker
        except (FileNotFoundError, NotADirectoryError):
            return TaskStatus(TaskState.LOST, message="no such task")
        exit_code: int | None = None
        if "exit" in names:
            text = read_text(d / "exit")
            if text and text.endswith("\n"):  # else still being written
                with contextlib.suppress(ValueError):
                    exit_code = int(text)
        started_at = mtime(d / "started") if "started" in names else None

        if "timedout" in names:
            try:
                limit = float(json.loads(read_text(d / "timedout") or "")["timeout"])
            except (ValueError, KeyError, TypeError):
                limit = float(self.spec(key).get("timeout") or 0)
            message = f"timed out after {limit:g}s"
            if exit_code is None and self.running(key, d):
                return TaskStatus(TaskState.RUNNING, None, message + "; stopping", started_at)
            return TaskStatus(
                TaskState.FAILED, exit_code, message, started_at, mtime(d / "timedout")
            )

        if exit_code is not None:
            finished_at = mtime(d / "exit")
            if exit_code == 0:
                return TaskStatus(TaskState.SUCCEEDED, 0, "", started_at, finished_at)
            message = signal_message(exit_code) or f"exited with status {exit_code}"
            return TaskStatus(TaskState.FAILED, exit_code, message, started_at, finished_at)

        if "error" in names:
            failure = read_text(d / "error") or ""
            try:
                info = json.loads(failure)
                state, message = TaskState(info["state"]), str(info["message"])
            except (ValueError, KeyError, TypeError):
                state, message = TaskState.LOST, failure.strip()
            return TaskStatus(state, None, message, started_at, mtime(d / "error"))

        if "lock" in names and self.running(key, d):
            if "queued" in names:
                return TaskStatus(TaskState.PENDING, message=WAITING_FOR_GPU)
            return TaskStatus(TaskState.RUNNING, None, "", started_at)
        if "cancelled" in names:
            return TaskStatus(
                TaskState.CANCELLED, None, "cancelled", started_at, mtime(d / "cancelled")
            )
        if started_at is None:
            return TaskStatus(TaskState.LOST, message="the task was never started")
        return TaskStatus(TaskState.LOST, None, "the task's process vanished", started_at)
