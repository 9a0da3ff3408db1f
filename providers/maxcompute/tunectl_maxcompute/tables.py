"""`metrics "table"`: a trial's metrics read from a result table with a SQL query.

Each query runs as its own MaxCompute SQL instance (a job, billed as one). Once the task
has ended, a query is run to its end and its rows are kept: every later read serves them.
With `metrics_interval` set, a query is also started while the task runs, at most that
often, and read when it has finished — never waited for, so the apply loop goes on: that
is how intermediate values (a `step` column) reach early stopping.

The rows are served as lines after a cursor (a row offset), each a JSON object of the
row's numeric columns (`{"step": 3, "auc": 0.91}`), which core reads as it reads a JSON-lines
metrics file: a `step` column makes the others intermediate values. Columns whose value
is not a number (a model's name) are left out. A query on a table that does not exist yet
gives no rows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tunectl.providers.base import LogChunk, ProviderError
from tunectl_maxcompute.client import Client, rows

NO_SUCH_TABLE = "ODPS-0130131"
QUERY_WAIT = 600.0  # seconds the last query of an ended task may take


@dataclass
class Query:
    """One trial's one query: the lines of its last finished run."""

    lines: list[str] = field(default_factory=list)
    running: str | None = None  # the instance of a run not yet read
    started: float = -math.inf
    final: bool = False


class Tables:
    """The queries of the tasks one provider follows."""

    def __init__(
        self,
        client: Client,
        settings: Callable[[], Mapping[str, str]],
        interval: float | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.interval = interval
        self.sleep = sleep
        self.queries: dict[tuple[str, str], Query] = {}

    def read(self, instance_id: str, sql: str, cursor: int, ended: bool) -> LogChunk:
        query = self.queries.setdefault((instance_id, sql), Query())
        if ended and not query.final:
            # A run started while the task ran may lack the last rows: run it again.
            query.running = self.client.query(sql, self.settings(), None)
            query.started = time.monotonic()
            self._take(query, wait=True)
            query.final = True
        elif not ended and not query.final and self.interval is not None:
            if query.running is not None:
                self._take(query, wait=False)
            if query.running is None and time.monotonic() - query.started >= self.interval:
                query.running = self.client.query(sql, self.settings(), None)
                query.started = time.monotonic()
        lines = query.lines[cursor:]
        return LogChunk(lines, cursor + len(lines))

    def forget(self, instance_id: str) -> None:
        for key in [k for k in self.queries if k[0] == instance_id]:
            del self.queries[key]

    def _take(self, query: Query, wait: bool) -> None:
        """Read the running query's rows into `query.lines` when it has finished."""
        assert query.running is not None
        deadline = time.monotonic() + QUERY_WAIT
        delay = 0.1
        while True:
            state = self.client.task_state(query.running)
            if state.instance == "Terminated":
                break
            if not wait:
                return
            if time.monotonic() > deadline:
                query.running = None
                raise ProviderError(
                    f"maxcompute: the metrics query did not finish in {QUERY_WAIT:g}s"
                )
            self.sleep(delay)
            delay = min(2.0, delay * 1.5)
        instance, query.running = query.running, None
        result = self.client.result(instance)
        if state.task == "Success":
            query.lines = [_line(row) for row in rows(result)]
            return
        if NO_SUCH_TABLE in result:
            return  # not written yet: no rows
        first = result.strip().splitlines()[0][:300] if result.strip() else state.task
        raise ProviderError(f"maxcompute: the metrics query failed: {first}")


def _line(row: Mapping[str, str]) -> str:
    values: dict[str, float | int] = {}
    for column, text in row.items():
        try:
            number = float(text)
        except ValueError:
            continue
        values[column] = int(number) if column == "step" and number.is_integer() else number
    return json.dumps(values)
