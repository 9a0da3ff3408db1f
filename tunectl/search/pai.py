"""PAI AutoML's early-stopping rule (`PAIAssessor`), on plain learning curves.

`early_stopping "pai" { start_step, moving_avg, proportion, patience }` judges a running
trial, at each step it reports from `start_step` on, by two tests; either one stops it:

* **proportion**: the other trials' values at this step are collected — a trial that did
  not report this step counts with its latest value before it, one that reported nothing
  by then is left out; with `moving_avg`, each value is that trial's running average up
  to it — and sorted. Maximizing, the trial stops when its best value so far is below
  `sorted[int((n - 1) * proportion)]`; minimizing, when its best is above
  `sorted[int(n * proportion)]` (the last one at most). These are PAIAssessor's indices,
  kept as they are so that a `proportion` means what it means on PAI.
* **patience** (when set): the trial stops once its latest `patience` reports (at steps
  from `start_step` on) are each worse than the best value it reported before them.

As PAIAssessor, "the other trials" are every other trial that reported a value: running,
complete or stopped. The rule is stateless (a pure function of the curves), so a study
rebuilt from the state decides exactly as the one that saw the reports live.

Optuna's own pruners do not express it: `PercentilePruner` compares with *complete*
trials at the *same* step through an interpolated percentile, without running averages;
`PatientPruner` only narrows the pruner it wraps (both must agree), where PAI stops on
either test. `tunectl.engine.pruning` puts this rule on Optuna's `BasePruner` interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Curve = Mapping[int, float]  # step -> value


def running_average(curve: Curve) -> dict[int, float]:
    """Each step's value replaced by the mean of the values up to it (in step order)."""
    out: dict[int, float] = {}
    total = 0.0
    for count, step in enumerate(sorted(curve), start=1):
        total += curve[step]
        out[step] = total / count
    return out


def value_at(curve: Curve, step: int) -> float | None:
    """The value of `curve` at `step`, else its latest before `step`; None if none."""
    if step in curve:
        return curve[step]
    before = [s for s in curve if s < step]
    return curve[max(before)] if before else None


@dataclass(frozen=True)
class PaiRule:
    """The settings of `early_stopping "pai"` (see the module docstring)."""

    start_step: int = 0
    moving_avg: bool = False
    proportion: float = 0.5
    patience: int | None = None

    def threshold(self, others: Sequence[Curve], step: int, maximize: bool) -> float | None:
        """The value a trial's best must reach at `step`; None when no other trial has one."""
        values = []
        for curve in others:
            if self.moving_avg:
                curve = running_average(curve)
            value = value_at(curve, step)
            if value is not None:
                values.append(value)
        if not values:
            return None
        values.sort()
        n = len(values)
        index = int((n - 1) * self.proportion) if maximize else int(n * self.proportion)
        return values[min(index, n - 1)]

    def out_of_patience(self, own: Curve, maximize: bool) -> bool:
        """Whether the latest `patience` judged reports are each worse than the best
        reported before them."""
        if self.patience is None:
            return False
        steps = sorted(own)
        worse = 0
        best: float | None = None
        for step in steps:
            value = own[step]
            if best is not None and step >= self.start_step:
                worse = worse + 1 if (value < best if maximize else value > best) else 0
            if best is None or (value > best if maximize else value < best):
                best = value
        return worse >= self.patience

    def stops(self, own: Curve, others: Sequence[Curve], maximize: bool) -> bool:
        """Whether a trial with learning curve `own` stops now, given the other trials'."""
        if not own:
            return False
        step = max(own)
        if step < self.start_step:
            return False
        if self.out_of_patience(own, maximize):
            return True
        threshold = self.threshold(others, step, maximize)
        if threshold is None:
            return False
        best = max(own.values()) if maximize else min(own.values())
        return best < threshold if maximize else best > threshold
