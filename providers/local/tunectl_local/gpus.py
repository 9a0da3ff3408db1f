"""The GPU queue: hands the configured GPUs out, each to one running task at a time.

A task that wants GPUs (`gpus_per_task`) while too few are free waits here, in the
process that submitted it, holding its task lock (so no other tunectl starts it) with a
`queued` marker in its directory; it is spawned by a later `submit`, `poll` or `wait` of
the same provider once enough GPUs are free, in submission order.

Crash safety: who holds a GPU is known from the task directories alone: a task holds the
GPUs listed in its `spec.json` while its lock is held, so a restarted tunectl learns them
by scanning (`scan`), and a GPU is free again as soon as its holder's lock is. A waiting
task cannot outlive this process: it was never started, its lock goes with the process,
and a later submit of the same key starts it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from tunectl.providers.base import ProviderError, TaskRequest
from tunectl_local.taskdir import lock_held


def gpus_wanted(request: TaskRequest) -> int:
    value = request.settings.get("gpus_per_task", 0)
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError) as exc:
        raise ProviderError(f'"gpus_per_task" must be an integer, not {value!r}') from exc


class GpuQueue:
    """GPU ids and their holders, and the tasks of this process waiting for GPUs."""

    def __init__(self, gpus: list[str], tasks_dir: Path) -> None:
        self.gpus = gpus
        self.tasks_dir = tasks_dir
        self.waiting: dict[str, tuple[TaskRequest, int]] = {}  # key -> (request, lock fd)
        self._owner: dict[str, str] = {}  # gpu id -> key of the task using it
        self._scanned = False
        self._rr = 0

    def allocate(self, n: int, key: str) -> list[str] | None:
        """`n` free GPUs for task `key`, round-robin, or None when too few are free."""
        if n > len(self.gpus):
            raise ProviderError(
                f"task {key} wants {n} GPUs but the local provider has {len(self.gpus)}"
            )
        if not self._scanned:
            self.scan()
        for gpu, owner in list(self._owner.items()):
            if not lock_held(self.tasks_dir / owner / "lock"):
                del self._owner[gpu]
        picked: list[str] = []
        count = len(self.gpus)
        for i in range(count):
            gpu = self.gpus[(self._rr + i) % count]
            if gpu not in self._owner:
                picked.append(gpu)
                if len(picked) == n:
                    self._rr = (self.gpus.index(gpu) + 1) % count
                    return picked
        return None

    def scan(self) -> None:
        """Learn which GPUs running tasks (perhaps of a previous tunectl) hold."""
        self._scanned = True
        try:
            entries = list(os.scandir(self.tasks_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            d = Path(entry.path)
            if (d / "exit").exists() or not lock_held(d / "lock"):
                continue
            try:
                spec = json.loads((d / "spec.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for gpu in spec.get("gpus") or []:
                if str(gpu) in self.gpus:
                    self._owner[str(gpu)] = entry.name

    def hold(self, gpus: list[str], key: str) -> None:
        """Task `key` was spawned with `gpus`."""
        for gpu in gpus:
            self._owner[gpu] = key

    def release(self, gpus: list[str]) -> None:
        for gpu in gpus:
            self._owner.pop(gpu, None)

    def holders(self) -> set[str]:
        """Keys of the tasks known to hold GPUs."""
        return set(self._owner.values())

    def freed(self) -> bool:
        """True when a task waits and a GPU holder's lock is free (it can start now)."""
        return bool(self.waiting) and any(
            not lock_held(self.tasks_dir / owner / "lock") for owner in self.holders()
        )

    def enqueue(self, request: TaskRequest, lockfd: int) -> None:
        self.waiting[request.key] = (request, lockfd)

    def take(self, key: str) -> int | None:
        """Remove a waiting task; its lock fd (the caller closes it), None if not waiting."""
        queued = self.waiting.pop(key, None)
        return None if queued is None else queued[1]

    def ready(self) -> Iterator[tuple[TaskRequest, int, list[str]]]:
        """The waiting tasks that can start now, in order, with their lock fd and GPUs.

        The caller spawns each (and `hold`s its GPUs) before asking for the next. Tasks
        cancelled by another tunectl process meanwhile are dropped."""
        for key in [k for k in self.waiting if (self.tasks_dir / k / "cancelled").exists()]:
            os.close(self.waiting.pop(key)[1])
        while self.waiting:
            key, (request, lockfd) = next(iter(self.waiting.items()))
            gpus = self.allocate(gpus_wanted(request), key)
            if gpus is None:
                return
            del self.waiting[key]
            yield request, lockfd, gpus

    def close(self) -> None:
        """Drop the waiting tasks (never started; a later submit of the key starts them)."""
        for _, lockfd in self.waiting.values():
            with contextlib.suppress(OSError):
                os.close(lockfd)
        self.waiting.clear()
