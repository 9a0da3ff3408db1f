"""The apply loop: drive every experiment's trials to completion, one checkpoint per step.

Order of writes (what makes `kill -9` at any moment safe):

1. a trial is recorded with its parameters before anything is submitted;
2. its task is recorded as `submitting`, with a key derived from (lineage, experiment,
   generation, trial, task, attempt), before the provider is called;
3. the provider's `submit` is idempotent on that key, so a restarted apply simply submits
   every `submitting` task again and gets the existing one back;
4. a pruned or stopped trial is marked in the state before its task is cancelled; on
   restart, active tasks of ended trials are cancelled (nothing is left unowned).

The search engine (Optuna) is rebuilt from the state, never the other way round.

No call is retried here: providers and storage retry their own transient faults
(`tunectl.retry`); a submission that still fails is taken up on a later pass, and the loop
waits only between passes.

This module is the outer loop (`Reconciler`); each experiment is a `Runner`
(`tunectl.engine.runner`), which submits through `tunectl.engine.submission` and takes
results in through `tunectl.engine.outcomes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tunectl.engine.notify import GRACE
from tunectl.engine.runner import Runner
from tunectl.providers.base import Provider, TaskHandle


@dataclass
class LoopOptions:
    once: bool = False
    tick: float = 0.5  # longest wait between passes while tasks run (metrics latency)
    # Providers that cannot signal changes are polled adaptively: from poll_min, doubling
    # while nothing changes, up to poll_max; back to poll_min as soon as something does.
    poll_min: float = 0.5
    poll_max: float = 10.0


class Reconciler:
    """Runs several experiments side by side until each is done (or `--once`)."""

    def __init__(
        self, runners: Sequence[Runner], options: LoopOptions, should_stop: Callable[[], bool]
    ):
        self.runners = list(runners)
        self.options = options
        self.should_stop = should_stop
        self._interval = options.poll_min

    def run(self) -> None:
        for runner in self.runners:
            runner.prepare()
        try:
            self._loop()
        finally:
            # Notifications still queued share one grace period, however many experiments.
            deadline = time.monotonic() + GRACE
            for runner in self.runners:
                runner.pause(grace=max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while True:
            before = sum(r.changes for r in self.runners)
            stopping = self.should_stop()
            # Everything that ended is taken in before free slots are counted, so a slot
            # freed in this pass is filled in this pass.
            ready = [runner for runner in self.runners if runner.refresh()]
            capacity = self._capacity()
            for runner in ready if not stopping else ():
                cap = capacity.get(id(runner.provider))
                launched = runner.launch(cap)
                if cap is not None:
                    capacity[id(runner.provider)] = cap - launched
            if stopping or self.options.once or all(r.finished or r.stranded for r in self.runners):
                return
            if sum(r.changes for r in self.runners) != before:
                self._interval = self.options.poll_min
            else:
                self._interval = min(self.options.poll_max, self._interval * 2)
            self._wait()

    def _capacity(self) -> dict[int, int | None]:
        """Free slots per provider instance (shared by every experiment using it)."""
        out: dict[int, int | None] = {}
        for runner in self.runners:
            limit = runner.provider.capacity()
            if limit is None:
                out[id(runner.provider)] = None
                continue
            used = sum(len(r.active) for r in self.runners if r.provider is runner.provider)
            out[id(runner.provider)] = max(0, limit - used)
        return out

    def _wait(self) -> None:
        by_provider: dict[int, tuple[Provider, list[TaskHandle]]] = {}
        for runner in self.runners:
            entry = by_provider.setdefault(id(runner.provider), (runner.provider, []))
            entry[1].extend(a.handle for a in runner.active.values())
        waiting = [(p, hs) for p, hs in by_provider.values() if hs]
        evented = [(p, hs) for p, hs in waiting if p.capabilities.events]
        timeout = self.options.tick if evented else self._interval
        if len(evented) < len(waiting):  # a polled provider is due at the current interval
            timeout = min(timeout, self._interval)
        retries = [at for r in self.runners if (at := r.next_retry()) is not None]
        if retries:  # wake for the earliest submission due
            timeout = max(0.0, min(timeout, min(retries) - time.time()))
        elif not waiting and not any(r.gate.closed for r in self.runners):
            timeout = min(timeout, 0.05)
        if not evented:
            time.sleep(timeout)
            return
        # Providers that signal changes wait for them (sharing the time when several do).
        share = timeout / len(evented)
        for provider, handles in evented:
            provider.wait(handles, share)
