"""PAI AutoML's early-stopping rule (`early_stopping "pai"`) on known learning curves.

The expected answers are worked out by hand from PAIAssessor's rule: the best value so far
against `sorted(others)[int((n - 1) * proportion)]` (maximize) or `[int(n * proportion)]`
(minimize), and `patience` consecutive reports worse than the best before them.
"""

from __future__ import annotations

import optuna
import pytest

from tunectl.config.model import Experiment, Objective, TrialSpec
from tunectl.engine.pruning import CurveRulePruner
from tunectl.engine.search import SearchEngine, make_pruner
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.pai import PaiRule, running_average, value_at
from tunectl.search.pruners import validate_pruner


def curve(*values: float, start: int = 1) -> dict[int, float]:
    return {start + i: v for i, v in enumerate(values)}


OTHERS = [curve(0.5, 0.6, 0.7), curve(0.3, 0.4, 0.5), curve(0.8, 0.85, 0.9)]


def test_helpers() -> None:
    assert running_average(curve(1, 3, 5)) == {1: 1.0, 2: 2.0, 3: 3.0}
    c = {1: 0.1, 4: 0.4}
    assert value_at(c, 4) == 0.4 and value_at(c, 3) == 0.1 and value_at(c, 9) == 0.4
    assert value_at({5: 1.0}, 2) is None


def test_maximize_compares_the_best_with_the_proportion_of_the_others() -> None:
    rule = PaiRule()
    # Step 2: others are 0.4, 0.6, 0.85; index int(2 * 0.5) = 1 -> 0.6.
    assert rule.threshold(OTHERS, 2, maximize=True) == 0.6
    assert rule.stops(curve(0.2, 0.55), OTHERS, maximize=True)
    assert not rule.stops(curve(0.2, 0.6), OTHERS, maximize=True)  # equal is not below
    # The trial's best so far counts, not its latest value.
    assert not rule.stops(curve(0.7, 0.1), OTHERS, maximize=True)


def test_minimize_uses_pais_other_index() -> None:
    rule = PaiRule(proportion=0.5)
    # Step 1: others 0.3, 0.5, 0.8; index int(3 * 0.5) = 1 -> 0.5.
    assert rule.threshold(OTHERS, 1, maximize=False) == 0.5
    assert rule.stops(curve(0.51), OTHERS, maximize=False)
    assert not rule.stops(curve(0.5), OTHERS, maximize=False)
    # proportion 1 minimizing would index past the end: the last value.
    assert PaiRule(proportion=1.0).threshold(OTHERS, 1, maximize=False) == 0.8


def test_proportion_moves_the_bar() -> None:
    assert PaiRule(proportion=0.0).threshold(OTHERS, 3, maximize=True) == 0.5
    assert PaiRule(proportion=1.0).threshold(OTHERS, 3, maximize=True) == 0.9
    assert not PaiRule(proportion=0.0).stops(curve(0.1, 0.2, 0.55), OTHERS, maximize=True)
    assert PaiRule(proportion=1.0).stops(curve(0.1, 0.2, 0.85), OTHERS, maximize=True)


def test_shorter_trials_count_with_their_latest_value() -> None:
    others = [curve(0.9), curve(0.1, 0.2, 0.3, 0.4)]
    # Step 4: 0.9 (its only value) and 0.4; index int(1 * 0.5) = 0 -> 0.4.
    assert PaiRule().threshold(others, 4, maximize=True) == 0.4
    # A trial that reported nothing by this step is left out.
    assert PaiRule().threshold([{7: 1.0}], 3, maximize=True) is None
    assert not PaiRule().stops(curve(0.0, 0.0, 0.0), [{7: 1.0}], maximize=True)


def test_moving_avg_compares_running_averages_of_the_others() -> None:
    others = [curve(0.1, 0.9), curve(0.2, 0.2)]
    # Raw at step 2: 0.2, 0.9 -> 0.2. Averaged: 0.5, 0.2 -> 0.2 ... and with proportion 1,
    # the highest: raw 0.9, averaged 0.5.
    assert PaiRule(proportion=1.0).threshold(others, 2, maximize=True) == 0.9
    averaged = PaiRule(proportion=1.0, moving_avg=True)
    assert averaged.threshold(others, 2, maximize=True) == pytest.approx(0.5)
    own = curve(0.3, 0.6)
    assert PaiRule(proportion=1.0).stops(own, others, maximize=True)
    assert not averaged.stops(own, others, maximize=True)


def test_start_step_holds_judgement_back() -> None:
    hopeless = curve(0.0, 0.0, 0.0)
    assert not PaiRule(start_step=4).stops(hopeless, OTHERS, maximize=True)
    assert PaiRule(start_step=3).stops(hopeless, OTHERS, maximize=True)
    assert not PaiRule().stops({}, OTHERS, maximize=True)
    assert not PaiRule().stops(hopeless, [], maximize=True)  # nobody to compare with


def test_patience_counts_consecutive_reports_worse_than_the_best() -> None:
    rule = PaiRule(patience=2, proportion=0.0)  # the proportion test never stops here
    assert not rule.stops(curve(0.5, 0.4), [], maximize=True)
    assert rule.stops(curve(0.5, 0.4, 0.45), [], maximize=True)
    # A report equal to the best resets the count, as PAIAssessor's counter.
    assert not rule.stops(curve(0.5, 0.4, 0.5, 0.3), [], maximize=True)
    assert rule.stops(curve(0.5, 0.4, 0.5, 0.3, 0.2), [], maximize=True)
    # Minimizing: higher is worse.
    assert rule.stops(curve(0.5, 0.6, 0.7), [], maximize=False)
    assert not rule.stops(curve(0.5, 0.4, 0.3), [], maximize=False)
    # Reports before start_step are not counted as worse.
    late = PaiRule(patience=2, proportion=0.0, start_step=3)
    assert not late.stops(curve(0.5, 0.4, 0.3), [], maximize=True)
    assert late.stops(curve(0.5, 0.4, 0.3, 0.2), [], maximize=True)


def test_settings_are_checked() -> None:
    assert (
        validate_pruner(
            EarlyStopping("pai", (("moving_avg", True), ("patience", 3), ("proportion", 0.25)))
        )
        == []
    )
    [bad] = validate_pruner(EarlyStopping("pai", (("proportion", 1.5),)))
    assert bad == 'proportion of early_stopping "pai" must be a number from 0 to 1, got 1.5.'
    [bad] = validate_pruner(EarlyStopping("pai", (("patience", 0),)))
    assert "patience" in bad and "at least 1" in bad
    [bad] = validate_pruner(EarlyStopping("pai", (("moving_average", True),)))
    assert '"moving_average" is not a setting of early_stopping "pai"' in bad
    assert "Known settings: start_step, moving_avg, proportion, patience." in bad


def experiment(early: EarlyStopping, direction: str = "maximize") -> Experiment:
    return Experiment(
        name="exp",
        algorithm=Algorithm("random", (("seed", 1),)),
        objective=Objective(direction, metric="acc"),
        params=(ParamSpec("x", "uniform", low=0, high=1),),
        trial=TrialSpec("local", ()),
        early_stopping=early,
    )


def test_the_engine_prunes_with_the_rule_live_and_rebuilt() -> None:
    from tunectl.engine.search import PastTrial

    es = EarlyStopping("pai", (("start_step", 2),))
    pruner = make_pruner(es)
    assert isinstance(pruner, CurveRulePruner) and isinstance(pruner, optuna.pruners.BasePruner)
    engine = SearchEngine(experiment(es), [])
    for n, values in enumerate(([0.5, 0.6], [0.4, 0.7])):
        engine.ask(n)
        for step, v in enumerate(values, start=1):
            assert engine.report(n, step, v) is False
        engine.tell(n, "complete", values[-1])
    engine.ask(2)
    assert engine.report(2, 1, 0.1) is False  # before start_step
    assert engine.report(2, 2, 0.2) is True  # below 0.6 = sorted([0.6, 0.7])[0]

    # The same decision from a study rebuilt from the state, the trial still running.
    history = [
        PastTrial(0, "complete", {"x": 0.1}, 0.6, [(1, 0.5), (2, 0.6)]),
        PastTrial(1, "complete", {"x": 0.2}, 0.7, [(1, 0.4), (2, 0.7)]),
        PastTrial(2, "running", {"x": 0.3}, None, [(1, 0.1)]),
    ]
    rebuilt = SearchEngine(experiment(es), history)
    assert rebuilt.report(2, 2, 0.2) is True
