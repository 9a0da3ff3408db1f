"""Warm starts: the complete trials a new generation of an experiment starts with.

`warm_start = true` carries, across a replacement, the replaced generation's complete
trials that fit the new search space; `warm_start { from = experiment.X, top = N }` seeds
a new generation with X's best N trials that fit (`tunectl.search.enqueue.carried` says
which, for the plan and for apply alike).

A carried trial is written to the state as a complete trial of the new generation, with
its parameters (the sampler's values recomputed for the new space), its objective and
metric values, and `tunectl:carried` naming where it came from. The search engine
rebuilds its study from the state, so the sampler learns from these trials as it does
from any finished trial — Optuna's `study.add_trial(create_trial(...))`, not
`enqueue_trial`: nothing is run again. They count as trials of the new generation
(`max_trials` included) and grid search does not ask their combinations again.

Crash safety: the trials of one carry are written in one transaction, and a generation is
seeded only while it has no trial; the replacement writes the new generation and its
carried trials in the transaction that deletes the old one (`apply_changes`). A kill -9
leaves the old experiment (planned again, carried again) or the new one with its carried
trials, never both or half.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunectl.addrs import Address
from tunectl.config.model import Experiment
from tunectl.plans.differ import Finished
from tunectl.search.enqueue import carried, internal_set
from tunectl.search.space import is_discrete
from tunectl.states import State, TrialRecord
from tunectl.status import TrialStatus

CARRIED_KEY = "tunectl:carried"  # system attribute: {"experiment", "generation", "number"}


def complete_trials(state: State, name: str) -> list[TrialRecord]:
    """The complete trials with a value of `name`'s current generation, in number order."""
    if state.get_experiment(name) is None:
        return []
    return [t for t in state.list_trials(name, status=TrialStatus.COMPLETE) if t.value is not None]


def as_finished(trials: Sequence[TrialRecord]) -> list[Finished]:
    return [(t.params, float(t.value)) for t in trials if t.value is not None]


def own_carry(state: State, exp: Experiment) -> list[TrialRecord]:
    """With `warm_start = true`: the trials of `exp`'s current generation that fit its
    (new) space. Read before the generation is deleted."""
    if exp.warm_start is None or not exp.warm_start.carry:
        return []
    trials = complete_trials(state, exp.name)
    chosen = carried(exp.params, as_finished(trials), discrete=is_discrete(exp.algorithm))
    return [trials[i] for i in chosen]


def source_seed(state: State, exp: Experiment) -> list[TrialRecord]:
    """With `warm_start { from = experiment.X }`: X's best trials that fit `exp`'s space."""
    ws = exp.warm_start
    if ws is None or ws.source is None:
        return []
    trials = complete_trials(state, ws.source)
    chosen = carried(
        exp.params,
        as_finished(trials),
        discrete=is_discrete(exp.algorithm),
        direction=exp.objective.direction,
        top=ws.top,
    )
    return [trials[i] for i in chosen]


def carried_record(exp: Experiment, generation: int, number: int, old: TrialRecord) -> TrialRecord:
    """`old` as complete trial `number` of `exp`'s `generation`."""
    from tunectl.engine.trials import trial_id

    origin = f"{Address(old.experiment)} trial {old.number} (generation {old.generation})"
    return TrialRecord(
        experiment=exp.name,
        number=number,
        id=trial_id(exp.name, generation, number),
        params=dict(old.params),
        status=TrialStatus.COMPLETE,
        value=old.value,
        values=dict(old.values),
        created_at=old.created_at,
        started_at=old.started_at,
        finished_at=old.finished_at,
        message=f"carried from {origin}",
        generation=generation,
        internal=internal_set(exp.params, old.params, is_discrete(exp.algorithm)),
        system_attrs={
            CARRIED_KEY: {
                "experiment": old.experiment,
                "generation": old.generation,
                "number": old.number,
            }
        },
    )


def write_carried(
    state: State, exp: Experiment, generation: int, trials: Sequence[TrialRecord]
) -> int:
    """Add `trials` as complete trials 0.. of `exp`'s `generation` (which has none yet),
    in one transaction. Returns how many were added."""
    with state.transaction():
        for number, old in enumerate(trials):
            state.add_trial(carried_record(exp, generation, number, old))
    return len(trials)


def seed_if_new(state: State, exp: Experiment) -> int:
    """Seed `exp`'s current generation from its `warm_start { from }` source, once: only
    while the generation has no trial (a seeded one has its carried trials). Returns how
    many trials were seeded."""
    record = state.get_experiment(exp.name)
    if record is None or exp.warm_start is None or exp.warm_start.source is None:
        return 0
    with state.transaction():
        if state.next_trial_number(exp.name) != 0:
            return 0
        return write_carried(state, exp, record.generation, source_seed(state, exp))
