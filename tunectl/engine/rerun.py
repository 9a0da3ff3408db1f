"""Running one ended trial again: `tunectl apply --replace experiment.X.trial[N]`.

The trial keeps its number and its parameters (the sampler's raw values and bookkeeping
too, so the rebuilt study sees the same trial) and becomes a new attempt: attempt + 1,
pending, without a value. Its old result goes, so the new attempt's value replaces it in
`best`, outputs, `trials`, `export` and `report`: the old tasks and metrics are forgotten
with it (`State.forget_trial`, which also keeps the number from being given to another
trial), and its stored model is deleted first — the new attempt writes to the same
`${trial.model_dir}`, and a model that no longer matches any result would mislead. The
apply loop then submits the new attempt like a trial left pending (its task key names the
new attempt, so no provider hands back the old task).
"""

from __future__ import annotations

import dataclasses
import time

from tunectl.engine.models import ModelStore, delete_stored
from tunectl.states import State
from tunectl.status import TrialStatus


def rerun_trial(state: State, models: ModelStore, experiment: str, number: int) -> int:
    """Make ended trial `number` a pending new attempt; returns the attempt (from 0).
    Raises `StorageError` when its model cannot be deleted (nothing else is changed)."""
    trial = state.get_trial(experiment, number)
    if trial is None or not trial.status.ended:
        raise LookupError(f"Trial {number} of experiment {experiment!r} has not ended.")
    delete_stored(state, models, experiment, [number])
    attempts = [t.attempt for t in state.tasks_for_trial(experiment, number)]
    attempt = max([trial.attempt, *attempts]) + 1
    again = dataclasses.replace(
        trial,
        status=TrialStatus.PENDING,
        value=None,
        values={},
        attempt=attempt,
        task_index=0,
        created_at=time.time(),
        started_at=None,
        finished_at=None,
        model_uri=None,
        message="",
        last_step=None,
    )
    with state.transaction():
        state.forget_trial(experiment, number)
        state.add_trial(again)
    return attempt
