"""Serving `MetricSource.EVENTS`: a task's TensorBoard event directories as metric lines.

`tunectl.providers.events` does the reading; this module keeps its journals in the task's
directory (`events-DIGEST.jsonl`, one per event directory) and what each directory held
when the task started (`events_before.json`, written at spawn, before the task runs, so a
tunectl restarted later starts past the same offsets). A cursor is a byte offset into the
journal, read like a metrics file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from tunectl.providers.base import LogChunk, ProviderError, TaskRequest
from tunectl.providers.events import EventJournal, event_dir, missing_extra, starting_offsets
from tunectl_local.reading import read_lines
from tunectl_local.taskdir import read_text, write_atomic

BEFORE = "events_before.json"


def note_dirs_before(request: TaskRequest, d: Path, workdir: Path) -> None:
    """Record what each event directory of the task holds before it starts."""
    if not request.metrics_dirs or missing_extra():
        return
    before = {
        location: starting_offsets(event_dir(location, workdir))
        for location in request.metrics_dirs
    }
    write_atomic(d / BEFORE, json.dumps(before))


class EventReaders:
    """The journals of the tasks read by this provider instance, opened once each."""

    def __init__(self) -> None:
        self._journals: dict[tuple[str, str], EventJournal] = {}

    def read(
        self,
        key: str,
        d: Path,
        workdir: Path,
        location: str,
        cursor: int,
        ended: Callable[[], bool],
    ) -> LogChunk:
        journal = self._journals.get((key, location))
        if journal is None:
            problem = missing_extra()
            if problem:
                raise ProviderError(problem, permanent=True)
            try:
                before = json.loads(read_text(d / BEFORE) or "{}").get(location, {})
            except ValueError:
                before = {}
            digest = hashlib.sha256(location.encode()).hexdigest()[:16]
            journal = EventJournal(
                d / f"events-{digest}.jsonl", event_dir(location, workdir), before
            )
            self._journals[(key, location)] = journal
        journal.update()
        return read_lines(journal.path, cursor, ended)

    def forget(self, key: str) -> None:
        for k in [k for k in self._journals if k[0] == key]:
            del self._journals[k]
