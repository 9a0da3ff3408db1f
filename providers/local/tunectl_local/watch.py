"""Waiting for tasks: sleep until a task's state may have changed, without busy polling.

Each running task's runner is watched through a pidfd (Linux 5.3+), which becomes
readable when the runner exits, whichever tunectl process started it. Where a task cannot
be watched that way (no pidfd support, a runner that died while something else still
holds the lock, a pid that is not ours to open) the wait wakes every `STRAY_RECHECK`
seconds instead. It also wakes for a task's deadline and for the end of a timeout's
grace period, so `poll` can enforce them, and when a GPU holder ends while tasks wait in
this process's GPU queue.

A wait only ever returns early or late; it changes nothing, so it holds no crash-safety
concern. The pidfds are cached per task and closed when the task ends or is forgotten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from collections.abc import Callable, Mapping, Sequence

from tunectl.providers.base import TaskState, TaskStatus
from tunectl_local import stop
from tunectl_local.gpus import GpuQueue
from tunectl_local.spawn import reap
from tunectl_local.taskdir import TaskFiles, mtime

STRAY_RECHECK = 0.25  # poll interval when a task cannot be watched through a pidfd


class Watcher:
    """The pidfds of the runners this provider watches."""

    def __init__(self, files: TaskFiles, queue: GpuQueue) -> None:
        self.files = files
        self.queue = queue
        self.pidfd_ok = hasattr(os, "pidfd_open")  # False: wake by polling instead
        self._pidfds: dict[str, tuple[int, int]] = {}  # key -> (pid, pidfd)

    def wait(
        self,
        keys: Sequence[str],
        timeout: float,
        status: Callable[[str], TaskStatus],
        seen: Mapping[str, TaskState],
    ) -> None:
        """Return when a task of `keys` changed state since the last poll (`seen`), may
        have, or `timeout` passed."""
        end = time.monotonic() + max(0.0, timeout)
        reap()
        watch: dict[int, str] = {}  # pidfd -> key
        wake = end  # earliest moment we must return without a process event
        now_wall = time.time()
        # What the caller knows: the state at our last poll (else the current one).
        known: dict[str, TaskState] = {}
        for key in keys:
            current = status(key)
            known[key] = seen.get(key, current.state)
            if current.state is not known[key]:
                return  # changed since the last poll
            if current.state.terminal:
                continue
            if current.state is TaskState.PENDING:
                if key in self.queue.waiting:
                    continue  # woken by a GPU holder's exit (watched below)
                wake = min(wake, time.monotonic() + STRAY_RECHECK)
                continue
            deadline = self.files.spec(key).get("deadline")
            if deadline:
                if (d := self.files.dir(key) / "timedout").exists():
                    at = mtime(d) or now_wall
                    wake = min(wake, time.monotonic() + max(0.0, at + stop.GRACE - now_wall))
                else:
                    due = float(deadline) - now_wall
                    wake = min(wake, time.monotonic() + max(0.0, due) + 0.001)
            fd = self.pidfd(key)
            if fd is None:
                wake = min(wake, time.monotonic() + STRAY_RECHECK)
            else:
                watch[fd] = key
        if self.queue.waiting:
            for key in self.queue.holders():
                fd = self.pidfd(key)
                if fd is not None:
                    watch[fd] = key
                else:
                    wake = min(wake, time.monotonic() + STRAY_RECHECK)
        if not keys:
            return
        if not self.pidfd_ok:
            self._sleep_until(known, wake, status)
            return
        poller = select.poll()
        for fd in watch:
            poller.register(fd, select.POLLIN)
        # A pidfd that is already readable while the task still runs means the
        # runner died and something else holds the lock: watch that one by polling.
        for fd, _ in poller.poll(0):
            key = watch[fd]
            reap()
            if status(key).state is not known.get(key, TaskState.RUNNING):
                return
            poller.unregister(fd)
            wake = min(wake, time.monotonic() + STRAY_RECHECK)
        remaining = wake - time.monotonic()
        if remaining > 0:
            poller.poll(max(1, int(remaining * 1000 + 0.999)))
        reap()

    def _sleep_until(
        self,
        known: Mapping[str, TaskState],
        wake: float,
        status: Callable[[str], TaskStatus],
    ) -> None:
        """Without pidfds: look every 50 ms until a state changes or `wake` comes."""
        while True:
            remaining = wake - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.05, remaining))
            reap()
            if self.queue.freed():
                return  # a GPU became free: the caller's poll starts a waiting task
            for key, state in known.items():
                if status(key).state is not state:
                    return

    def pidfd(self, key: str) -> int | None:
        """A cached pidfd for the task's runner, or None when it cannot be watched."""
        if not self.pidfd_ok:
            return None
        pid = self.files.pid(key)
        if pid is None:
            return None
        cached = self._pidfds.get(key)
        if cached is not None:
            if cached[0] == pid:
                return cached[1]
            self.forget(key)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError as exc:
            if exc.errno == errno.ENOSYS:  # kernel before 5.3: poll instead
                self.pidfd_ok = False
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

    def forget(self, key: str) -> None:
        """Close the task's pidfd, if one is open."""
        cached = self._pidfds.pop(key, None)
        if cached is not None:
            with contextlib.suppress(OSError):
                os.close(cached[1])

    def close(self) -> None:
        for key in list(self._pidfds):
            self.forget(key)
