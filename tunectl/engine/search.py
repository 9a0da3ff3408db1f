"""The Optuna bridge: ask for parameters, report learning curves, tell results.

The state is the source of truth. A `SearchEngine` builds an in-memory Optuna study from the
trials the state holds (`PastTrial`s) and is thrown away with the process; everything a
sampler needs later is handed back to be stored with the trial (`Suggestion.system_attrs`).

Reproducibility (SPEC "Reproducible"): with a seed, trial N is sampled by a sampler built
for that ask, seeded with (seed * 1_000_003 + N) mod 2**32, from a study that holds exactly
what the state holds. So a process that asked trials 0..N-1 itself and one that rebuilt the
study from the state ask the same trial N. What makes this hold:

* samplers keep bookkeeping in trial system attributes (CMA-ES's optimizer, NSGA-II's
  generation, TPE's constant-liar parameters): returned with the suggestion, restored with
  the trial;
* some keep it in *study* system attributes (QMC's sequence position, NSGA-II's parent
  cache): whatever an ask changes there is stored in the asked trial's attributes under
  `tunectl:study_attrs` and replayed when the study is rebuilt;
* trials are created in number order, so Optuna's trial numbers and ids match too;
* samplers never run `after_trial` (results are told with a neutral sampler), as a rebuilt
  study could not replay it;
* running and pending trials are recreated as live RUNNING trials with their reported
  intermediate values, through a neutral sampler, so nothing is sampled for them.

Known parameter sets (`enqueue`) come first: each ask takes the first set whose parameters
no trial of the state has, and asks it as fixed parameters (Optuna's `enqueue_trial`), so a
restarted apply, whose study holds every trial asked before, never runs a set twice.

Grid search enumerates the combinations that exist (conditions included) in a seeded order
and asks each as fixed parameters: Optuna's `GridSampler` takes a full product, which would
repeat combinations whose conditional parameters are inactive. QMC keeps the seed itself
(a scrambled sequence must use one seed throughout); its fallback sampler takes the
per-trial seed.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from tunectl.config.model import Experiment
from tunectl.engine.pruning import CurveRulePruner
from tunectl.search.algorithms import ALGORITHMS
from tunectl.search.enqueue import internal_set
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.pruners import PRUNERS
from tunectl.search.space import (
    grid_combinations,
    internal_distribution,
    is_active,
    ordered_params,
    space_size,
    to_external,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY_ATTRS_KEY = "tunectl:study_attrs"
ENQUEUED_KEY = "tunectl:enqueued"  # the index in `enqueue` of the set a trial ran
_STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
    "running": TrialState.RUNNING,
    "pending": TrialState.RUNNING,
}
_MISSING = object()


@dataclass
class PastTrial:
    """A trial as the state holds it."""

    number: int
    state: str  # complete | pruned | failed | running | pending
    internal: dict[str, Any]  # raw values as the sampler saw them (JSON-able)
    value: float | None = None
    intermediate: Sequence[tuple[int, float]] = ()
    system_attrs: dict[str, Any] = field(default_factory=dict)  # to persist, JSON-able
    values: Sequence[float] = ()  # several objectives: one value each (`value` is None)


@dataclass
class Suggestion:
    number: int
    params: dict[str, Any]  # external values, what the trial sees (active parameters only)
    internal: dict[str, Any]  # what the sampler saw: store it, a rebuilt study needs it
    system_attrs: dict[str, Any]  # sampler bookkeeping: store it with the trial


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna warns about its experimental samplers at every construction, and (from 4.9)
    that TPE's `gamma`, `prior_weight` and `weights`, which NNI's tuner arguments map to,
    are deprecated: not for users, at every ask."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def trial_seed(seed: int, number: int) -> int:
    """The seed of the sampler that asks trial `number`."""
    return (seed * 1_000_003 + number) % 2**32


def distribution(p: ParamSpec, discrete: bool = False) -> BaseDistribution:
    """The Optuna distribution of `p`'s internal values."""
    kind, kwargs = internal_distribution(p, discrete)
    if kind == "categorical":
        return CategoricalDistribution(kwargs["choices"])
    if kind == "int":
        return IntDistribution(**kwargs)
    return FloatDistribution(**kwargs)


def make_sampler(
    algorithm: Algorithm, seed: int | None, base_seed: int | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler of `algorithm` with its settings, seeded with `seed` (its registry entry's
    builder, `tunectl.search.algorithms`).

    `base_seed` is the experiment's own seed (QMC's sequence keeps it). Grid search needs
    no sampler (its parameters are fixed), so it gets a random one.
    """
    with _quiet():
        sampler: optuna.samplers.BaseSampler = ALGORITHMS[algorithm.name].sampler(
            optuna.samplers, algorithm, seed, base_seed
        )
    return sampler


def make_pruner(es: EarlyStopping) -> optuna.pruners.BasePruner:
    """The pruner of an `early_stopping` block (its registry entry's builder, or its rule
    of tunectl's own on Optuna's interface: `tunectl.search.pruners`; settings checked
    by `validate_pruner`)."""
    entry = PRUNERS[es.name]
    rule = entry.curve_rule(es)
    if rule is not None:
        return CurveRulePruner(rule)
    pruner: optuna.pruners.BasePruner = entry.pruner(optuna.pruners, es)
    return pruner


def _combo_key(internal: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(internal.items()))


class SearchEngine:
    """One experiment's Optuna study, rebuilt from the state's trials.

    Not thread-safe. Trial numbers are tunectl's (they need not start at 0); each is asked
    at most once.
    """

    def __init__(self, experiment: Experiment, history: Sequence[PastTrial]) -> None:
        self._exp = experiment
        self._algorithm = experiment.algorithm
        seed = self._algorithm.seed
        self._seed = None if seed is None else int(seed)
        self._entry = ALGORITHMS[self._algorithm.name]
        self._discrete = self._entry.discrete
        self._order = ordered_params(experiment.params)
        self._dists = {p.name: distribution(p, self._discrete) for p in self._order}
        self._neutral = optuna.samplers.RandomSampler(seed=0)
        self._shared: optuna.samplers.BaseSampler | None = None  # the sampler when unseeded
        with _quiet():
            pruner = make_pruner(experiment.early_stopping)
        # Only public Optuna API below: the storage is ours, trials are found by number.
        self._storage = optuna.storages.InMemoryStorage()
        self._study = optuna.create_study(
            storage=self._storage,
            sampler=self._neutral,
            pruner=pruner,
            study_name=experiment.name,
            directions=[_direction(d) for d in experiment.objective.directions],
        )
        self._study_id = self._storage.get_study_id_from_name(experiment.name)
        self._ids: dict[int, int] = {}  # tunectl number -> Optuna trial id
        self._live: dict[int, optuna.Trial] = {}  # running and pending trials
        self._asked: set[tuple[tuple[str, Any], ...]] = set()  # internal combinations
        self._grid: list[dict[str, Any]] | None = None
        self._size: int | None = None
        self._enqueued = [
            internal_set(experiment.params, values, self._discrete) for values in experiment.enqueue
        ]
        for past in sorted(history, key=lambda t: t.number):
            self._restore(past)

    # -- rebuilding -----------------------------------------------------------------------

    def _restore(self, past: PastTrial) -> None:
        params: dict[str, Any] = {}
        dists: dict[str, BaseDistribution] = {}
        for name, value in past.internal.items():
            dist = self._dists.get(name)
            if dist is None:
                continue  # a parameter no longer declared
            if not _contains(dist, value):
                continue
            params[name], dists[name] = value, dist
        attrs = dict(past.system_attrs)
        for key, value in dict(attrs.get(STUDY_ATTRS_KEY) or {}).items():
            self._storage.set_study_system_attr(self._study_id, key, value)
        curve = {
            int(step): float(v)
            for step, v in past.intermediate
            if v is not None and math.isfinite(v)
        }
        state = _STATES.get(past.state, TrialState.FAIL)
        value = past.value
        values = _vector(past.values, self._exp.objective.multi)
        if values is not None:  # several objectives: a complete trial has all its values
            value = None
            if state == TrialState.COMPLETE and len(values) != len(self._study.directions):
                state = TrialState.FAIL
            if state != TrialState.COMPLETE:
                values = None
        elif state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            state, value = TrialState.FAIL, None
        elif state == TrialState.PRUNED:
            value = _pruned_value(value, curve)
        elif state != TrialState.COMPLETE:
            value = None
        frozen = optuna.trial.create_trial(
            state=state,
            value=value,
            values=values or None,
            params=params,
            distributions=dists,
            system_attrs=attrs,
            intermediate_values=curve,
        )
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=frozen)
        self._ids[past.number] = trial_id
        self._asked.add(_combo_key(params))
        if state == TrialState.RUNNING:
            # The study's sampler is the neutral one here: nothing is sampled or recorded.
            self._live[past.number] = optuna.Trial(self._study, trial_id)

    # -- asking ---------------------------------------------------------------------------

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        with _quiet():
            if self._seed is None:
                if self._shared is None:
                    self._shared = make_sampler(self._algorithm, None)
                return self._shared
            return make_sampler(self._algorithm, trial_seed(self._seed, number), self._seed)

    def _grid_combinations(self) -> list[dict[str, Any]]:
        if self._grid is None:
            grid = grid_combinations(self._exp.params)
            random.Random(self._seed or 0).shuffle(grid)
            self._grid = grid
        return self._grid

    def _next_grid(self) -> dict[str, Any]:
        grid = self._grid_combinations()
        for combo in grid:
            if _combo_key(combo) not in self._asked:
                return combo
        # Every combination was asked: re-run one that never completed, else the first.
        done = {
            _combo_key(t.params)
            for t in self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        }
        return next((c for c in grid if _combo_key(c) not in done), grid[0])

    def next_enqueued(self) -> int | None:
        """The index in `enqueue` of the next set to run: the first whose parameters no
        trial of the study has; None when every set has run."""
        for index, internal in enumerate(self._enqueued):
            if _combo_key(internal) not in self._asked:
                return index
        return None

    def ask(self, number: int, fixed: dict[str, Any] | None = None) -> Suggestion:
        """Parameters for trial `number`, which becomes a running trial of the study;
        `fixed` internal values are asked as they are (PBT's later rounds)."""
        if number in self._ids:
            raise ValueError(f"trial {number} was already asked")
        before = dict(self._storage.get_study_system_attrs(self._study_id))
        self._study.sampler = self._sampler(number)
        enqueued = self.next_enqueued() if fixed is None else None
        try:
            with _quiet():
                if fixed is not None:
                    self._study.enqueue_trial(fixed)
                elif enqueued is not None:
                    self._study.enqueue_trial(self._enqueued[enqueued])
                elif self._entry.enumerate:
                    self._study.enqueue_trial(self._next_grid())
                trial = self._study.ask()
                internal: dict[str, Any] = {}
                params: dict[str, Any] = {}
                for p in self._order:
                    if is_active(p, params):
                        internal[p.name] = _suggest(trial, p.name, self._dists[p.name])
                        params[p.name] = to_external(p, internal[p.name])
        finally:
            self._study.sampler = self._neutral
        after = self._storage.get_study_system_attrs(self._study_id)
        changed = {k: v for k, v in after.items() if before.get(k, _MISSING) != v}
        trial_id = self._trial_id(trial)
        if changed:
            self._storage.set_trial_system_attr(trial_id, STUDY_ATTRS_KEY, changed)
        if enqueued is not None:
            self._storage.set_trial_system_attr(trial_id, ENQUEUED_KEY, enqueued)
        self._ids[number] = trial_id
        self._live[number] = trial
        self._asked.add(_combo_key(internal))
        return Suggestion(number, params, internal, self.system_attrs(number))

    # -- running trials -------------------------------------------------------------------

    def _trial_id(self, trial: optuna.Trial) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, trial.number)

    def report(self, number: int, step: int, value: float) -> bool:
        """Record an intermediate value of a running trial; True when it should be pruned."""
        trial = self._live.get(number)
        if trial is None or not math.isfinite(value):
            return False
        if step not in self._storage.get_trial(self._trial_id(trial)).intermediate_values:
            trial.report(float(value), int(step))
        return bool(trial.should_prune())

    def tell(
        self, number: int, state: str, value: float | None, values: Sequence[float] | None = None
    ) -> None:
        """End a running trial: `complete` (with its value, or with several objectives its
        `values`), `pruned` or `failed`.

        A complete trial without a finite value is recorded as failed. A pruned trial keeps
        `value` when given, else its last intermediate value (Optuna's rule), exactly as a
        rebuilt study records it. Telling an ended trial is a no-op.
        """
        trial = self._live.pop(number, None)
        if trial is None:
            return
        if self._exp.objective.multi:
            vector = _vector(values or (), True) if state == "complete" else None
            if vector:
                self._study.tell(trial, vector, state=TrialState.COMPLETE)
            elif state == "pruned":
                self._storage.set_trial_state_values(self._trial_id(trial), TrialState.PRUNED)
            else:
                self._study.tell(trial, state=TrialState.FAIL)
            return
        if state == "complete" and value is not None and math.isfinite(value):
            self._study.tell(trial, float(value), state=TrialState.COMPLETE)
        elif state == "pruned":
            # Study.tell cannot take a pruned trial's value: store it the way _restore does.
            trial_id = self._trial_id(trial)
            curve = self._storage.get_trial(trial_id).intermediate_values
            pruned = _pruned_value(value, curve)
            values = None if pruned is None else [pruned]
            self._storage.set_trial_state_values(trial_id, TrialState.PRUNED, values)
        else:
            self._study.tell(trial, state=TrialState.FAIL)

    def exhausted(self) -> bool:
        """Grid and bruteforce: every combination has been asked. Other algorithms: never."""
        if self._entry.enumerate:
            return all(_combo_key(c) in self._asked for c in self._grid_combinations())
        if self._entry.discrete:
            if self._size is None:
                self._size = space_size(self._algorithm, self._exp.params) or 0
            return len(self._asked - {()}) >= self._size
        return False

    def system_attrs(self, number: int) -> dict[str, Any]:
        """The sampler's and pruner's current attributes of a trial, to store with it."""
        trial_id = self._ids.get(number)
        if trial_id is None:
            return {}
        return dict(self._storage.get_trial_system_attrs(trial_id))


def _direction(name: str) -> optuna.study.StudyDirection:
    if name == "maximize":
        return optuna.study.StudyDirection.MAXIMIZE
    return optuna.study.StudyDirection.MINIMIZE


def _vector(values: Sequence[float], multi: bool) -> list[float] | None:
    """Several objectives: the finite values of a trial, empty when one is missing or not
    finite; None for a single objective."""
    if not multi:
        return None
    out = [float(v) for v in values if v is not None and math.isfinite(v)]
    return out if len(out) == len(values) else []


def _pruned_value(value: float | None, curve: Mapping[int, float]) -> float | None:
    if value is not None and math.isfinite(value):
        return float(value)
    return curve[max(curve)] if curve else None


def _contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether `dist` holds the external `value` (a stored parameter still declared)."""
    try:
        internal = dist.to_internal_repr(value)
    except (TypeError, ValueError):
        return False
    if isinstance(dist, CategoricalDistribution):
        return 0 <= int(internal) < len(dist.choices)
    if not isinstance(dist, IntDistribution | FloatDistribution) or math.isnan(internal):
        return False
    if not dist.low <= internal <= dist.high:
        return False
    if isinstance(dist, IntDistribution):
        return (internal - dist.low) % dist.step == 0
    if dist.step is None:
        return True
    k = (internal - dist.low) / dist.step
    return abs(k - round(k)) < 1e-8


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
