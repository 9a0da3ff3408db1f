"""The state: tunectl's single source of truth about experiments, trials, tasks, metrics
and outputs, kept in one SQLite file (`state/tunectl.db` by default).

This package owns the state file, its schema and migrations, its serial and lineage, and
the lock that admits one writer at a time. Nothing else in tunectl writes SQL or touches
the file: the rest of the program reads and writes plain records through `State`. It knows
nothing about configurations, plans or providers.

Python's `sqlite3` is the only database library here: sqlite-utils (a tool to inspect a
state by hand, and a test dependency) would cost a quarter of a second of import time for
a few fixed statements, so it is not a runtime dependency (docs/storage.md).
"""

from tunectl.states.lock import StateLock, force_unlock
from tunectl.states.records import (
    ExperimentRecord,
    LockInfo,
    MetricRecord,
    ModelObjectRecord,
    TaskRecord,
    TrialRecord,
)
from tunectl.states.store import State

open_state = State.open

__all__ = [
    "ExperimentRecord",
    "LockInfo",
    "MetricRecord",
    "ModelObjectRecord",
    "State",
    "StateLock",
    "TaskRecord",
    "TrialRecord",
    "force_unlock",
    "open_state",
]
