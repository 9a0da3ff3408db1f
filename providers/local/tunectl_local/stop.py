"""Stopping tasks: cancel, timeouts, and the signals and waits both use.

A task is stopped with SIGTERM, then SIGKILL after `GRACE` seconds. SIGTERM goes to the
runner, which hands it once to every process of the task; SIGKILL cannot be caught, so it
goes to every descendant of the runner first (found through /proc), then to the runner's
process group.

Crash safety: the intent is written first (`cancelled`, or `timedout` with its time), then
the signal sent, so a tunectl killed in between, or another one polling meanwhile, reports
the task as cancelled or timed out rather than failed, and a later poll finishes the
escalation from the marker's time. A task is stopped when its lock is free (its runner
has ended) or its process group is gone; nothing else is trusted.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Sequence

from tunectl.providers.base import ProviderError, TaskStatus
from tunectl_local.gpus import GpuQueue
from tunectl_local.runner import descendants, signal_all
from tunectl_local.spawn import is_runner, reap
from tunectl_local.taskdir import (
    TaskFiles,
    group_alive,
    lock_held,
    mtime,
    os_errors,
    read_text,
    write_atomic,
)

GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def signal_task(files: TaskFiles, key: str, sig: int) -> None:
    """SIGTERM goes to the runner alone, which hands it once to every process of the
    task; SIGKILL goes to every descendant first, then to the runner's group (a
    descendant outliving the runner would be reparented out of reach)."""
    pid = files.pid(key)
    if pid is None:
        return
    try:
        if sig == signal.SIGKILL:
            give_up = time.monotonic() + 1.0
            while (rest := descendants(pid)) and time.monotonic() < give_up:
                signal_all(rest, sig)
                time.sleep(0.005)
            os.killpg(pid, sig)
        elif is_runner(pid):
            os.kill(pid, sig)
        else:
            os.killpg(pid, sig)  # started by a tunectl before the runner existed
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise ProviderError(f"not allowed to signal task {key} (pid {pid})") from exc


def wait_lock_free(files: TaskFiles, key: str, seconds: float) -> bool:
    """Wait until the task's lock is free or its process group is gone."""
    d = files.dir(key)
    pid = files.pid(key)
    give_up = time.monotonic() + seconds
    delay = 0.002
    while True:
        reap()
        if not lock_held(d / "lock") or not group_alive(pid):
            return True
        if time.monotonic() >= give_up:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def enforce_timeout(files: TaskFiles, key: str, killed: set[str]) -> bool:
    """Stop a running task whose deadline passed: mark it and send SIGTERM, then SIGKILL
    once GRACE has passed since the mark (`killed`: keys already sent SIGKILL). False when
    the deadline has not passed (the caller's status stands)."""
    d = files.dir(key)
    marker = read_text(d / "timedout")
    if marker is None:
        spec = files.spec(key)
        deadline = spec.get("deadline")
        if not deadline or time.time() < float(deadline):
            return False
        marker = json.dumps({"timeout": spec.get("timeout"), "at": time.time()})
        write_atomic(d / "timedout", marker)
        signal_task(files, key, signal.SIGTERM)
        # Most tasks die at once; give them a moment so the answer is final.
        wait_lock_free(files, key, 0.1)
    else:
        try:
            at = float(json.loads(marker)["at"])
        except (ValueError, KeyError, TypeError):
            at = mtime(d / "timedout") or 0.0
        if time.time() - at >= GRACE and key not in killed:
            killed.add(key)
            signal_task(files, key, signal.SIGKILL)
            wait_lock_free(files, key, 0.1)
    reap()
    return True


def begin_cancel(
    files: TaskFiles, queue: GpuQueue, key: str, status: Callable[[str], TaskStatus]
) -> bool:
    """Mark the task cancelled and send it SIGTERM; False when there is nothing to
    wait for."""
    d = files.dir(key)
    if not d.is_dir():
        return False
    lockfd = queue.take(key)
    if lockfd is not None:
        write_atomic(d / "cancelled", f"{time.time()}\n")
        os.close(lockfd)
        return False
    reap()
    if status(key).state.terminal:
        return False
    write_atomic(d / "cancelled", f"{time.time()}\n")
    if (d / "queued").exists() and files.pid(key) is None:
        return False  # waits for a GPU in another tunectl process, which drops it
    if files.pid(key) is None and lock_held(d / "lock"):
        # Spawned by a process that died before recording the pid (a tiny window).
        if not wait_lock_free(files, key, 1.0):
            raise ProviderError(f"task {key} runs but its process id is unknown")
    signal_task(files, key, signal.SIGTERM)
    return True


def stop_together(files: TaskFiles, keys: Sequence[str], errors: dict[str, ProviderError]) -> None:
    """Wait for the signalled tasks `keys` together: one shared grace period, then SIGKILL
    to those still running; n tasks that ignore SIGTERM take GRACE, not n x GRACE.
    Failures go to `errors` by key."""
    stopping = list(keys)
    for sig, seconds in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 1.0)):
        give_up = time.monotonic() + seconds
        left = []
        for key in stopping:
            try:
                with os_errors(f"cannot cancel task {key}"):
                    if not wait_lock_free(files, key, give_up - time.monotonic()):
                        left.append(key)
            except ProviderError as exc:
                errors[key] = exc
        if sig == signal.SIGKILL or not left:
            break
        stopping = []
        for key in left:
            try:
                with os_errors(f"cannot cancel task {key}"):
                    signal_task(files, key, signal.SIGKILL)
                    stopping.append(key)
            except ProviderError as exc:
                errors[key] = exc
