"""`LocalProvider`: tasks as process trees on this machine, adoptable after a crash.

Each task runs under its own runner process (`runner.py`): a session leader and child
subreaper, so everything the task starts, even through `setsid`, is found and ended with it.

Layout of one task, `<state_dir>/tasks/<key>/`:

    spec.json   what was started (env *names* only, never values), deadline, GPUs
    lock        flock'ed (LOCK_EX) by the parent before spawning; the fd is inherited by
                the runner and the parent's copy closed, so it is held exactly as long as
                the runner (or anything it started that kept the fd) lives
    pid         the runner's pid (= its process group and session id)
    out.log     stdout and stderr merged, written directly by the task
    started     touched by the runner before it runs the command
    exit        the command's exit status ("N\n", one write; incomplete content is ignored),
                written once every process the command started has ended
    cancelled   written by `cancel`
    timedout    written by `poll` when the deadline passed (JSON: timeout, time)
    queued      the task waits in this process for free GPUs
    error       JSON {state, message}: the task could not be started

Status is derived from these files alone, so any tunectl process gets the same answer.
The directories are 0700 and the files 0600, whatever the umask (SPEC §6): tunectl makes
them through `tunectl.private_files`, and the wrapper writes `started` and `exit` under
umask 077 while the command itself runs with the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl import private_files
from tunectl.providers.base import (
    AttributeDiagnostic,
    AttrSpec,
    Capabilities,
    LogChunk,
    MetricSource,
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
from tunectl_local.runner import descendants, signal_all

__all__ = ["LocalProvider"]

_KEY = re.compile(r"[a-z0-9-]{1,64}")
# Each task runs under `runner.py` (a subreaper that ends every descendant, see there),
# started by the interpreter running tunectl, isolated and without site-packages (-I -S):
# one interpreter start per task (at best 11.6 ms per `true` task on the shared test
# machine, against 2.3 ms for the /bin/sh wrapper it replaced; docs/operations.md, Faults).
# Its argv is [task dir, grace, command argv...]: argument values never pass through a
# shell, and no shell builtin can shadow an exec-form command.
_RUNNER = str(Path(__file__).with_name("runner.py"))
# Written in spec.json in place of a command, workdir or setting derived from a sensitive
# variable (TaskRequest.sensitive): the task gets the value, no file does.
SENSITIVE = "(sensitive value)"

GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_MAX_READ = 4 << 20  # bytes read_log returns at most per call
_STRAY_RECHECK = 0.25  # poll interval when a task cannot be watched through a pidfd
_LOCK_RETRY = 0.2  # how long submit retries a lock a status check may hold briefly

# Popen objects of the runners this process started, shared by every instance so a new
# instance (a simulated restart) still reaps them: pid -> Popen.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


@functools.cache
@functools.cache
def _tunectl_root() -> str | None:
    """The directory holding the `tunectl` package (what goes on a task's PYTHONPATH)."""
    try:
        spec = importlib.util.find_spec("tunectl")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            return str(Path(location).resolve().parent)
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        return str(Path(spec.origin).resolve().parent.parent)
    return None


def _signal_message(code: int) -> str | None:
    number = -code if code < 0 else code - 128 if code > 128 else 0
    if 0 < number < signal.NSIG:
        return f"killed by signal {number}"
    return None


def _lock_held(path: Path) -> bool:
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


def _is_runner(pid: int) -> bool:
    """True if `pid` is a task runner leading its own process group (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return os.getpgid(pid) == pid and _RUNNER.encode() in argv
    except (OSError, ProcessLookupError):
        return False


def _group_alive(pgid: int | None) -> bool:
    if pgid is None:
        return True  # cannot tell; trust the lock
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    private_files.write_atomic(path, text)


def _unlink(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Turn unexpected OS failures into ProviderError with a readable message."""
    try:
        yield
    except ProviderError:
        raise
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        raise ProviderError(f"local provider: {what}: {detail}{where}") from exc


class LocalProvider(Provider):
    """Runs tasks as detached process groups; see the module docstring for the layout."""

    name = "local"
    version = "0.1.0"
    capabilities = Capabilities(
        events=True,
        local_model_dir=True,
        host_local=True,
        local_files=True,
        metric_sources=frozenset({MetricSource.STDOUT, MetricSource.FILE}),
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
        self._pidfds: dict[str, tuple[int, int]] = {}  # key -> (pid, pidfd)
        self._specs: dict[str, dict[str, Any]] = {}
        self._pids: dict[str, int] = {}
        self._tasks_dir_made = False
        self._seen: dict[str, TaskState] = {}  # state each key had at our last poll
        self._queue: dict[str, tuple[TaskRequest, int]] = {}  # waiting for GPUs: lock fd
        self._gpu_owner: dict[str, str] = {}  # gpu id -> key of the task using it
        self._gpus_scanned = False
        self._rr = 0
        self._killed: set[str] = set()  # keys already sent SIGKILL after a timeout
        self._pidfd_ok = hasattr(os, "pidfd_open")

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

    def capacity(self) -> int | None:
        slots = self.config.get("slots")
        return int(slots) if slots else (os.cpu_count() or 1)

    # -- paths and files -----------------------------------------------------------------

    def _dir(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ProviderError(f"local provider: invalid task key {key!r}")
        return self.tasks_dir / key

    def _spec(self, key: str) -> dict[str, Any]:
        spec = self._specs.get(key)
        if spec is None:
            text = _read_text(self._dir(key) / "spec.json")
            try:
                spec = json.loads(text) if text else {}
            except ValueError:
                spec = {}
            if spec.get("spawned"):
                self._specs[key] = spec  # immutable once the task runs
        return spec

    def _pid(self, key: str) -> int | None:
        pid = self._pids.get(key)
        if pid is not None:
            return pid
        text = _read_text(self._dir(key) / "pid")
        try:
            pid = int(text) if text and text.endswith("\n") else None
        except ValueError:
            return None
        if pid is not None and (self._dir(key) / "started").exists():
            self._pids[key] = pid  # final: a task is only started again before `started`
        return pid

    # -- status --------------------------------------------------------------------------

    def _status(self, key: str) -> TaskStatus:
        d = self._dir(key)
        if key in self._queue:
            return TaskStatus(TaskState.PENDING, message="waiting for a free GPU")
        try:
            names = set(os.listdir(d))  # one look instead of a probe per marker
        except (FileNotFoundError, NotADirectoryError):
            return TaskStatus(TaskState.LOST, message="no such task")
        exit_code: int | None = None
        if "exit" in names:
            text = _read_text(d / "exit")
            if text and text.endswith("\n"):  # else still being written
                with contextlib.suppress(ValueError):
                    exit_code = int(text)
        started_at = _mtime(d / "started") if "started" in names else None

        if "timedout" in names:
            try:
                limit = float(json.loads(_read_text(d / "timedout") or "")["timeout"])
            except (ValueError, KeyError, TypeError):
                limit = float(self._spec(key).get("timeout") or 0)
            message = f"timed out after {limit:g}s"
            if exit_code is None and self._running(key, d):
                return TaskStatus(TaskState.RUNNING, None, message + "; stopping", started_at)
            return TaskStatus(
                TaskState.FAILED, exit_code, message, started_at, _mtime(d / "timedout")
            )

        if exit_code is not None:
            finished_at = _mtime(d / "exit")
            if exit_code == 0:
                return TaskStatus(TaskState.SUCCEEDED, 0, "", started_at, finished_at)
            message = _signal_message(exit_code) or f"exited with status {exit_code}"
            return TaskStatus(TaskState.FAILED, exit_code, message, started_at, finished_at)

        if "error" in names:
            failure = _read_text(d / "error") or ""
            try:
                info = json.loads(failure)
                state, message = TaskState(info["state"]), str(info["message"])
            except (ValueError, KeyError, TypeError):
                state, message = TaskState.LOST, failure.strip()
            return TaskStatus(state, None, message, started_at, _mtime(d / "error"))

        if "lock" in names and self._running(key, d):
            if "queued" in names:
                return TaskStatus(TaskState.PENDING, message="waiting for a free GPU")
            return TaskStatus(TaskState.RUNNING, None, "", started_at)
        if "cancelled" in names:
            return TaskStatus(
                TaskState.CANCELLED, None, "cancelled", started_at, _mtime(d / "cancelled")
            )
        if started_at is None:
            return TaskStatus(TaskState.LOST, message="the task was never started")
        return TaskStatus(TaskState.LOST, None, "the task's process vanished", started_at)

    def _running(self, key: str, d: Path) -> bool:
        """Something holds the lock, and the task's process group still exists (a process
        that left the group with the fd cannot keep the task alive)."""
        return _lock_held(d / "lock") and _group_alive(self._pid(key))

    # -- submitting ----------------------------------------------------------------------

    def submit(self, request: TaskRequest) -> TaskHandle:
        key = request.key
        handle = TaskHandle(key, key)
        d = self._dir(key)
        with _os_errors(f"cannot submit task {key}"):
            _reap()
            self._start_queued()
            if not self._tasks_dir_made:
                private_files.make_dirs(self.tasks_dir)
                self._tasks_dir_made = True
            try:
                private_files.mkdir(d)
            except FileExistsError:
                if key in self._queue or self._has_outcome(d):
                    return handle
            lockfd = self._claim(d)
            if lockfd is None:
                return handle  # another process is starting or running it
            try:
                if self._has_outcome(d):
                    os.close(lockfd)
                    return handle
                _unlink(d / "queued", d / "error", d / "pid")
                self._specs.pop(key, None)
                self._pids.pop(key, None)
                n = self._gpus_wanted(request)
                gpus: list[str] = []
                if n:
                    allocated = None if self._queue else self._allocate(n, key)
                    if allocated is None:
                        self._write_spec(request, d, [], spawned=False)
                        _write_atomic(d / "queued", "")
                        self._queue[key] = (request, lockfd)
                        return handle
                    gpus = allocated
            except BaseException:
                os.close(lockfd)
                raise
            self._spawn(request, lockfd, gpus, queued=False)
        return handle

    @staticmethod
    def _has_outcome(d: Path) -> bool:
        """True once the task was started, stopped or failed to start (no restart then)."""
        return any((d / name).exists() for name in ("started", "exit", "cancelled", "error"))

    @staticmethod
    def _claim(d: Path) -> int | None:
        """Open and exclusively lock the task's lock file, or None if someone holds it.

        A status check holds a shared lock for microseconds, so retry briefly before
        concluding that another process owns the task."""
        fd = private_files.open_private(d / "lock", os.O_RDWR | os.O_CLOEXEC)
        give_up = time.monotonic() + _LOCK_RETRY
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    os.close(fd)
                    return None
                time.sleep(0.005)
            except BaseException:
                os.close(fd)
                raise

    @staticmethod
    def _gpus_wanted(request: TaskRequest) -> int:
        value = request.settings.get("gpus_per_task", 0)
        try:
            return max(0, int(value or 0))
        except (TypeError, ValueError) as exc:
            raise ProviderError(f'"gpus_per_task" must be an integer, not {value!r}') from exc

    def _workdir(self, request: TaskRequest, d: Path) -> Path:
        return Path(os.path.abspath(request.workdir)) if request.workdir else d

    def _write_spec(self, request: TaskRequest, d: Path, gpus: list[str], spawned: bool) -> None:
        now = time.time()
        command = request.command if isinstance(request.command, str) else list(request.command)
        hidden = request.sensitive
        spec = {
            "key": request.key,
            "experiment": request.experiment,
            "trial_number": request.trial_number,
            "task_name": request.task_name,
            "command": SENSITIVE if "command" in hidden else command,
            "workdir": SENSITIVE if "workdir" in hidden else str(self._workdir(request, d)),
            "env_names": sorted(request.env),  # values may be secret: never stored
            "timeout": request.timeout,
            "deadline": now + request.timeout if spawned and request.timeout else None,
            "model_dir": request.model_dir,
            "settings": {
                k: SENSITIVE if f"settings.{k}" in hidden else v
                for k, v in request.settings.items()
            },
            "tags": dict(request.tags),
            "gpus": gpus,
            "spawned": spawned,
            "submitted_at": now,
            "submitted_by_pid": os.getpid(),
        }
        _write_atomic(d / "spec.json", json.dumps(spec, indent=1, default=str) + "\n")

    def _env(self, request: TaskRequest, d: Path, gpus: list[str]) -> dict[str, str]:
        # The user's environment, as Terraform's local-exec passes it, minus TUNECTL_*:
        # those configure tunectl itself (TUNECTL_VAR_* may hold a sensitive variable's
        # value; TUNECTL_DEBUG, TUNECTL_CACHE_DIR, ...). A trial gets what its `env` says,
        # and the TUNECTL_* variables set below for it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
        env.update({str(k): str(v) for k, v in request.env.items()})
        env["TUNECTL_TRIAL_KEY"] = request.key
        env["TUNECTL_TASK_DIR"] = str(d)
        if request.model_dir:
            env["TUNECTL_MODEL_DIR"] = str(request.model_dir)
        if self.python:
            env["TUNECTL_PYTHON"] = self.python
        root = _tunectl_root()
        if root:
            old = env.get("PYTHONPATH", "")
            if old.split(os.pathsep)[0] != root:
                env["PYTHONPATH"] = root + (os.pathsep + old if old else "")
        if self.gpus:
            # The provider manages the GPUs: a task sees only the ones it was handed.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        env.setdefault("PYTHONUNBUFFERED", "1")  # Python output reaches out.log per line
        return env

    def _spawn(self, request: TaskRequest, lockfd: int, gpus: list[str], queued: bool) -> None:
        """Start the runner holding `lockfd` (always closed here)."""
        key = request.key
        d = self._dir(key)
        outfd = -1
        try:
            workdir = self._workdir(request, d)
            if isinstance(request.command, str):
                argv = ["/bin/sh", "-c", request.command]
            else:
                argv = [str(a) for a in request.command]
            # The configuration's faults, not the machine's: the task fails (a
            # ProviderError would make the engine submit it again and again).
            problem = (
                f"the working directory {SENSITIVE if 'workdir' in request.sensitive else workdir}"
                " does not exist"
                if not workdir.is_dir()
                else "the command is empty"
                if not argv
                else None
            )
            if problem:
                self._write_spec(request, d, [], spawned=False)
                _write_atomic(d / "out.log", f"tunectl: {problem}\n")
                self._fail(d, TaskState.FAILED, problem)
                self._release(gpus)
                return
            if request.model_dir:
                private_files.make_dirs(Path(request.model_dir))
            env = self._env(request, d, gpus)
            self._write_spec(request, d, gpus, spawned=True)
            self._note_files_before(request, d, workdir)
            # 0600 before the task writes its first byte.
            outfd = private_files.open_private(
                d / "out.log", os.O_WRONLY | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
            )
            _unlink(d / "queued")
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _RUNNER, str(d), str(GRACE), *argv],
                stdin=subprocess.DEVNULL,
                stdout=outfd,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env,
                start_new_session=True,
                pass_fds=(lockfd,),
                close_fds=True,
            )
        except OSError as exc:
            self._release(gpus)
            message = f"cannot start task {key}: {exc.strerror or exc}"
            if not queued:
                raise ProviderError(f"local provider: {message}") from exc
            with contextlib.suppress(OSError):
                self._fail(d, TaskState.LOST, message)
            return
        except BaseException:
            self._release(gpus)
            raise
        finally:
            if outfd >= 0:
                os.close(outfd)
            os.close(lockfd)
        _CHILDREN[proc.pid] = proc
        self._specs.pop(key, None)
        self._pids[key] = proc.pid
        _write_atomic(d / "pid", f"{proc.pid}\n")
        for gpu in gpus:
            self._gpu_owner[gpu] = key

    @staticmethod
    def _fail(d: Path, state: TaskState, message: str) -> None:
        _write_atomic(d / "error", json.dumps({"state": state.value, "message": message}))

    # -- GPUs ----------------------------------------------------------------------------

    def _allocate(self, n: int, key: str) -> list[str] | None:
        if n > len(self.gpus):
            raise ProviderError(
                f"task {key} wants {n} GPUs but the local provider has {len(self.gpus)}"
            )
        if not self._gpus_scanned:
            self._scan_gpus()
        for gpu, owner in list(self._gpu_owner.items()):
            if not _lock_held(self.tasks_dir / owner / "lock"):
                del self._gpu_owner[gpu]
        picked: list[str] = []
        count = len(self.gpus)
        for i in range(count):
            gpu = self.gpus[(self._rr + i) % count]
            if gpu not in self._gpu_owner:
                picked.append(gpu)
                if len(picked) == n:
                    self._rr = (self.gpus.index(gpu) + 1) % count
                    return picked
        return None

    def _scan_gpus(self) -> None:
        """Learn which GPUs running tasks (perhaps of a previous tunectl) hold."""
        self._gpus_scanned = True
        try:
            entries = list(os.scandir(self.tasks_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            d = Path(entry.path)
            if (d / "exit").exists() or not _lock_held(d / "lock"):
                continue
            try:
                spec = json.loads((d / "spec.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for gpu in spec.get("gpus") or []:
                if str(gpu) in self.gpus:
                    self._gpu_owner[str(gpu)] = entry.name

    def _release(self, gpus: list[str]) -> None:
        for gpu in gpus:
            self._gpu_owner.pop(gpu, None)

    def _start_queued(self) -> None:
        for key in [k for k in self._queue if (self._dir(k) / "cancelled").exists()]:
            os.close(self._queue.pop(key)[1])  # cancelled by another tunectl process
        while self._queue:
            key, (request, lockfd) = next(iter(self._queue.items()))
            gpus = self._allocate(self._gpus_wanted(request), key)
            if gpus is None:
                return
            del self._queue[key]
            self._spawn(request, lockfd, gpus, queued=True)

    # -- watching ------------------------------------------------------------------------

    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        out: dict[str, TaskStatus] = {}
        with _os_errors("cannot poll tasks"):
            _reap()
            self._start_queued()
            for handle in handles:
                status = self._status(handle.id)
                if status.state is TaskState.RUNNING:
                    status = self._enforce_timeout(handle.id, status)
                if status.state.terminal:
                    self._forget_pidfd(handle.id)
                self._seen[handle.id] = status.state
                out[handle.id] = status
        return out

    def _enforce_timeout(self, key: str, status: TaskStatus) -> TaskStatus:
        d = self._dir(key)
        marker = _read_text(d / "timedout")
        if marker is None:
            spec = self._spec(key)
            deadline = spec.get("deadline")
            if not deadline or time.time() < float(deadline):
                return status
            _write_atomic(
                d / "timedout", json.dumps({"timeout": spec.get("timeout"), "at": time.time()})
            )
            self._signal(key, signal.SIGTERM)
            # Most tasks die at once; give them a moment so the answer is final.
            self._wait_lock_free(key, 0.1)
        else:
            try:
                at = float(json.loads(marker)["at"])
            except (ValueError, KeyError, TypeError):
                at = _mtime(d / "timedout") or 0.0
            if time.time() - at >= GRACE and key not in self._killed:
                self._killed.add(key)
                self._signal(key, signal.SIGKILL)
                self._wait_lock_free(key, 0.1)
        _reap()
        return self._status(key)

    def wait(self, handles: Sequence[TaskHandle], timeout: float) -> None:
        end = time.monotonic() + max(0.0, timeout)
        with _os_errors("cannot wait for tasks"):
            _reap()
            watch: dict[int, str] = {}  # pidfd -> key
            wake = end  # earliest moment we must return without a process event
            now_wall = time.time()
            # What the caller knows: the state at our last poll (else the current one).
            known: dict[str, TaskState] = {}
            for handle in handles:
                key = handle.id
                status = self._status(key)
                known[key] = self._seen.get(key, status.state)
                if status.state is not known[key]:
                    return  # changed since the last poll
                if status.state.terminal:
                    continue
                if status.state is TaskState.PENDING:
                    if key in self._queue:
                        continue  # woken by a GPU holder's exit (watched below)
                    wake = min(wake, time.monotonic() + _STRAY_RECHECK)
                    continue
                spec = self._spec(key)
                deadline = spec.get("deadline")
                if deadline:
                    if (d := self._dir(key) / "timedout").exists():
                        at = _mtime(d) or now_wall
                        wake = min(wake, time.monotonic() + max(0.0, at + GRACE - now_wall))
                    else:
                        due = float(deadline) - now_wall
                        wake = min(wake, time.monotonic() + max(0.0, due) + 0.001)
                fd = self._pidfd(key)
                if fd is None:
                    wake = min(wake, time.monotonic() + _STRAY_RECHECK)
                else:
                    watch[fd] = key
            if self._queue:
                for key in set(self._gpu_owner.values()):
                    fd = self._pidfd(key)
                    if fd is not None:
                        watch[fd] = key
                    else:
                        wake = min(wake, time.monotonic() + _STRAY_RECHECK)
            if not handles:
                return
            if not self._pidfd_ok:
                self._sleep_until(known, wake)
                return
            poller = select.poll()
            for fd in watch:
                poller.register(fd, select.POLLIN)
            # A pidfd that is already readable while the task still runs means the
            # runner died and something else holds the lock: watch that one by polling.
            for fd, _ in poller.poll(0):
                key = watch[fd]
                _reap()
                if self._status(key).state is not known.get(key, TaskState.RUNNING):
                    return
                poller.unregister(fd)
                wake = min(wake, time.monotonic() + _STRAY_RECHECK)
            remaining = wake - time.monotonic()
            if remaining > 0:
                poller.poll(max(1, int(remaining * 1000 + 0.999)))
            _reap()

    def _sleep_until(self, known: Mapping[str, TaskState], wake: float) -> None:
        """Without pidfds: look every 50 ms until a state changes or `wake` comes."""
        while True:
            remaining = wake - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.05, remaining))
            _reap()
            if self._queue and any(
                not _lock_held(self.tasks_dir / owner / "lock")
                for owner in set(self._gpu_owner.values())
            ):
                return  # a GPU became free: the caller's poll starts a waiting task
            for key, state in known.items():
                if self._status(key).state is not state:
                    return

    def _pidfd(self, key: str) -> int | None:
        """A cached pidfd for the task's runner, or None when it cannot be watched."""
        if not self._pidfd_ok:
            return None
        pid = self._pid(key)
        if pid is None:
            return None
        cached = self._pidfds.get(key)
        if cached is not None:
            if cached[0] == pid:
                return cached[1]
            self._forget_pidfd(key)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError as exc:
            if exc.errno == errno.ENOSYS:  # kernel before 5.3: poll instead
                self._pidfd_ok = False
                return None
            if exc.errno in (errno.EPERM, errno.EINVAL, errno.EMFILE):
                return None
            raise
        try:
            same = os.getpgid(pid) == pid  # the runner leads its group; a reused pid won't
        except ProcessLookupError:
            same = True  # exited since pidfd_open: the fd is readable, which is right
        if not same:
            os.close(fd)
            return None
        self._pidfds[key] = (pid, fd)
        return fd

    def _forget_pidfd(self, key: str) -> None:
        cached = self._pidfds.pop(key, None)
        if cached is not None:
            with contextlib.suppress(OSError):
                os.close(cached[1])

    # -- logs and files ------------------------------------------------------------------

    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        with _os_errors(f"cannot read the output of task {handle.id}"):
            return self._read_lines(handle.id, self._dir(handle.id) / "out.log", cursor)

    def read_file(self, handle: TaskHandle, path: str, cursor: int) -> LogChunk:
        key = handle.id
        with _os_errors(f"cannot read {path} of task {key}"):
            workdir = self._spec(key).get("workdir") or str(self._dir(key))
            target = Path(workdir) / path
            return self._read_lines(key, target, self._past_old_lines(key, path, target, cursor))

    @staticmethod
    def _note_files_before(request: TaskRequest, d: Path, workdir: Path) -> None:
        """Record which metrics files exist before the task starts, and their size, so
        `read_file` never hands out what was there before (see `_past_old_lines`)."""
        before = {}
        for path in request.metrics_files:
            try:
                st = os.stat(workdir / path)
            except OSError:
                continue
            before[path] = [st.st_dev, st.st_ino, st.st_size]
        if before:
            _write_atomic(d / "files_before.json", json.dumps(before))

    def _past_old_lines(self, key: str, path: str, target: Path, cursor: int) -> int:
        """Where the first read of a metrics file starts: past what the same file held
        when the task started (a retry's or an earlier run's lines), at 0 otherwise.

        A file replaced since (another inode) or already shorter (rewritten in place) is
        read from its start.
        """
        if cursor != 0:
            return cursor
        try:
            before = json.loads(_read_text(self._dir(key) / "files_before.json") or "{}")
            dev, ino, size = before[path]
            st = os.stat(target)
        except (OSError, ValueError, KeyError, TypeError):
            return cursor
        if (st.st_dev, st.st_ino) == (dev, ino) and st.st_size >= size:
            return int(size)
        return cursor

    def _read_lines(self, key: str, path: Path, cursor: int) -> LogChunk:
        """Complete lines after `cursor`, at most `_MAX_READ` bytes of them. A line longer
        than that comes in `partial` pieces, so a read never holds more than the bound."""

        def read() -> bytes:
            try:
                with open(path, "rb") as f:
                    f.seek(cursor)
                    return f.read(_MAX_READ)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return b""

        data = read()
        end = data.rfind(b"\n") + 1
        partial = False
        if end < len(data) and len(data) < _MAX_READ:
            # An unterminated last line: complete only once the task has ended. Re-read
            # after checking, so nothing written in between is split off.
            if self._status(key).state.terminal:
                data = read()
                end = len(data)
        elif end == 0 and data:
            end, partial = len(data), True  # a line longer than a read: hand it out in pieces
        if end == 0:
            return LogChunk([], cursor)
        text = data[:end].decode("utf-8", errors="replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        return LogChunk(lines, cursor + end, partial)

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
                with _os_errors(f"cannot cancel task {handle.id}"):
                    if self._begin_cancel(handle.id):
                        stopping.append(handle.id)
            except ProviderError as exc:
                errors[handle.id] = exc
        for sig, seconds in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 1.0)):
            give_up = time.monotonic() + seconds
            left = []
            for key in stopping:
                try:
                    with _os_errors(f"cannot cancel task {key}"):
                        if not self._wait_lock_free(key, give_up - time.monotonic()):
                            left.append(key)
                except ProviderError as exc:
                    errors[key] = exc
            if sig == signal.SIGKILL or not left:
                break
            stopping = []
            for key in left:
                try:
                    with _os_errors(f"cannot cancel task {key}"):
                        self._signal(key, signal.SIGKILL)
                        stopping.append(key)
                except ProviderError as exc:
                    errors[key] = exc
        for handle in handles:
            self._forget_pidfd(handle.id)
        return errors

    def _begin_cancel(self, key: str) -> bool:
        """Mark the task cancelled and send it SIGTERM; False when there is nothing to
        wait for."""
        d = self._dir(key)
        if not d.is_dir():
            return False
        queued = self._queue.pop(key, None)
        if queued is not None:
            _write_atomic(d / "cancelled", f"{time.time()}\n")
            os.close(queued[1])
            return False
        _reap()
        if self._status(key).state.terminal:
            return False
        _write_atomic(d / "cancelled", f"{time.time()}\n")
        if (d / "queued").exists() and self._pid(key) is None:
            return False  # waits for a GPU in another tunectl process, which drops it
        if self._pid(key) is None and _lock_held(d / "lock"):
            # Spawned by a process that died before recording the pid (a tiny window).
            if not self._wait_lock_free(key, 1.0):
                raise ProviderError(f"task {key} runs but its process id is unknown")
        self._signal(key, signal.SIGTERM)
        return True

    def _signal(self, key: str, sig: int) -> None:
        """SIGTERM goes to the runner alone, which hands it once to every process of the
        task; SIGKILL goes to every descendant first, then to the runner's group (a
        descendant outliving the runner would be reparented out of reach)."""
        pid = self._pid(key)
        if pid is None:
            return
        try:
            if sig == signal.SIGKILL:
                give_up = time.monotonic() + 1.0
                while (rest := descendants(pid)) and time.monotonic() < give_up:
                    signal_all(rest, sig)
                    time.sleep(0.005)
                os.killpg(pid, sig)
            elif _is_runner(pid):
                os.kill(pid, sig)
            else:
                os.killpg(pid, sig)  # started by a tunectl before the runner existed
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise ProviderError(f"not allowed to signal task {key} (pid {pid})") from exc

    def _wait_lock_free(self, key: str, seconds: float) -> bool:
        """Wait until the task's lock is free or its process group is gone."""
        d = self._dir(key)
        pid = self._pid(key)
        give_up = time.monotonic() + seconds
        delay = 0.002
        while True:
            _reap()
            if not _lock_held(d / "lock") or not _group_alive(pid):
                return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def cleanup(self, handle: TaskHandle) -> None:
        key = handle.id
        d = self._dir(key)
        with _os_errors(f"cannot remove the files of task {key}"):
            if not d.is_dir():
                return
            state = self._status(key).state
            if not state.terminal:
                raise ProviderError(f"task {key} is still {state.value}; cancel it first")
            self._forget_pidfd(key)
            self._specs.pop(key, None)
            self._pids.pop(key, None)
            self._seen.pop(key, None)
            self._killed.discard(key)
            shutil.rmtree(d)

    def close(self) -> None:
        for key in list(self._pidfds):
            self._forget_pidfd(key)
        # Tasks waiting for a GPU cannot outlive this process: they were never started,
        # and a later submit of the same key starts them.
        for _, lockfd in self._queue.values():
            with contextlib.suppress(OSError):
                os.close(lockfd)
        self._queue.clear()
        _reap()
