"""tunectl's own stopping rules on Optuna's pruner interface.

A rule of the search layer (`tunectl.search.pruners.CurveRule`, e.g. PAI's) is a pure
function of learning curves; `CurveRulePruner` hands it the judged trial's curve and every
other trial's (running, complete or pruned: the study holds all of them, rebuilt from the
state), and the study's direction.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunectl.search.pruners import CurveRule

# Trials whose curves the rule sees: a failed trial's values are not a learning curve.
_SEEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class CurveRulePruner(optuna.pruners.BasePruner):
    """An Optuna pruner deciding by a `CurveRule`."""

    def __init__(self, rule: CurveRule) -> None:
        self.rule = rule

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        own = trial.intermediate_values
        others = [
            t.intermediate_values
            for t in study.get_trials(deepcopy=False, states=_SEEN)
            if t.number != trial.number and t.intermediate_values
        ]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        return self.rule.stops(own, others, maximize)
