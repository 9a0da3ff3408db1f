"""Starting a task: claiming its lock, its environment, and spawning its runner.

Each task runs under `runner.py` (a subreaper that ends every descendant, see there),
started by the interpreter running tunectl, isolated and without site-packages (-I -S):
one interpreter start per task (at best 11.6 ms per `true` task on the shared test
machine, against 2.3 ms for the /bin/sh wrapper it replaced; docs/operations.md, Faults).
Its argv is [task dir, grace, command argv...]: argument values never pass through a
shell, and no shell builtin can shadow an exec-form command.

The handshake, and why it is crash-safe:

1. the parent takes the task's `lock` (LOCK_EX, `claim`); a second tunectl that finds it
   held adopts the task instead of starting it again;
2. it writes `spec.json`, opens `out.log` 0600 and spawns the runner as a session leader
   with the lock fd inherited, then closes its own copy: the lock is now held exactly as
   long as the runner (or something it started that kept the fd) lives;
3. it records the runner's pid in `pid`; the runner touches `started` before running the
   command and writes `exit` once everything the command started has ended.

A tunectl killed anywhere in between leaves a directory whose status is still well
defined (`taskdir.TaskFiles.status`): never started, running, or ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from tunectl import private_files
from tunectl.providers.base import ProviderError, TaskRequest, TaskState
from tunectl_local import reading
from tunectl_local.taskdir import (
    SENSITIVE,
    TaskFiles,
    fail,
    unlink,
    workdir,
    write_atomic,
    write_spec,
)

RUNNER = str(Path(__file__).with_name("runner.py"))
# The runner is imported, not run as a script: a script is compiled on every start (as
# long as the rest of the runner's own start-up), an imported module is loaded from its
# cached bytecode. RUNNER stays in the argv, so `is_runner` recognises runners started
# either way (a task adopted from an earlier tunectl was started as a script).
_BOOT = (
    "import sys;sys.path.append(sys.argv[1].rpartition('/')[0]);"
    "import runner;runner.main(sys.argv[1:])"
)
LOCK_RETRY = 0.2  # how long `claim` retries a lock a status check may hold briefly

# Popen objects of the runners this process started, shared by every provider instance so
# a new instance (a simulated restart) still reaps them: pid -> Popen.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def reap() -> None:
    """Collect the runners of this process that have ended (no zombies accumulate)."""
    for pid, proc in list(CHILDREN.items()):
        if proc.poll() is not None:
            del CHILDREN[pid]


@functools.cache
def tunectl_root() -> str | None:
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


def is_runner(pid: int) -> bool:
    """True if `pid` is a task runner leading its own process group (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return os.getpgid(pid) == pid and RUNNER.encode() in argv
    except (OSError, ProcessLookupError):
        return False


def claim(d: Path) -> int | None:
    """Open and exclusively lock the task's lock file, or None if someone holds it.

    A status check holds a shared lock for microseconds, so retry briefly before
    concluding that another process owns the task."""
    fd = private_files.open_private(d / "lock", os.O_RDWR | os.O_CLOEXEC)
    give_up = time.monotonic() + LOCK_RETRY
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


def task_env(
    request: TaskRequest, d: Path, gpus: list[str], python: str | None, managed_gpus: bool
) -> dict[str, str]:
    """The task's environment; `managed_gpus`: the provider hands out GPUs."""
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
    if python:
        env["TUNECTL_PYTHON"] = python
    root = tunectl_root()
    if root:
        # tunectl (for tunectl.report), then the modules trials import by another
        # project's name (`import nni`: tunectl/trialpath).
        shims = str(Path(root) / "tunectl" / "trialpath")
        old = env.get("PYTHONPATH", "")
        if old.split(os.pathsep)[:2] != [root, shims]:
            env["PYTHONPATH"] = os.pathsep.join([root, shims, *([old] if old else [])])
    if managed_gpus:
        # The provider manages the GPUs: a task sees only the ones it was handed.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    env.setdefault("PYTHONUNBUFFERED", "1")  # Python output reaches out.log per line
    return env


def spawn(
    files: TaskFiles,
    request: TaskRequest,
    lockfd: int,
    gpus: list[str],
    *,
    python: str | None,
    managed_gpus: bool,
    grace: float,
    queued: bool,
) -> int | None:
    """Start the runner holding `lockfd` (always closed here); its pid, or None when the
    task could not start (then its `error` says why). A task that was `queued` for GPUs
    records an OS failure to start instead of raising it (no caller waits for it)."""
    key = request.key
    d = files.dir(key)
    outfd = -1
    try:
        cwd = workdir(request, d)
        if isinstance(request.command, str):
            argv = ["/bin/sh", "-c", request.command]
        else:
            argv = [str(a) for a in request.command]
        # The configuration's faults, not the machine's: the task fails (a
        # ProviderError would make the engine submit it again and again).
        problem = (
            f"the working directory {SENSITIVE if 'workdir' in request.sensitive else cwd}"
            " does not exist"
            if not cwd.is_dir()
            else "the command is empty"
            if not argv
            else None
        )
        if problem:
            write_spec(request, d, [], spawned=False)
            write_atomic(d / "out.log", f"tunectl: {problem}\n")
            fail(d, TaskState.FAILED, problem)
            return None
        if request.model_dir:
            private_files.make_dirs(Path(request.model_dir))
        env = task_env(request, d, gpus, python, managed_gpus)
        write_spec(request, d, gpus, spawned=True)
        reading.note_files_before(request, d, cwd)
        # 0600 before the task writes its first byte.
        outfd = private_files.open_private(
            d / "out.log", os.O_WRONLY | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
        )
        unlink(d / "queued")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, RUNNER, str(d), str(grace), *argv],
            stdin=subprocess.DEVNULL,
            stdout=outfd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            pass_fds=(lockfd,),
            close_fds=True,
        )
    except OSError as exc:
        message = f"cannot start task {key}: {exc.strerror or exc}"
        if not queued:
            raise ProviderError(f"local provider: {message}") from exc
        with contextlib.suppress(OSError):
            fail(d, TaskState.LOST, message)
        return None
    finally:
        if outfd >= 0:
            os.close(outfd)
        os.close(lockfd)
    CHILDREN[proc.pid] = proc
    files.record_pid(key, proc.pid)
    return proc.pid
