"""The provider interface: how tunectl runs a trial's tasks somewhere.

A provider is a plugin found through the `tunectl.providers` entry-point group (built-in
providers register the same way). It declares what its `provider` block and its trial/task
blocks accept, validates them without network calls, and runs tasks.

Contract every provider keeps (checked by `tunectl.testing.conformance`):

* `submit` is idempotent on `TaskRequest.key`: submitting a key that already exists
  returns the existing task's handle and never starts a second one.
* `find` returns, for each key, the task that was submitted with it, even by another
  process that has since died (this is how a restarted apply adopts running tasks).
* `poll` never blocks for long; `wait` blocks until something may have changed or the
  timeout passes (providers that cannot tell return after `timeout`).
* Transient faults of the provider's API are retried inside the provider; what escapes is
  a `ProviderError` (infrastructure failure, counted against the trial's `retries`).
* Nothing a provider stores or logs contains credentials.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tunectl.diags import Diagnostic
from tunectl.hcl.schema import AttrSpec as AttrSpec  # the attributes a provider accepts


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


@dataclass(frozen=True)
class Capabilities:
    find_by_key: bool = True  # can find tasks it submitted earlier (adoption)
    events: bool = False  # `wait` returns as soon as a task changes (no polling needed)
    logs: bool = True
    follow_logs: bool = False
    price: bool = False  # `estimate_price` returns a figure
    read_files: bool = False  # `read_file` works (metrics "json" on the task's files)
    local_model_dir: bool = False  # ${trial.model_dir} is a local path tunectl can read
    # Only the machine that submitted a task can poll, read or stop it (local processes):
    # tasks are recorded with their host, and other hosts leave them alone.
    host_local: bool = False
    # Tasks see this machine's files: their default workdir is the configuration directory
    # (SPEC 6); elsewhere (a container) it is the task's own default.
    local_files: bool = False


@dataclass(frozen=True)
class TaskRequest:
    """Everything needed to start one task of one trial attempt.

    `key` is unique per (state lineage, experiment generation, trial, task, attempt) and
    safe to use as a file name or job tag: `[a-z0-9-]+`, at most 64 characters.
    `command` is either a shell string (values already shell-quoted) or an argv list.
    """

    key: str
    experiment: str
    trial_number: int
    task_name: str
    command: str | list[str]
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds
    model_dir: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # provider-specific attrs
    tags: Mapping[str, str] = field(default_factory=dict)
    # Fields whose values derive from sensitive variables: "command", "workdir", or
    # "settings.NAME". The task gets them; no file or log line the provider writes may hold
    # them. (`env` values are always treated so.)
    sensitive: frozenset[str] = frozenset()
    # Files `read_file` will be asked for (metrics "json"), relative to `workdir`. What
    # such a file held before the task started is never handed out (another attempt's or
    # another run's lines); a provider with `read_files` records it at submission.
    metrics_files: tuple[str, ...] = ()


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
    # Trial attributes whose change forces an experiment's replacement (e.g. "image").
    replace_on_change: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        """`config` holds the provider block's evaluated attributes; `state_dir` is the
        directory of the state (providers may keep local bookkeeping beneath it)."""
        self.config = dict(config)
        self.state_dir = state_dir

    # -- validation (no network) ------------------------------------------------------

    def validate_config(self) -> list[Diagnostic]:
        """Check the provider block beyond the schema (cross-field rules)."""
        return []

    def validate_task(self, settings: Mapping[str, Any]) -> list[str]:
        """Check a task's provider-specific settings; return error sentences."""
        return []

    def capacity(self) -> int | None:
        """How many tasks may run at once (e.g. local `slots`); None for no limit."""
        return None

    # -- running ------------------------------------------------------------------------

    @abc.abstractmethod
    def submit(self, request: TaskRequest) -> TaskHandle: ...

    @abc.abstractmethod
    def find(self, keys: Sequence[str]) -> dict[str, TaskHandle]: ...

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

    def read_file(self, handle: TaskHandle, path: str, cursor: int) -> LogChunk:
        """Complete lines of a file the task writes (relative to its workdir)."""
        raise ProviderError(f"provider {self.name!r} cannot read task files")

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

    def estimate_price(self, settings: Mapping[str, Any], seconds: float) -> float | None:
        """Estimated cost of running a task with `settings` for `seconds`, or None."""
        return None

    def close(self) -> None:
        """Release connections and file descriptors."""
        return None
