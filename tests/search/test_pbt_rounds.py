"""PBT's pure logic: rounds, who exploits whom, and how parameters are explored."""

from __future__ import annotations

import random

import pytest

from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.pbt import (
    Member,
    PbtSettings,
    conflicts,
    decide,
    explore,
    next_slot,
    plan_sentence,
    settings_of,
)

LR = ParamSpec("lr", "loguniform", low=1e-3, high=1.0)
UNITS = ParamSpec("units", "randint", low=1, high=100)
WIDTH = ParamSpec("width", "choice", values=(16, 32, 64, 128))
ACT = ParamSpec("act", "choice", values=("relu", "tanh", "gelu"))
SPACE = (LR, UNITS, WIDTH, ACT)


def settings(population: int = 4, quantile: float = 0.25, resample: float = 0.25) -> PbtSettings:
    return PbtSettings(population, 2, quantile, resample, seed=3)


def member(number: int, m: int, r: int, value: float | None, status: str = "complete") -> Member:
    return Member(number, m, r, status, value, {"lr": 0.1 * (m + 1), "units": 10, "width": 1})


def test_settings_and_defaults() -> None:
    s = settings_of(Algorithm("pbt", (("population", 6), ("seed", 1))))
    assert (s.population, s.interval, s.quantile, s.resample_probability, s.seed) == (
        6,
        1,
        0.25,
        0.25,
        1,
    )
    assert s.rounds(18) == 3
    assert settings(8, 0.25).quantile_count() == 2
    assert settings(10, 0.2).quantile_count() == 2
    assert settings(3, 0.5).quantile_count() == 1  # at most half the population
    assert settings(2, 0.01).quantile_count() == 1


def test_round_zero_fills_then_waits_for_the_round_to_end() -> None:
    s = settings()
    assert next_slot(s, SPACE, [], "maximize", 3).__dict__ == {
        "member": 0,
        "round": 0,
        "parent": None,
        "internal": None,
        "exploited": False,
    }
    running = [member(i, i, 0, None, "running") for i in range(3)]
    slot = next_slot(s, SPACE, running, "maximize", 3)
    assert slot is not None and (slot.member, slot.round) == (3, 0)
    full = [*running, member(3, 3, 0, 0.5)]
    assert next_slot(s, SPACE, full, "maximize", 3) is None  # three still run
    ended = [member(i, i, 0, float(i)) for i in range(4)]
    slot = next_slot(s, SPACE, ended, "maximize", 3)
    assert slot is not None and (slot.member, slot.round) == (0, 1)
    # Every round asked: nothing more, whatever ended.
    last = ended + [member(4 + i, i, 1, 1.0) for i in range(4)]
    assert next_slot(s, SPACE, last, "maximize", 2) is None


def test_bottom_exploits_top_and_others_continue() -> None:
    s = settings()
    previous = {i: member(i, i, 0, float(i)) for i in range(4)}  # member 3 is best (maximize)
    worst = decide(s, SPACE, previous, "maximize", 1, 0)
    assert worst.exploited and worst.parent == 3
    assert worst.internal != previous[3].internal
    for m in (1, 2, 3):
        slot = decide(s, SPACE, previous, "maximize", 1, m)
        assert not slot.exploited and slot.parent == m and slot.internal == previous[m].internal
    # Minimizing turns the ranking round.
    slot = decide(s, SPACE, previous, "minimize", 1, 3)
    assert slot.exploited and slot.parent == 0


def test_failed_members_always_exploit_and_nothing_complete_starts_afresh() -> None:
    s = settings()
    previous = {i: member(i, i, 0, float(i)) for i in range(4)}
    previous[2] = member(2, 2, 0, None, "failed")
    assert decide(s, SPACE, previous, "maximize", 1, 2).parent == 3
    assert decide(s, SPACE, previous, "maximize", 1, 0).parent == 3  # still the bottom
    assert not decide(s, SPACE, previous, "maximize", 1, 1).exploited
    failed = {i: member(i, i, 0, None, "failed") for i in range(4)}
    slot = decide(s, SPACE, failed, "maximize", 1, 1)
    assert slot.parent is None and slot.internal is None


def test_decisions_are_deterministic_with_a_seed() -> None:
    s = settings()
    previous = {i: member(i, i, 0, float(i)) for i in range(8)}
    s8 = PbtSettings(8, 2, 0.25, 0.25, seed=11)
    first = [decide(s8, SPACE, previous, "maximize", 2, m) for m in range(8)]
    again = [decide(s8, SPACE, previous, "maximize", 2, m) for m in range(8)]
    assert first == again
    other = PbtSettings(8, 2, 0.25, 0.25, seed=12)
    assert [decide(other, SPACE, previous, "maximize", 2, m) for m in range(8)] != first
    assert s.seed == 3


def test_explore_perturbs_within_bounds() -> None:
    rng = random.Random(0)
    donor = {"lr": 0.5, "units": 50, "width": 1, "act": 0}
    seen_lr = set()
    for _ in range(200):
        out = explore(SPACE, donor, rng, 0.0)
        assert out["lr"] in (pytest.approx(0.4), pytest.approx(0.6))
        seen_lr.add(round(out["lr"], 6))
        assert out["units"] in (40, 60)  # x0.8 / x1.2
        assert out["width"] in (0, 2)  # an ordinal moves to a neighbour
        assert out["act"] in (0, 1, 2)  # a categorical is resampled
    assert seen_lr == {0.4, 0.6}
    # Clipped to the range; an integer moves at least one step.
    edge = explore(SPACE, {"lr": 1.0, "units": 1, "width": 3, "act": 0}, random.Random(1), 0.0)
    assert edge["lr"] <= 1.0 and 1 <= edge["units"] <= 2 and edge["width"] in (2, 3)
    for _ in range(100):
        out = explore(SPACE, {"lr": 1.0, "units": 99, "width": 0, "act": 0}, rng, 0.0)
        assert 1e-3 <= out["lr"] <= 1.0 and 1 <= out["units"] <= 99
    # resample_probability = 1: every value is drawn from its distribution.
    drawn = [explore(SPACE, donor, rng, 1.0)["lr"] for _ in range(200)]
    assert min(drawn) < 0.01 and max(drawn) > 0.5 and all(1e-3 <= v <= 1.0 for v in drawn)


def test_explore_samples_a_parameter_that_becomes_active() -> None:
    opt = ParamSpec("optimizer", "choice", values=("sgd", "adam"))
    momentum = ParamSpec("momentum", "uniform", low=0.0, high=1.0, when=(("optimizer", "sgd"),))
    rng = random.Random(4)
    outs = [explore((opt, momentum), {"optimizer": 1}, rng, 0.0) for _ in range(50)]
    assert any("momentum" in o for o in outs) and any("momentum" not in o for o in outs)
    for o in outs:
        assert ("momentum" in o) == (o["optimizer"] == 0)


def test_conflicts_and_plan_sentence() -> None:
    s = settings(population=4)
    assert conflicts(s, 12, False) == []
    [(attr, text)] = conflicts(s, 10, False)
    assert attr == "max_trials" and "multiple of population (4), got 10" in text
    [(attr, text)] = conflicts(s, 3, False)
    assert attr == "max_trials" and "less than one round" in text
    assert [a for a, _ in conflicts(s, 8, True)] == ["early_stopping"]
    algorithm = Algorithm("pbt", (("population", 4), ("perturbation_interval", 5)))
    assert plan_sentence(algorithm, 12).startswith("PBT: 4 members x 3 rounds of 5 step(s)")
    assert plan_sentence(Algorithm("tpe"), 12) == ""
