"""An experiment's results as the state holds them: one `TrialResult` per trial of its
current generation, with the parameters as the trial saw them, the objective value (with
several objectives, one value per objective, and the experiment's Pareto front), each
metric's value, the objective's learning curve, times, attempts and the provider's task
ids. `trials`, `export`, `dashboard` and `report` read results through `load_results` alone.

Nothing here prints or writes: `tunectl.views.trials` renders results, and
`tunectl.operations.study` rebuilds an Optuna study from them. The engine holds this
module because results are read with its rules (the objective's curve and value,
`engine.objective`), and the views, its siblings, render them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.addrs import Address
from tunectl.config.model import Objective
from tunectl.diags import DiagnosticError, error
from tunectl.engine.objective import combine
from tunectl.engine.pareto import pareto_front
from tunectl.search.model import ParamSpec
from tunectl.states import ExperimentRecord, State
from tunectl.status import TrialStatus

# Sort keys that are not a parameter or metric name.
SORT_KEYS = ("value", "number", "duration", "started")


@dataclass
class TaskResult:
    name: str
    provider: str
    id: str  # the provider's task id (the idempotency key until it answered)
    status: str
    attempt: int


@dataclass
class TrialResult:
    number: int
    id: str
    status: TrialStatus
    params: dict[str, Any]  # external values, as the trial saw them
    value: float | None
    metrics: dict[str, float]  # each metric's value (reduced as the objective says)
    curve: list[tuple[int, float]]  # the objective's intermediate values, step order
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    tasks: list[TaskResult] = field(default_factory=list)
    model_uri: str | None = None
    message: str = ""
    cost: float | None = None  # estimated, in the provider's currency (`engine.costs`)
    # Several objectives: one value per objective (`value` is None); empty otherwise.
    values: list[float] = field(default_factory=list)
    lineage: tuple[int, int, int | None] | None = None  # PBT: (member, round, parent trial)

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to end (to `now` while it runs); None before it started."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            if self.status.ended:
                return None
            end = time.time() if now is None else now
        return max(0.0, end - self.started_at)

    @property
    def task_id(self) -> str:
        """The provider's id of the trial's last task ("" before one was submitted)."""
        return self.tasks[-1].id if self.tasks else ""


@dataclass
class ExperimentResults:
    """One experiment's trials, in number order; `best` is the best complete trial's
    number (Optuna's rule: the first of equal values), None without one. With several
    objectives there is no best (None): `pareto` holds the numbers of the Pareto-optimal
    trials (`tunectl.engine.pareto`), in number order."""

    name: str
    generation: int
    status: str
    config: dict[str, Any]
    objective: Objective
    params: list[ParamSpec]  # declared order
    trials: list[TrialResult]
    best: int | None
    pareto: list[int] = field(default_factory=list)

    @property
    def multi(self) -> bool:
        return self.objective.multi

    @property
    def address(self) -> str:
        return str(Address(self.name))

    @property
    def direction(self) -> str:
        return self.objective.direction

    @property
    def objective_label(self) -> str:
        """The objective's name for people: its metric, the weighted sum's terms, or the
        objectives' metrics."""
        if self.objective.multi:
            return ", ".join(self.objective.metric_names)
        if self.objective.metric:
            return self.objective.metric
        return " + ".join(f"{w:g}*{name}" for name, w in self.objective.metrics) or "value"

    @property
    def param_names(self) -> list[str]:
        declared = [p.name for p in self.params]
        extra = sorted({k for t in self.trials for k in t.params} - set(declared))
        return declared + extra

    @property
    def metric_names(self) -> list[str]:
        return sorted({k for t in self.trials for k in t.metrics})

    def trial(self, number: int) -> TrialResult | None:
        return next((t for t in self.trials if t.number == number), None)


def objective_of(config: Mapping[str, Any]) -> Objective:
    """The objective block of an experiment's stored configuration."""
    block = dict(config.get("objective") or {})
    if isinstance(block.get("metrics"), list):  # several objectives
        pairs = tuple(
            (str(m), str(d))
            for m, d in zip(block["metrics"], block.get("directions") or (), strict=False)
        )
        return Objective(
            direction=pairs[0][1] if pairs else "maximize",
            reduce=str(block.get("reduce", "final")),
            sources_reduce=block.get("sources_reduce"),
            objectives=pairs,
        )
    metrics = tuple((str(k), float(v)) for k, v in dict(block.get("metrics") or {}).items())
    goal = block.get("goal")
    return Objective(
        direction=str(block.get("direction", "maximize")),
        metric=block.get("metric") or None,
        metrics=metrics,
        goal=float(goal) if isinstance(goal, int | float) else None,
        reduce=str(block.get("reduce", "final")),
    )


def params_of(config: Mapping[str, Any]) -> list[ParamSpec]:
    """The `param` blocks of an experiment's stored configuration, in declared order."""
    out = []
    for name, spec in dict(config.get("param") or {}).items():
        numbers = {
            key: spec[key]
            for key in ("low", "high", "q", "mu", "sigma", "step")
            if isinstance(spec.get(key), int | float) and not isinstance(spec.get(key), bool)
        }
        out.append(
            ParamSpec(
                name=name,
                type=str(spec.get("type", "")),
                values=tuple(spec.get("values") or ()),
                log=bool(spec.get("log", False)),
                when=tuple(dict(spec.get("when") or {}).items()),
                **numbers,
            )
        )
    return out


def experiment_record(state: State, address: str) -> ExperimentRecord:
    """The experiment `address` names (experiment.NAME); a diagnostic when it is not one
    or the state lacks it."""
    from tunectl.addrs import parse_address

    parsed = parse_address(address, trials=False)
    record = state.get_experiment(parsed.experiment)
    if record is None:
        raise DiagnosticError(
            error(
                "No such experiment",
                f"{Address(parsed.experiment)} is not in the state. List the experiments "
                "with tunectl state list.",
            )
        )
    return record


def load_results(state: State, address: str) -> ExperimentResults:
    """The results of the experiment `address` names, from `state`."""
    record = experiment_record(state, address)
    objective = objective_of(record.config)
    trials = []
    for t in state.list_trials(record.name):
        series: dict[str, list[tuple[int | None, float]]] = {}
        for m in state.metrics_for(record.name, t.number):
            series.setdefault(m.name, []).append((m.step, m.value))
        _, curve = combine(series, objective) if series else (None, [])
        if t.status == TrialStatus.PRUNED and t.last_step is not None:
            # What the pruner saw, as the engine rebuilds it.
            curve = [(s, v) for s, v in curve if s <= t.last_step]
        tasks = [
            TaskResult(
                name=k.task_name,
                provider=k.provider,
                id=k.handle_id or k.key,
                status=k.status.value,
                attempt=k.attempt,
            )
            for k in state.tasks_for_trial(record.name, t.number)
        ]
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        trials.append(
            TrialResult(
                number=t.number,
                id=t.id,
                status=t.status,
                params=dict(t.params),
                value=value,
                metrics={k: v for k, v in t.values.items() if math.isfinite(v)},
                curve=curve,
                created_at=t.created_at,
                started_at=t.started_at,
                finished_at=t.finished_at,
                attempts=t.attempt + 1,
                tasks=tasks,
                model_uri=t.model_uri,
                message=t.message,
                values=list(t.objective_values) if objective.multi else [],
                lineage=None
                if t.pbt_member is None
                else (t.pbt_member, t.pbt_round or 0, t.parent_trial),
            )
        )
    front: list[int] = []
    if objective.multi:
        width = len(objective.objectives)
        points = {
            t.number: t.values
            for t in trials
            if t.status == TrialStatus.COMPLETE
            and len(t.values) == width
            and all(math.isfinite(v) for v in t.values)
        }
        front = pareto_front(points, objective.directions)
    return ExperimentResults(
        name=record.name,
        generation=record.generation,
        status=record.status.value,
        config=record.config,
        objective=objective,
        params=params_of(record.config),
        trials=trials,
        best=None if objective.multi else _best(trials, objective.direction),
        pareto=front,
    )


def _best(trials: Sequence[TrialResult], direction: str) -> int | None:
    best: tuple[int, float] | None = None
    for t in trials:
        if t.status != TrialStatus.COMPLETE or t.value is None:
            continue
        if best is None or (t.value > best[1] if direction == "maximize" else t.value < best[1]):
            best = (t.number, t.value)
    return None if best is None else best[0]


def select(
    results: ExperimentResults,
    *,
    sort: str = "value",
    reverse: bool = False,
    states: Sequence[str] = (),
    top: int | None = None,
) -> list[TrialResult]:
    """The trials `trials` lists: those in `states` (all when empty), ordered by `sort`
    (value: best first by the objective's direction — with several objectives, by the
    first objective's; a parameter or metric: ascending;
    number, started, duration: ascending), trials lacking the key last, then the first
    `top`. Raises a diagnostic for an unknown state or key."""
    known = [s.value for s in TrialStatus]
    unknown = [s for s in states if s not in known]
    if unknown:
        raise DiagnosticError(
            error(
                "Invalid --state",
                f'"{unknown[0]}" is not a trial state. Use one of {", ".join(known)}.',
            )
        )
    keys = [*SORT_KEYS, *results.param_names, *results.metric_names]
    if sort not in keys:
        raise DiagnosticError(
            error(
                "Invalid --sort",
                f'"{sort}" is not a sort key of {results.address}. Use one of {", ".join(keys)}.',
            )
        )
    if top is not None and top < 1:
        raise DiagnosticError(error("Invalid --top", f"--top must be at least 1, got {top}."))
    chosen = [t for t in results.trials if not states or t.status.value in states]
    now = time.time()

    def key(t: TrialResult) -> Any:
        if sort == "value":
            return t.values[0] if results.multi and t.values else t.value
        if sort == "number":
            return t.number
        if sort == "duration":
            return t.duration(now)
        if sort == "started":
            return t.started_at
        if sort in t.params:
            return t.params[sort]
        return t.metrics.get(sort)

    present = [t for t in chosen if _sortable(key(t))]
    missing = [t for t in chosen if not _sortable(key(t))]
    descending = sort == "value" and results.direction == "maximize"
    present.sort(key=lambda t: (_order_key(key(t)), t.number), reverse=False)
    if descending:
        present.sort(key=lambda t: _order_key(key(t)), reverse=True)
    if reverse:
        present.reverse()
    ordered = present + missing
    return ordered[:top] if top is not None else ordered


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _order_key(value: Any) -> tuple[int, Any]:
    """Numbers before booleans before strings, so mixed choices still sort."""
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (0, value)
    return (2, str(value))
