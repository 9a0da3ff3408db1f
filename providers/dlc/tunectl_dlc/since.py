"""Since when a state's DLC jobs exist: the `StartTime` every `ListJobs` sends.

`ListJobs` returns only jobs created in its window, by default the last 7 days; an
experiment that runs longer, or is applied again later, would lose its older jobs (a
restarted apply would create them again). So each listing names its window's start: the
time the experiment first submitted a job from this state (for a listing of one
experiment), or the earliest such time (for a status poll by job ids), an hour earlier
for clock skew. The times are kept beside the state in `dlc-since.json`, written once per
experiment before its first `CreateJob`. A state without the file (made before it
existed) lists the last 90 days.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tunectl.private_files import write_atomic

MARGIN = 3600.0  # seconds before the recorded time (clocks differ)
UNKNOWN = 90 * 24 * 3600.0  # how far back to list when nothing was recorded


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class Since:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "dlc-since.json"
        self.times: dict[str, float] | None = None

    def _load(self) -> dict[str, float]:
        if self.times is None:
            try:
                data = json.loads(self.path.read_text())
                self.times = {str(k): float(v) for k, v in data.items()}
            except (OSError, ValueError, TypeError, AttributeError):
                self.times = {}
        return self.times

    def record(self, experiment: str) -> None:
        """Note that `experiment` submits a job now (once: the first time is kept)."""
        times = self._load()
        if experiment in times:
            return
        times[experiment] = time.time()
        if self.path.parent.is_dir():
            write_atomic(self.path, json.dumps(times))

    def start(self, experiment: str | None = None) -> str:
        """`StartTime` for a listing of `experiment`'s jobs (None: of every job)."""
        times = self._load()
        if experiment is not None and experiment in times:
            return iso(times[experiment] - MARGIN)
        if times:
            return iso(min(times.values()) - MARGIN)
        return iso(time.time() - UNKNOWN)
