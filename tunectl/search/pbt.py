"""Population based training: who exploits whom, and how hyperparameters are explored.

`algorithm "pbt"` runs `population` members in rounds (PBT's generations; tunectl's own
"generation" is one creation of an experiment, so this module says *round*). Each trial is
one member for one round: it starts from its parent's checkpoint, trains
`perturbation_interval` steps, saves its checkpoint in `${trial.model_dir}` and ends with
its objective value. Rounds are synchronous, as in NNI's PBT tuner: round r + 1 starts when
every trial of round r has ended, so what it runs is a function of round r alone.

At the start of a round, each member of the bottom `quantile` of the last round (and every
member whose trial did not complete) exploits a member of the top `quantile`, drawn at
random: the donor's trial becomes its parent, and it explores the donor's hyperparameters
(`explore`). Every other member continues from its own last trial with the same
hyperparameters. Round 0 samples the space at random (the engine asks Optuna's
RandomSampler, so `enqueue` sets and the seed work as for `random`).

Everything here is pure and decided from the state's trials: with a seed, the draw of
member m in round r uses its own generator (`member_rng`), so an apply that restarts after
a crash decides exactly what the one before it did; a trial's lineage (member, round,
parent) is written with the trial in one row, so a member is never lost or run twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunectl.search.algorithms import ALGORITHMS
from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.settings import with_defaults
from tunectl.search.space import internal_distribution, is_active, ordered_params, to_external

NAME = "pbt"
ENDED = ("complete", "pruned", "failed")
FACTORS = (0.8, 1.2)  # Ray Tune's perturbation factors


@dataclass(frozen=True)
class PbtSettings:
    population: int
    interval: int  # steps each trial trains (perturbation_interval)
    quantile: float
    resample_probability: float
    seed: int | None

    def rounds(self, max_trials: int) -> int:
        """How many rounds `max_trials` makes: one trial per member per round."""
        return max_trials // self.population

    def quantile_count(self) -> int:
        """Members in the top (and in the bottom) quantile: Ray's rounding up, at most
        half the population."""
        return max(1, min(self.population // 2, math.ceil(self.population * self.quantile)))


def settings_of(algorithm: Algorithm) -> PbtSettings:
    """The PBT settings of `algorithm`, with their defaults (the registry's)."""
    s = with_defaults(ALGORITHMS[NAME].settings, algorithm.settings)
    seed = s.get("seed")
    return PbtSettings(
        population=int(s["population"]),
        interval=int(s["perturbation_interval"]),
        quantile=float(s["quantile"]),
        resample_probability=float(s["resample_probability"]),
        seed=None if seed is None else int(seed),
    )


def conflicts(
    settings: PbtSettings, max_trials: int | None, pruning: bool
) -> list[tuple[str, str]]:
    """(attribute, sentence) for each experiment setting PBT cannot run with."""
    out: list[tuple[str, str]] = []
    if max_trials is not None and max_trials < settings.population:
        out.append(
            (
                "max_trials",
                f"PBT runs one trial per member per round, and max_trials ({max_trials}) is "
                f"less than one round of the population ({settings.population}): set "
                f"max_trials to population x rounds, e.g. {settings.population * 4}.",
            )
        )
    elif max_trials is not None and max_trials % settings.population:
        rounds = max(1, max_trials // settings.population)
        out.append(
            (
                "max_trials",
                f"PBT runs one trial per member per round, so max_trials must be a multiple "
                f"of population ({settings.population}), got {max_trials}: for example "
                f"{rounds * settings.population} ({rounds} rounds).",
            )
        )
    if pruning:
        out.append(
            (
                "early_stopping",
                "PBT replaces the bottom of the population at every round itself: remove "
                "the early_stopping block.",
            )
        )
    return out


def plan_sentence(algorithm: Algorithm, max_trials: int) -> str:
    """What a PBT experiment runs, for `plan` ("" for other algorithms)."""
    if algorithm.name != NAME:
        return ""
    settings = settings_of(algorithm)
    rounds = settings.rounds(max_trials)
    k = settings.quantile_count()
    return (
        f"PBT: {settings.population} members x {rounds} rounds of "
        f"{settings.interval} step(s) = {settings.population * rounds} trials; after each "
        f"round the bottom {k} copy a top-{k} member's checkpoint and perturb its parameters"
    )


@dataclass(frozen=True)
class Member:
    """A trial of a PBT experiment as the state holds it."""

    number: int
    member: int
    round: int
    status: str  # a TrialStatus value
    value: float | None
    internal: Mapping[str, Any]


@dataclass(frozen=True)
class Slot:
    """The next trial to ask: its lineage, and its parameters (None: sample the space)."""

    member: int
    round: int
    parent: int | None
    internal: dict[str, Any] | None
    exploited: bool = False  # the parent is another member's trial


def member_rng(seed: int | None, round_: int, member: int) -> random.Random:
    """The generator that decides member `member` in round `round_`."""
    if seed is None:
        return random.Random()
    return random.Random(f"pbt:{seed}:{round_}:{member}")


def next_slot(
    settings: PbtSettings,
    params: Sequence[ParamSpec],
    trials: Sequence[Member],
    direction: str,
    max_rounds: int,
) -> Slot | None:
    """The trial to ask next, or None when there is none now (the round's last trials
    still run, or every round has been asked)."""
    rounds: dict[int, dict[int, Member]] = {}
    for t in trials:
        rounds.setdefault(t.round, {})[t.member] = t
    current = max(rounds, default=0)
    for r in range(current):
        # A member of an earlier round that is not in the state (`state rm` forgot it)
        # runs again, decided as the first time, so the experiment still reaches
        # max_trials.
        gaps = [m for m in range(settings.population) if m not in rounds.get(r, {})]
        if not gaps:
            continue
        if r == 0:
            return Slot(gaps[0], 0, None, None)
        previous = rounds.get(r - 1, {})
        if any(t.status not in ENDED for t in previous.values()):
            return None
        return decide(settings, params, previous, direction, r, gaps[0])
    asked = rounds.get(current, {})
    missing = [m for m in range(settings.population) if m not in asked]
    if not missing:
        if current + 1 >= max_rounds:
            return None
        if any(t.status not in ENDED for t in asked.values()):
            return None  # synchronous rounds: wait for the whole round
        current, missing = current + 1, list(range(settings.population))
    member = missing[0]
    if current == 0:
        return Slot(member, 0, None, None)
    return decide(settings, params, rounds.get(current - 1, {}), direction, current, member)


def ranked(previous: Mapping[int, Member], direction: str) -> list[Member]:
    """The complete members of a round with a finite value, best first."""
    sign = -1.0 if direction == "maximize" else 1.0
    done = [
        t
        for t in previous.values()
        if t.status == "complete" and t.value is not None and math.isfinite(t.value)
    ]
    return sorted(done, key=lambda t: (sign * float(t.value or 0.0), t.member))


def decide(
    settings: PbtSettings,
    params: Sequence[ParamSpec],
    previous: Mapping[int, Member],
    direction: str,
    round_: int,
    member: int,
) -> Slot:
    """What member `member` runs in round `round_`, given the (ended) round before."""
    order = ranked(previous, direction)
    k = settings.quantile_count()
    top = order[:k]
    bottom = {t.member for t in order[-k:] if t not in top}
    bottom |= {m for m, t in previous.items() if t not in order}
    own = previous.get(member)
    if own is not None and own.member not in bottom:
        return Slot(member, round_, own.number, dict(own.internal))
    if not top:
        return Slot(member, round_, None, None)  # nothing completed: start afresh
    rng = member_rng(settings.seed, round_, member)
    donor = rng.choice(top)
    internal = explore(params, donor.internal, rng, settings.resample_probability)
    return Slot(member, round_, donor.number, internal, exploited=True)


def explore(
    params: Sequence[ParamSpec],
    internal: Mapping[str, Any],
    rng: random.Random,
    resample_probability: float,
) -> dict[str, Any]:
    """The donor's internal values perturbed: each is resampled from its distribution with
    `resample_probability`, else a number is multiplied by 0.8 or 1.2 (clipped to its range,
    an integer moving at least one step), a choice among numbers moves to a neighbouring
    value, and a choice among other values is resampled. A parameter that becomes active
    is sampled."""
    out: dict[str, Any] = {}
    external: dict[str, Any] = {}
    for p in ordered_params(params):
        if not is_active(p, external):
            continue
        kind, kw = internal_distribution(p)
        old = internal.get(p.name)
        if old is None or rng.random() < resample_probability:
            value = sample(kind, kw, rng)
        else:
            value = perturb(p, kind, kw, old, rng)
        out[p.name] = value
        external[p.name] = to_external(p, value)
    return out


def sample(kind: str, kw: Mapping[str, Any], rng: random.Random) -> Any:
    """A value drawn from an internal distribution (`tunectl.search.space`)."""
    if kind == "categorical":
        return rng.choice(list(kw["choices"]))
    low, high = kw["low"], kw["high"]
    if kw.get("log"):
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return _fit(kind, kw, value)


def perturb(p: ParamSpec, kind: str, kw: Mapping[str, Any], old: Any, rng: random.Random) -> Any:
    if kind == "categorical":
        choices = list(kw["choices"])
        numbers = p.values and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in p.values
        )
        if not numbers or old not in choices:
            return rng.choice(choices)
        # An ordinal: the values in order, one step up or down.
        by_value = sorted(choices, key=lambda i: p.values[i])
        at = by_value.index(old) + rng.choice((-1, 1))
        return by_value[min(max(at, 0), len(by_value) - 1)]
    value = _fit(kind, kw, float(old) * rng.choice(FACTORS))
    if kind == "int" and value == old:
        step = int(kw.get("step") or 1)
        value = _fit(kind, kw, old + rng.choice((-step, step)))
    return value


def _fit(kind: str, kw: Mapping[str, Any], value: float) -> Any:
    """`value` clipped to the distribution's range and rounded to its step."""
    low, high = kw["low"], kw["high"]
    step = kw.get("step")
    if step:
        value = low + round((value - low) / step) * step
    value = min(max(value, low), high)
    if kind == "int":
        return int(round(value))
    return float(value)
