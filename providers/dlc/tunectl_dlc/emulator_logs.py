"""The DLC emulator's pod logs, served the way `GetPodLogs` serves them.

A pod's output is taken in line by line (`PodLog.ingest`: when the log is asked for, and
when the process ends) and kept as the log service keeps it: each complete line with the
time it was taken in (whole microseconds, strictly increasing, so a time names one line),
the line's text, and the time it becomes visible. Lines become visible late, as real logs
do (they pass through a log service): each up to `delay` seconds after its own time, the
lines flushed when the process ends the full `delay` — the final metric of a job is the
line most likely to be missed.

`query` answers `GetPodLogs`: the visible lines with times in `[StartTime, EndTime]`
(default: the last 7 days up to now), oldest first, at most `MaxLines` (default 2000), each
line prefixed by its time (`2026-12-01T03:09:06.123456Z text`). A line that is not yet
visible is left out, and shows up in a later call — in the past of lines already served.
"""

from __future__ import annotations

import bisect
import calendar
import random
import re
import time
from pathlib import Path

WEEK_US = 7 * 24 * 3600 * 1_000_000
DEFAULT_LINES = 2000
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z?")


def format_time(us: int) -> str:
    """Microseconds since the epoch as the ISO 8601 UTC time the API uses."""
    seconds, micro = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro:06d}Z"


def parse_time(text: str) -> int | None:
    """An ISO 8601 UTC time (`2026-12-01T03:09:06Z`, with or without a fraction) in
    microseconds since the epoch; None when it is not one."""
    found = _TIME.fullmatch(text.strip())
    if not found:
        return None
    day, clock, fraction = found.groups()
    try:
        seconds = calendar.timegm(time.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return None
    return seconds * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


class PodLog:
    """One pod's log: what its process wrote to `path`, as timestamped lines."""

    def __init__(self, path: Path | None, delay: float = 0.0, seed: int = 0) -> None:
        self.path = path
        self.delay = delay
        self.random = random.Random(seed)
        self.offset = 0
        self.carry = b""
        self.times: list[int] = []
        self.texts: list[str] = []
        self.visible: list[int] = []

    def ingest(self, final: bool = False) -> None:
        """Take in the complete lines written since the last call (with `final`, the
        unfinished last line too: the process has ended)."""
        if self.path is None or not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        parts = (self.carry + data).split(b"\n")
        self.carry = parts.pop()
        if final and self.carry:
            parts.append(self.carry)
            self.carry = b""
        now = int(time.time() * 1_000_000)
        for raw in parts:
            stamp = max(now, self.times[-1] + 1 if self.times else now)
            late = self.delay if final else self.delay * self.random.random()
            self.times.append(stamp)
            self.texts.append(raw.decode(errors="replace").rstrip("\r"))
            self.visible.append(stamp + int(late * 1_000_000))

    def query(self, start: int | None, end: int | None, max_lines: int) -> list[str]:
        """The visible lines between `start` and `end` (microseconds, inclusive)."""
        now = int(time.time() * 1_000_000)
        start = now - WEEK_US if start is None else start
        end = now if end is None else end
        out: list[str] = []
        i = bisect.bisect_left(self.times, start)
        while i < len(self.times) and len(out) < max_lines and self.times[i] <= end:
            if self.visible[i] <= now:
                out.append(f"{format_time(self.times[i])} {self.texts[i]}")
            i += 1
        return out
