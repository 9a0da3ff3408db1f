"""Reading a DLC job's output: the rank-0 pod's `GetPodLogs`, incrementally and bounded.

- **Which pod.** A job's output is its rank-0 pod's log: master-0, else chief-0, else
  worker-0 (else the first pod `GetJob` lists). The pod is pinned by its `PodUid` the first
  time it is read, and every read names that uid, so a read never mixes two instances of a
  pod; the pin is kept beside the state (`dlc-pods.jsonl`), so a restarted tunectl reads the
  same instance.
- **Where a read starts.** `GetPodLogs` serves a pod's lines between `StartTime` and
  `EndTime`, oldest first, at most `MaxLines` a call, each line starting with its time
  (`2026-12-01T03:09:06.123456Z text` or `2026-12-01 03:09:06 text`). A `Position` keeps
  where the reader stands: the time of the last line handed out and how many lines with
  exactly that time it has handed out (times may repeat), so the next call asks from that
  time and drops only those lines. Every call asks for a page (`PAGE` lines beyond those
  dropped): bytes per call are bounded, and the bytes per job grow with the log, not its
  square. A line without a time counts as one at the time of the line before it.
- **Late lines.** Lines reach the log service late (up to `log_delay` seconds). While a job
  runs, reads stop at `EndTime` = now − `log_delay`: the past before it is complete, so no
  line is ever skipped because it arrived after a later one was read. After the job ends
  (the provider reports it ended only `log_delay` after it did), reads are unbounded until
  one comes back empty, then once more (a grace re-read), then the log is exhausted.
- **Cursors** count the lines handed out (as the engine stores them). A cursor this process
  did not hand out (a restart, or `tunectl logs` from the start) is reached by reading from
  the job's start and passing over that many lines: linear, once.

The times the real service puts on lines, and the precision its `StartTime` accepts, are
not documented; the emulator serves microseconds. With coarser times the reader stays
exact, and a page costs more only when more than a page of lines share one time.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunectl.private_files import open_private

PAGE = 5000  # lines handed out per GetPodLogs call at most
RANK0 = ("master", "chief", "worker")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:\.\d{1,9})?)(?:Z|[+-]00:?00)? ?")

# fetch(job_id, pod, start, end, max_lines) -> the lines GetPodLogs served
Fetch = Callable[[str, "Pod", str | None, str | None, int], list[str]]


@dataclass(frozen=True)
class Pod:
    id: str
    uid: str | None


@dataclass
class Position:
    """Where a job's log has been read to."""

    cursor: int = 0  # lines handed out
    start: str | None = None  # time of the last line handed out (ISO 8601 UTC)
    same: int = 0  # lines handed out with exactly that time
    exhausted: bool = False  # an empty read after the job ended (the grace re-read is next)


def split_stamp(line: str) -> tuple[str | None, str]:
    """A served line's time (as ISO 8601 UTC, the form `StartTime` takes) and its text."""
    found = _STAMP.match(line)
    if not found:
        return None, line
    return f"{found.group(1)}T{found.group(2)}Z", line[found.end() :]


def iso_now(minus: float = 0.0) -> str:
    """Now (minus some seconds) as ISO 8601 UTC with microseconds."""
    moment = time.time() - minus
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + (
        f".{int(moment % 1 * 1_000_000):06d}Z"
    )


def rank0(pods: list[Any]) -> Pod | None:
    """The pod whose log is the job's output (`pods`: GetJob's `Pods`)."""
    named = [p for p in pods if getattr(p, "pod_id", None)]
    for role in RANK0:
        for pod in named:
            kind = str(getattr(pod, "type", "") or "").lower()
            if kind == role and str(pod.pod_id).endswith("-0"):
                return Pod(str(pod.pod_id), getattr(pod, "pod_uid", None) or None)
    if not named:
        return None
    return Pod(str(named[0].pod_id), getattr(named[0], "pod_uid", None) or None)


class PodPins:
    """Job id -> its pinned rank-0 pod, in memory and in `dlc-pods.jsonl` beside the state
    (one line a pin, appended: a pin costs one short write however many jobs there are)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "dlc-pods.jsonl"
        self.pins: dict[str, Pod] | None = None

    def get(self, job_id: str) -> Pod | None:
        if self.pins is None:
            self.pins = self._load()
        return self.pins.get(job_id)

    def put(self, job_id: str, pod: Pod) -> None:
        if self.pins is None:
            self.pins = self._load()
        self.pins[job_id] = pod
        if self.path.parent.is_dir():  # else (no state directory yet): memory only
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            with os.fdopen(fd, "a") as f:
                f.write(json.dumps([job_id, pod.id, pod.uid]) + "\n")

    def _load(self) -> dict[str, Pod]:
        pins: dict[str, Pod] = {}
        try:
            text = self.path.read_text()
        except OSError:
            return pins
        for line in text.splitlines():
            try:
                job_id, pod_id, uid = json.loads(line)
            except (ValueError, TypeError):
                continue  # a line cut short by a crash
            pins.setdefault(str(job_id), Pod(str(pod_id), uid))  # the first pin holds
        return pins


class LogReader:
    """Reads jobs' logs through `fetch` (one GetPodLogs call), keeping a `Position` each."""

    def __init__(self, fetch: Fetch, delay: float) -> None:
        self.fetch = fetch
        self.delay = delay
        self.positions: dict[str, Position] = {}

    def read(self, job_id: str, pod: Pod, cursor: int, ended: bool) -> tuple[list[str], int]:
        """Lines after `cursor` (at most a page) and the cursor after them."""
        pos = self.positions.get(job_id)
        skip = 0
        if pos is None or pos.cursor != cursor:
            pos, skip = Position(), cursor  # pass over what was handed out before
        self.positions[job_id] = pos
        end = None if ended or not self.delay else iso_now(self.delay)
        out: list[str] = []
        while True:
            want = pos.same + PAGE
            served = self.fetch(job_id, pod, pos.start, end, want)
            fresh = self._after(pos, served)
            for stamp, text in fresh:
                if stamp == pos.start:
                    pos.same += 1
                else:
                    pos.start, pos.same = stamp, 1
                pos.cursor += 1
                if skip:
                    skip -= 1
                else:
                    out.append(text)
            full = len(served) >= want and bool(fresh)
            if skip and full:
                continue  # still passing over lines handed out before this process
            if skip:  # fewer lines than the cursor counts (not visible yet): start over later
                del self.positions[job_id]
                return [], cursor
            if out or not ended:
                # A short page after the end has read all there is: the next read is the
                # grace re-read.
                pos.exhausted = ended and not full
                return out, pos.cursor
            if full:
                continue
            if pos.exhausted:
                return out, pos.cursor  # empty twice after the end: nothing more will come
            pos.exhausted = True  # the grace re-read: once more, for lines that came late

    @staticmethod
    def _after(pos: Position, served: list[str]) -> list[tuple[str | None, str]]:
        """The served lines after the position: those at its time it handed out dropped."""
        lines = []
        drop = pos.same
        last = pos.start
        for line in served:
            stamp, text = split_stamp(line)
            stamp = stamp or last
            last = stamp
            if drop and stamp == pos.start:
                drop -= 1
                continue
            lines.append((stamp, text))
        return lines
