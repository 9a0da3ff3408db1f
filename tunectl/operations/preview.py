"""`plan --preview N`: the next parameter sets the seeded sampler proposes, before anything runs.

For each experiment the plan launches trials for, the search engine's study is rebuilt from
the state exactly as apply rebuilds it (`tunectl.engine.experiment_run.search_history`) —
for a new generation, from the trials a warm start carries into it — and asked up to N
times (no more than the plan's trials to run), numbered as apply numbers them. Nothing is
told and nothing is written: the engine's study is in memory and thrown away, and the
state is only read.

How exact it is (docs/language.md "Preview"): with a seed, trial N is sampled by a sampler
seeded for N from a study holding what the state holds. The enqueued sets, grid and
bruteforce orders and random search do not depend on results, so the preview is what apply
runs. An adaptive sampler (TPE, CMA-ES, GP, ...) learns from each result; the preview asks
its sets without results, as apply asks the trials it starts side by side, so the sets
apply asks before a new result comes back are exact and the later ones may differ. Without
a seed, a preview is one draw among many.
"""

from __future__ import annotations

from typing import Any

from tunectl.addrs import Address
from tunectl.config.model import Experiment
from tunectl.operations.session import Session
from tunectl.operations.warm import carried_record, own_carry, source_seed
from tunectl.plans.change import Action, Change, Plan
from tunectl.search import pbt
from tunectl.states import State, TrialRecord

MAX_PREVIEW = 1000  # sets per experiment: a preview is for reading


def fill_preview(session: Session, state: State, plan: Plan, count: int) -> None:
    """Set `Change.preview` of each change that launches trials to its next `count` sets."""
    for change in plan.changes:
        intent = change.intent
        exp = session.config.experiments.get(change.name)
        if exp is None or intent is None or change.action is Action.DESTROY:
            continue
        if change.carry is not None and change.carry.waits:
            continue  # its first sets depend on results its source has yet to give
        if exp.algorithm.name == pbt.NAME:
            continue  # a round's members copy and perturb the last round's best
        wanted = min(count, intent.to_run)
        if wanted > 0:
            change.preview = propose(state, exp, change, wanted)


def propose(state: State, exp: Experiment, change: Change, count: int) -> list[dict[str, Any]]:
    """The next `count` parameter sets of `exp` (fewer when a finite space runs out), each
    {"number": trial number, "params": {name: value}}."""
    from tunectl.engine.experiment_run import search_history
    from tunectl.engine.search import SearchEngine

    if change.action in (Action.CREATE, Action.REPLACE):
        history = _carried_history(state, exp, change)
    else:
        history = search_history(state, exp)
    engine = SearchEngine(exp, history)
    start = 1 + max((t.number for t in history), default=-1)
    out: list[dict[str, Any]] = []
    for number in range(start, start + count):
        if engine.exhausted():
            break
        suggestion = engine.ask(number)
        out.append({"number": number, "params": suggestion.params})
    return out


def _carried_history(state: State, exp: Experiment, change: Change) -> list[Any]:
    """What a new generation's study starts with: the trials a warm start carries (none
    while a source it waits for has not run), as apply writes them."""
    from tunectl.engine.search import PastTrial

    trials: list[TrialRecord] = []
    carry = change.carry
    if carry is not None and carry.carried:
        own = carry.source == str(Address(exp.name))
        trials = own_carry(state, exp) if own else source_seed(state, exp)
    history = []
    for number, old in enumerate(trials):
        record = carried_record(exp, 0, number, old)
        history.append(
            PastTrial(
                number=number,
                state="complete",
                internal=record.internal,
                value=record.value,
                system_attrs=record.system_attrs,
            )
        )
    return history
