"""The early-stopping registry: every `early_stopping "NAME"` tunectl knows, in one table.

An entry holds one rule's settings (check, default, doc), its own cross-setting checks, its
documentation line and either the builder of an Optuna pruner or a rule of tunectl's own
on learning curves (`CurveRule`, e.g. PAI's: `tunectl.search.pai`), which the engine puts
on Optuna's pruner interface. Adding a rule is adding one entry to `PRUNERS`. This module
imports no Optuna: a builder is handed the `optuna.pruners` module by the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tunectl.diags import did_you_mean
from tunectl.search.model import EarlyStopping
from tunectl.search.pai import Curve, PaiRule
from tunectl.search.settings import (
    Setting,
    boolean,
    check_settings,
    is_whole,
    number,
    show,
    whole,
    whole_or_auto,
    with_defaults,
)

# (optuna.pruners, settings with their defaults) -> pruner
Builder = Callable[[Any, Mapping[str, Any]], Any]
# Checks across settings: (what, settings as written) -> sentences.
Check = Callable[[str, Mapping[str, Any]], list[str]]


class CurveRule(Protocol):
    """A stopping rule of tunectl's own: a pure function of learning curves.

    `stops(own, others, maximize)`: whether the running trial whose curve is `own` stops
    at its latest step, given every other trial's curve (running or ended). Stateless, so
    a study rebuilt from the state decides as the live one did.
    """

    def stops(self, own: Curve, others: Sequence[Curve], maximize: bool) -> bool: ...


@dataclass(frozen=True)
class PrunerEntry:
    name: str
    doc: str  # one line: the Optuna pruner and what it stops
    build: Builder | None  # None for a rule of tunectl's own (`rule`)
    settings: Mapping[str, Setting] = field(default_factory=dict)
    check: Check | None = None
    # (settings with their defaults) -> the rule, for rules Optuna has no pruner for.
    rule: Callable[[Mapping[str, Any]], CurveRule] | None = None
    # NNI's / PAI's `class_args` of this assessor that are not settings here: what instead.
    hints: Mapping[str, str] = field(default_factory=dict)

    def pruner(self, pruners: Any, es: EarlyStopping) -> Any:
        """The Optuna pruner of `es` (whose name is this entry's); `pruners` is the
        `optuna.pruners` module. Only for entries with a builder."""
        assert self.build is not None, f"{self.name} is a curve rule"
        return self.build(pruners, with_defaults(self.settings, es.settings))

    def curve_rule(self, es: EarlyStopping) -> CurveRule | None:
        """The rule of `es` when this entry is a rule of tunectl's own, else None."""
        if self.rule is None:
            return None
        return self.rule(with_defaults(self.settings, es.settings))


def _steps(s: Mapping[str, Any]) -> dict[str, int]:
    return {
        "n_warmup_steps": int(s["start_step"]),
        "n_startup_trials": int(s["n_startup_trials"]),
        "interval_steps": int(s["interval_steps"]),
        "n_min_trials": int(s["min_trials"]),
    }


def _median(pruners: Any, s: Mapping[str, Any]) -> Any:
    return pruners.MedianPruner(**_steps(s))


def _percentile(pruners: Any, s: Mapping[str, Any]) -> Any:
    return pruners.PercentilePruner(float(s["percentile"]), **_steps(s))


def _auto_or_int(value: Any) -> Any:
    return value if value == "auto" else int(value)


def _hyperband(pruners: Any, s: Mapping[str, Any]) -> Any:
    return pruners.HyperbandPruner(
        min_resource=int(s["min_resource"]),
        max_resource=_auto_or_int(s["max_resource"]),
        reduction_factor=int(s["reduction_factor"]),
    )


def _successive_halving(pruners: Any, s: Mapping[str, Any]) -> Any:
    return pruners.SuccessiveHalvingPruner(
        min_resource=_auto_or_int(s["min_resource"]),
        reduction_factor=int(s["reduction_factor"]),
        min_early_stopping_rate=int(s["min_early_stopping_rate"]),
    )


def _threshold(pruners: Any, s: Mapping[str, Any]) -> Any:
    lower, upper = s["lower"], s["upper"]
    return pruners.ThresholdPruner(
        lower=None if lower is None else float(lower),
        upper=None if upper is None else float(upper),
        n_warmup_steps=int(s["start_step"]),
        interval_steps=int(s["interval_steps"]),
    )


def _none(pruners: Any, s: Mapping[str, Any]) -> Any:
    return pruners.NopPruner()


def _pai(s: Mapping[str, Any]) -> PaiRule:
    patience = s["patience"]
    return PaiRule(
        start_step=int(s["start_step"]),
        moving_avg=bool(s["moving_avg"]),
        proportion=float(s["proportion"]),
        patience=None if patience is None else int(patience),
    )


def _needs_percentile(what: str, s: Mapping[str, Any]) -> list[str]:
    return [] if "percentile" in s else [f"{what} needs percentile (0 to 100): add it."]


def _lower_upper(what: str, s: Mapping[str, Any]) -> list[str]:
    lower, upper = s.get("lower"), s.get("upper")
    if lower is None and upper is None:
        return [f"{what} needs lower, upper or both: add one."]
    if isinstance(lower, int | float) and isinstance(upper, int | float) and lower > upper:
        return [f"lower ({show(lower)}) must not be greater than upper ({show(upper)})."]
    return []


def _resources(what: str, s: Mapping[str, Any]) -> list[str]:
    low, high = s.get("min_resource", 1), s.get("max_resource", "auto")
    if is_whole(low) and is_whole(high) and low >= high:
        return [f"min_resource ({show(low)}) must be less than max_resource ({show(high)})."]
    return []


_STEPS = {
    "start_step": Setting(whole(0), 0, "the pruner's warm-up steps"),
    "n_startup_trials": Setting(whole(0), 5),
    "interval_steps": Setting(whole(1), 1),
    "min_trials": Setting(whole(1), 1),
}

# In the order the configuration's messages list them.
PRUNERS: dict[str, PrunerEntry] = {
    entry.name: entry
    for entry in (
        PrunerEntry(
            "median", "MedianPruner: below the median of earlier trials at a step", _median, _STEPS
        ),
        PrunerEntry(
            "hyperband",
            "HyperbandPruner: successive halving over several brackets",
            _hyperband,
            {
                "min_resource": Setting(whole(1), 1),
                "max_resource": Setting(whole_or_auto(1), "auto"),
                "reduction_factor": Setting(whole(2), 3),
            },
            _resources,
        ),
        PrunerEntry(
            "successive_halving",
            "SuccessiveHalvingPruner: keeps the best fraction at each rung",
            _successive_halving,
            {
                "min_resource": Setting(whole_or_auto(1), "auto"),
                "reduction_factor": Setting(whole(2), 4),
                "min_early_stopping_rate": Setting(whole(0), 0),
            },
        ),
        PrunerEntry(
            "percentile",
            "PercentilePruner: below a percentile of earlier trials at a step",
            _percentile,
            _STEPS | {"percentile": Setting(number(0, 100))},
            _needs_percentile,
        ),
        PrunerEntry(
            "threshold",
            "ThresholdPruner: outside lower/upper bounds",
            _threshold,
            {
                "lower": Setting(number()),
                "upper": Setting(number()),
                "start_step": Setting(whole(0), 0),
                "interval_steps": Setting(whole(1), 1),
            },
            _lower_upper,
        ),
        PrunerEntry(
            "pai",
            "PAI AutoML's PAIAssessor: best below a proportion of the others, or no patience",
            None,
            {
                "start_step": Setting(whole(0), 0, "judge a trial from this step on"),
                "moving_avg": Setting(boolean, False, "compare running averages"),
                "proportion": Setting(number(0, 1), 0.5, "the quantile of the others"),
                "patience": Setting(whole(1), None, "stop after N reports worse than best"),
            },
            rule=_pai,
            hints={
                "platform": "Where a trial runs is its provider's, and a stopped trial's "
                "job is cancelled through it: remove it.",
                "earlystop": "The block itself turns early stopping on: remove it.",
            },
        ),
        PrunerEntry("none", "NopPruner: no early stopping", _none),
    )
}


def validate_pruner(es: EarlyStopping) -> list[str]:
    """Sentences saying why an `early_stopping` block is impossible; empty when fine."""
    entry = PRUNERS.get(es.name)
    if entry is None:
        return [f'"{es.name}" is not an early stopping rule.{did_you_mean(es.name, PRUNERS)}']
    what = f'early_stopping "{es.name}"'
    errors = check_settings(what, entry.settings, es.settings, entry.hints)
    if entry.check is not None:
        errors.extend(entry.check(what, dict(es.settings)))
    return errors
