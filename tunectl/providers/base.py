"""The provider interface, contract v2: how tunectl runs a trial's tasks somewhere.

A provider is a plugin found through the `tunectl.providers` entry-point group (built-in
providers register the same way). It declares what its `provider` block and its trial/task
blocks accept (`config_schema`, `trial_schema`), the bodies its tasks take and how a
placeholder's value is quoted in each (`task_bodies`, see `tunectl.providers.bodies`), and
which metric sources it can read (`capabilities.metric_sources`). Validation is a pair of
request/response calls that make no network calls; running is `submit`, `poll`, `wait`,
`read_log`/`read_metrics`, `cancel`. The page a provider author follows is
`docs/providers.md`.

Contract every provider keeps (checked by `tunectl.testing.conformance`):

* `submit` is idempotent on `TaskRequest.key`: submitting a key that already exists
  returns the existing task's handle and never starts a second one — also from another
  process after the first one died. This is how a restarted apply adopts its tasks: it
  submits the recorded key again (there is no separate lookup call).
* `poll` never blocks for long; `wait` blocks until something may have changed or the
  timeout passes (providers that cannot tell return after `timeout`).
* Transient faults of the provider's API are retried inside the provider; what escapes is
  a `ProviderError` (infrastructure failure, counted against the trial's `retries`).
* Nothing a provider stores or logs contains credentials, nor a field `TaskRequest`
  marks sensitive.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tunectl.diags import Severity
from tunectl.hcl.schema import AttrSpec as AttrSpec  # the attributes a provider accepts
from tunectl.providers.bodies import COMMAND, BodySpec


class TaskState(str, enum.Enum):
    PENDING = "pending"  # accepted, not yet running (queued, creating, ...)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the task's own failure (non-zero exit, job failed)
    CANCELLED = "cancelled"  # stopped by tunectl or from outside
    LOST = "lost"  # the provider no longer knows the task (infrastructure failure)

    @property
    def terminal(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.RUNNING)


class MetricSource(str, enum.Enum):
    """Where a task's metrics can be read from; a provider lists those it reads in
    `Capabilities.metric_sources`, and `validate` refuses a `metrics` block whose source
    the trial's provider cannot read."""

    STDOUT = "stdout"  # the task's output (`metrics "stdout"`), as `read_log` serves it
    FILE = "file"  # a file the task writes, relative to its workdir (`metrics "json"`)
    EVENTS = "events"  # TensorBoard event files (`metrics "tensorboard"`)
    TABLE = "table"  # rows of a result table (`metrics "table"`)


# The source each `metrics "KIND"` block of the language reads.
METRICS_KIND_SOURCES: Mapping[str, MetricSource] = {
    "stdout": MetricSource.STDOUT,
    "json": MetricSource.FILE,
    "tensorboard": MetricSource.EVENTS,
    "table": MetricSource.TABLE,
}


@dataclass(frozen=True)
class MetricsRef:
    """One metric source of one task: its kind and where it is (`location`: a file path
    relative to the task's workdir, a table name, an event directory; empty for stdout)."""

    source: MetricSource
    location: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do beyond the required calls. Core reads every field."""

    events: bool = False  # `wait` returns as soon as a task changes (no polling needed)
    price: bool = False  # `estimate_price` returns a figure (plan's cost estimate)
    local_model_dir: bool = False  # ${trial.model_dir} is a local path tunectl can read
    # Only the machine that submitted a task can poll, read or stop it (local processes):
    # tasks are recorded with their host, and other hosts leave them alone.
    host_local: bool = False
    # Tasks see this machine's files: their default workdir is the configuration directory
    # (SPEC 6); elsewhere (a container) it is the task's own default.
    local_files: bool = False
    # The sources `read_metrics` serves; stdout is read through `read_log`.
    metric_sources: frozenset[MetricSource] = frozenset({MetricSource.STDOUT})


# -- validation: one request and one response per call --------------------------------


@dataclass(frozen=True)
class AttributeDiagnostic:
    """A problem a provider found, pointed at the attribute it is about.

    `path` names the attribute inside the block that was validated: `("region",)`,
    `("worker", "count")`, `("data_sources", 0)`; empty for the block as a whole. Core
    maps the path's first step to the attribute's source range (line and column), else
    to the block's, and reports it as a `tunectl.diags.Diagnostic`.
    """

    severity: Severity
    summary: str
    detail: str = ""
    path: tuple[str | int, ...] = ()


def attribute_error(
    path: tuple[str | int, ...], summary: str, detail: str = ""
) -> AttributeDiagnostic:
    return AttributeDiagnostic("error", summary, detail, path)


def attribute_warning(
    path: tuple[str | int, ...], summary: str, detail: str = ""
) -> AttributeDiagnostic:
    return AttributeDiagnostic("warning", summary, detail, path)


@dataclass(frozen=True)
class ValidateConfigRequest:
    """The provider block's evaluated attributes, defaults filled in (schema-checked)."""

    config: Mapping[str, Any]


@dataclass(frozen=True)
class ValidateTaskRequest:
    """One task's provider-specific attributes (the trial's, overridden by the task's),
    schema-checked, and the provider block's (empty when the configuration has none)."""

    settings: Mapping[str, Any]
    config: Mapping[str, Any] = field(default_factory=dict)
    task: str = "main"
    bodies: frozenset[str] = frozenset()  # the names of the bodies the task sets


@dataclass(frozen=True)
class ValidateResponse:
    diagnostics: tuple[AttributeDiagnostic, ...] = ()

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


# -- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRequest:
    """Everything needed to start one task of one trial attempt.

    `key` is unique per (state lineage, experiment generation, trial, task, attempt) and
    safe to use as a file name or job tag: `[a-z0-9-]+`, at most 64 characters.
    `bodies` holds each body the provider declares (`Provider.task_bodies`) that the task
    sets, rendered by the body's kind: a `command` is a shell string (values already
    quoted for the shell) or an argv list.
    """

    key: str
    experiment: str
    trial_number: int
    task_name: str
    bodies: Mapping[str, str | list[str]]
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds
    model_dir: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # provider-specific attrs
    tags: Mapping[str, str] = field(default_factory=dict)
    # Fields whose values derive from sensitive variables: a body's name ("command"),
    # "workdir", or "settings.NAME". The task gets them; no file or log line the provider
    # writes may hold them. (`env` values are always treated so.)
    sensitive: frozenset[str] = frozenset()
    # Files `read_metrics` will be asked for (`MetricSource.FILE`), relative to `workdir`.
    # What such a file held before the task started is never handed out (another
    # attempt's or another run's lines); a provider that reads files records it at
    # submission.
    metrics_files: tuple[str, ...] = ()
    # Event directories `read_metrics` will be asked for (`MetricSource.EVENTS`): what their
    # event files held before the task started is never handed out either.
    metrics_dirs: tuple[str, ...] = ()
    # When core first recorded this key, `submitting` (clock time). A key submitted again
    # by a later process (an apply after a crash) keeps its first time: a provider that
    # looks keys up needs to search no further back than this.
    recorded_at: float | None = None

    @property
    def command(self) -> str | list[str]:
        """The `command` body, for providers whose tasks are commands."""
        return self.bodies.get("command", "")


@dataclass(frozen=True)
class TaskHandle:
    """A provider's reference to a submitted task; `id` is what the state stores."""

    key: str
    id: str


@dataclass(frozen=True)
class TaskStatus:
    state: TaskState
    exit_code: int | None = None
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class LogChunk:
    """Lines read from a task's output after a cursor, and the cursor to continue from."""

    lines: list[str]
    cursor: int
    # The last line is unfinished: a line longer than one read is handed out in pieces
    # (reads stay bounded), and its rest starts the next chunk.
    partial: bool = False


class ProviderError(Exception):
    """An infrastructure failure (API error after retries, lost task, bad credentials).

    `permanent` says that repeating the call cannot help (wrong credentials, a request the
    API rejects): apply then stops with the message instead of backing off and retrying.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(abc.ABC):
    """A place that runs tasks. Instances are not shared between threads."""

    name: ClassVar[str]
    version: ClassVar[str] = "0"
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Attributes of `provider "NAME" { ... }`.
    config_schema: ClassVar[tuple[AttrSpec, ...]] = ()
    # Provider-specific attributes of `trial { ... }` / `task "x" { ... }` (beyond the
    # common ones: provider, command, workdir, env, timeout, retries, metrics).
    trial_schema: ClassVar[tuple[AttrSpec, ...]] = ()
    # The bodies a task takes, each with the kinds (quoting rules) it accepts.
    task_bodies: ClassVar[tuple[BodySpec, ...]] = (COMMAND,)
    # Trial attributes whose change forces an experiment's replacement (e.g. "image").
    replace_on_change: ClassVar[tuple[str, ...]] = ()
    # The provider-block attribute that gives prices (`hourly_price`), named when
    # `max_cost` is refused for want of one; empty when prices cannot be given.
    price_setting: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        """`config` holds the provider block's evaluated attributes; `state_dir` is the
        directory of the state (providers may keep local bookkeeping beneath it)."""
        self.config = dict(config)
        self.state_dir = state_dir

    # -- validation (no network, no instance) -----------------------------------------

    @classmethod
    def validate_config(cls, request: ValidateConfigRequest) -> ValidateResponse:
        """Check the provider block beyond the schema (cross-field rules)."""
        return ValidateResponse()

    @classmethod
    def validate_task(cls, request: ValidateTaskRequest) -> ValidateResponse:
        """Check a task's provider-specific settings beyond the schema."""
        return ValidateResponse()

    def capacity(self) -> int | None:
        """How many tasks may run at once (e.g. local `slots`); None for no limit."""
        return None

    # -- running ------------------------------------------------------------------------

    @abc.abstractmethod
    def submit(self, request: TaskRequest) -> TaskHandle:
        """Start the task, or return the handle of the task already submitted with
        `request.key` (by this process or an earlier one)."""

    @abc.abstractmethod
    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        """Status of each handle, keyed by handle id."""

    def wait(self, handles: Sequence[TaskHandle], timeout: float) -> None:
        """Block until one of `handles` may have changed, or `timeout` seconds pass."""
        import time

        time.sleep(timeout)

    @abc.abstractmethod
    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        """Complete lines of the task's output (stdout then stderr merged) after `cursor`."""

    def log_header(self, handle: TaskHandle) -> list[str]:
        """Lines `tunectl logs` prints before a task's output: where to see more of it (a
        console or Logview address). Made when asked, never stored; may hold short-lived
        access tokens for the user who asked, never credentials."""
        return []

    def read_file(self, handle: TaskHandle, path: str, cursor: int) -> LogChunk:
        """Complete lines of a file the task writes (relative to its workdir); providers
        listing `MetricSource.FILE` implement it (or override `read_metrics`)."""
        raise ProviderError(f"provider {self.name!r} cannot read task files")

    def read_metrics(self, handle: TaskHandle, ref: MetricsRef, cursor: int) -> LogChunk:
        """Lines of one metric source after `cursor` — the one call core reads metrics
        through. Stdout is `read_log`, a file `read_file`; a provider with other sources
        (result tables, event files) overrides this and serves them as lines too."""
        if ref.source is MetricSource.STDOUT:
            return self.read_log(handle, cursor)
        if ref.source is MetricSource.FILE:
            return self.read_file(handle, ref.location, cursor)
        raise ProviderError(f"provider {self.name!r} cannot read {ref.source.value} metrics")

    @abc.abstractmethod
    def cancel(self, handle: TaskHandle) -> None:
        """Stop the task (and everything it started). Idempotent."""

    def cancel_all(self, handles: Sequence[TaskHandle]) -> dict[str, ProviderError]:
        """Stop every task as `cancel` does; return the failures by handle id. Providers
        whose stop waits (a grace period) override this to wait for all at once."""
        errors: dict[str, ProviderError] = {}
        for handle in handles:
            try:
                self.cancel(handle)
            except ProviderError as exc:
                errors[handle.id] = exc
        return errors

    def cleanup(self, handle: TaskHandle) -> None:
        """Forget a finished task's bookkeeping (called on destroy)."""
        return None

    @classmethod
    def hourly_price(
        cls, config: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> float | None:
        """What an hour of a task with `settings` costs under the provider block `config`,
        in the provider's currency; None when unknown. No network, no instance: validate
        asks it to accept `max_cost`. Optional; the default knows no price."""
        return None

    def estimate_price(self, settings: Mapping[str, Any], seconds: float) -> float | None:
        """Estimated cost of running a task with `settings` for `seconds`, or None.
        The default prices the time at `hourly_price`."""
        rate = type(self).hourly_price(self.config, settings)
        return None if rate is None else rate * seconds / 3600

    def close(self) -> None:
        """Release connections and file descriptors."""
        return None
