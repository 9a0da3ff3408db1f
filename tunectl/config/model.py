"""The evaluated configuration: what a directory of `*.hcl` files declares.

Produced by `tunectl.config.load`; everything here is plain data (numbers, strings,
`Template`s for deferred placeholders) with the `SourceRange` it came from. Nothing here
talks to the state or to providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunectl.config.notify import Notify
from tunectl.config.schedule import Schedule
from tunectl.diags import Diagnostic, SourceFiles, SourceRange
from tunectl.hcl.syntax import Expr
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.stopping import StopRules


@dataclass(frozen=True)
class Objective:
    """`metric` (one name), `metrics` (name -> weight, a weighted sum as in PAI), or
    several objectives (`metrics = [NAME, ...]` with `directions`, each metric optimised
    for itself: Optuna's multi-objective study, whose result is a Pareto front)."""

    direction: str  # "maximize" | "minimize"
    metric: str | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    goal: float | None = None
    reduce: str = "final"  # final | best | avg
    # With several metric sources per trial (its tasks): each source is reduced by
    # `reduce`, then the sources' values by this (`tunectl.engine.objective`).
    sources_reduce: str | None = None
    # Several objectives: (metric, direction) in declared order. `direction` is then the
    # first's, and `metric`/`metrics` are unset.
    objectives: tuple[tuple[str, str], ...] = ()

    @property
    def multi(self) -> bool:
        """Several objectives: trials have a vector of values and no single best."""
        return bool(self.objectives)

    @property
    def directions(self) -> list[str]:
        """One direction per objective (one for a single objective)."""
        return [d for _, d in self.objectives] if self.objectives else [self.direction]

    @property
    def metric_names(self) -> list[str]:
        if self.objectives:
            return [name for name, _ in self.objectives]
        return [self.metric] if self.metric else [name for name, _ in self.metrics]


@dataclass(frozen=True)
class MetricsSource:
    """`metrics "stdout" { pattern }`, `"json" { path }`, `"tensorboard" { logdir }`,
    `"table" { sql }`. `name` is the metric a single-group pattern reports."""

    kind: str
    settings: tuple[tuple[str, Any], ...] = ()
    # The settings that hold placeholders (`path = "m/${trial.id}.jsonl"`), as Templates
    # resolved per trial; `settings` has their source text, which is what plans compare.
    deferred: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)

    def deferred_get(self, key: str, default: Any = None) -> Any:
        """A setting as evaluated: a Template when it holds placeholders."""
        return dict(self.deferred).get(key, self.get(key, default))


@dataclass(frozen=True)
class TaskSpec:
    """One task of a trial. `command` and `bodies` may hold `Template`s (resolved per
    trial, each through its kind: `tunectl.providers.bodies`)."""

    name: str
    provider: str
    command: Any  # str | Template | list[str | Template]; None when the task has no command
    workdir: str | None = None
    env: tuple[tuple[str, Any], ...] = ()
    timeout: float | None = None
    settings: tuple[tuple[str, Any], ...] = ()  # provider-specific attributes
    metrics: tuple[MetricsSource, ...] = ()
    range: SourceRange | None = field(default=None, compare=False)
    # The task's other bodies its provider declares (`Provider.task_bodies`), by name, in
    # the order declared: `pai = "-name ..."`, `sql = [...]`.
    bodies: tuple[tuple[str, Any], ...] = ()
    # Attributes whose values derive from sensitive variables: "command", "workdir",
    # "env" (the whole map) or "env.NAME", "metrics", or a provider setting's name.
    sensitive: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FileTemplate:
    """`template { source, destination, format }` of a trial: a file rendered with the
    trial's values before its tasks start (`tunectl.config.templates`)."""

    source: str  # relative to the configuration directory, or absolute
    destination: Any  # str | Template; relative to the first task's workdir
    format: str = "json"  # json | text: how a value is written into the file
    text: str = ""  # the source file's text, read at load
    range: SourceRange | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TrialSpec:
    provider: str
    tasks: tuple[TaskSpec, ...]
    timeout: float | None = None
    retries: int = 0
    range: SourceRange | None = field(default=None, compare=False)
    templates: tuple[FileTemplate, ...] = ()

    @property
    def metrics(self) -> tuple[MetricsSource, ...]:
        return tuple(m for t in self.tasks for m in t.metrics)


@dataclass(frozen=True)
class WarmStart:
    """`warm_start = true` (`carry`) or `warm_start { from = experiment.X, top = N }`
    (`source`): trials a new generation of the experiment starts with
    (`tunectl.search.enqueue.fits` says which trials fit its space)."""

    carry: bool = False  # carry the replaced generation's fitting trials
    source: str | None = None  # seed from this experiment's best trials
    top: int | None = None  # at most this many of them (None: every one that fits)
    range: SourceRange | None = None


@dataclass(frozen=True)
class Lifecycle:
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()


@dataclass
class Experiment:
    name: str
    algorithm: Algorithm
    objective: Objective
    params: tuple[ParamSpec, ...]
    trial: TrialSpec
    description: str = ""
    max_trials: int = 10
    max_concurrent: int = 1
    max_failed_trials: int | None = None
    max_duration: float | None = None  # seconds
    max_cost: float | None = None  # in the provider's currency (`tunectl.providers.prices`)
    max_trials_without_improvement: int | None = None
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    # `enqueue`: parameter sets (external values, active parameters only) run before the
    # algorithm's own proposals, in order (`tunectl.search.enqueue`).
    enqueue: tuple[dict[str, Any], ...] = ()
    # When trials may be launched (`tunectl.config.schedule`); None: at any time.
    schedule: Schedule | None = None
    notify: Notify | None = None
    warm_start: WarmStart | None = None
    range: SourceRange | None = None
    # Where each top-level attribute / nested block was written, for diagnostics and plans.
    ranges: dict[str, SourceRange] = field(default_factory=dict)
    # Dotted paths of the canonical experiment (`tunectl.plans.differ.canonical`) whose
    # values derive from sensitive variables: stored and shown only as markers.
    sensitive: frozenset[str] = frozenset()

    @property
    def stop_rules(self) -> StopRules:
        """What ends this experiment's search (`tunectl.search.stopping`)."""
        return StopRules(
            direction=self.objective.direction,
            max_trials=self.max_trials,
            goal=self.objective.goal,
            max_failed_trials=self.max_failed_trials,
            max_duration=self.max_duration,
            max_trials_without_improvement=self.max_trials_without_improvement,
            max_cost=self.max_cost,
        )


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    settings: dict[str, Any]
    range: SourceRange | None = None


@dataclass(frozen=True)
class StorageConfig:
    kind: str  # "local" | "s3"
    settings: dict[str, Any]
    range: SourceRange | None = None


@dataclass(frozen=True)
class BackendConfig:
    kind: str  # "local" | "s3"
    settings: dict[str, Any]
    range: SourceRange | None = None


@dataclass
class Output:
    name: str
    expr: Expr
    description: str = ""
    sensitive: bool = False
    range: SourceRange | None = None


@dataclass
class Variable:
    name: str
    type: str | None = None
    default: Any = None
    has_default: bool = False
    description: str = ""
    sensitive: bool = False
    range: SourceRange | None = None


@dataclass
class Config:
    directory: Path
    sources: SourceFiles
    variables: dict[str, Variable]
    values: dict[str, Any]  # evaluated var.* values
    locals: dict[str, Any]
    providers: dict[str, ProviderConfig]
    storage: StorageConfig
    backend: BackendConfig
    experiments: dict[str, Experiment]
    outputs: dict[str, Output]
    # sha256 over the files' text and the values of variables that are not sensitive; a
    # saved plan records it together with an HMAC of the sensitive ones (Workspace.digest).
    digest: str = ""
    # What loading found that is not an error (a setting that has no effect, a provider's
    # warning): validate, plan and apply show them, and `validate --json` lists them.
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def sensitive_values(self) -> dict[str, Any]:
        """The values of the variables declared `sensitive = true`."""
        return {k: v for k, v in self.values.items() if self.variables[k].sensitive}
