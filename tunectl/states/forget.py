"""Forgetting one trial (`tunectl state rm experiment.X.trial[N]`), a part of `State`.

The trial's row goes, and with it (the schema's cascades) its tasks, metrics and model
records: nothing that lists, counts, exports or rebuilds the study from the state sees it
again. Its number is never given again within the generation: a task key is derived from
the trial number and attempt (`tunectl.engine.trials.task_key`), and a provider hands back
the task it already knows for a key, so a new trial under a forgotten number would be
given the forgotten trial's task and result. The highest forgotten number of each
experiment generation is kept in `meta`, and `State.next_trial_number` counts past it.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunectl.states.store import State


def _meta_key(experiment: str, generation: int) -> str:
    return f"forgotten_trial:{generation}:{experiment}"


def _generation(conn: sqlite3.Connection, experiment: str, generation: int | None) -> int:
    if generation is not None:
        return generation
    row = conn.execute("SELECT generation FROM experiments WHERE name = ?", (experiment,))
    found = row.fetchone()
    return int(found[0]) if found else 0


def forgotten(conn: sqlite3.Connection, experiment: str, generation: int | None) -> int:
    """The highest trial number forgotten in the generation (current when None); -1."""
    key = _meta_key(experiment, _generation(conn, experiment, generation))
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return -1 if row is None else int(row[0])


def forget_trial(state: State, conn: sqlite3.Connection, experiment: str, number: int) -> None:
    """Delete trial `number` of the experiment's current generation with everything it
    has; `LookupError` when there is no such trial."""
    generation = _generation(conn, experiment, None)
    with state._write():
        deleted = conn.execute(
            "DELETE FROM trials WHERE experiment = ? AND generation = ? AND number = ?",
            (experiment, generation, number),
        ).rowcount
        if not deleted:
            raise LookupError(f"Trial {number} of experiment {experiment!r} does not exist.")
        last = max(number, forgotten(conn, experiment, generation))
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (_meta_key(experiment, generation), last),
        )
