"""The records the state stores: plain, mutable dataclasses that carry no behaviour.

Each record is one row; `to_dict()` gives a JSON-able copy. Field invariants:

* `generation` identifies one creation of an experiment (a replacement is a new one);
  trials, tasks and metrics belong to one generation, so a replaced experiment starts over
  without mixing its trials with the old ones.
* Generations are drawn from one counter per state lineage that never goes back (not even
  when an experiment is destroyed or removed with `state rm`), so a generation number is
  never used twice within a lineage, whatever the experiment.
* Trial numbers start at 0 within an (experiment, generation), like Optuna's.
* Times are UNIX seconds (`time.time()`); `None` means "not yet".
* `status` is a member of the enum of `tunectl.status`, also when read back from the state
  (the store converts the stored text); the file keeps the member's value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tunectl.status import ExperimentStatus, TaskRecordStatus, TrialStatus


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass
class ExperimentRecord(_Record):
    name: str
    generation: int = 1
    # The experiment's evaluated configuration (JSON-able), and a hash of it for the differ.
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    status: ExperimentStatus = ExperimentStatus.PENDING
    stop_reason: str = ""
    created_at: float = 0
    started_at: float | None = None
    finished_at: float | None = None
    # The `max_duration` clock, across applies: seconds used in closed segments, and when
    # the open segment started (None while the clock is paused). See search/stopping.py.
    elapsed: float = 0.0
    clock_since: float | None = None


@dataclass
class TrialRecord(_Record):
    experiment: str
    number: int
    id: str
    params: dict[str, Any]
    status: TrialStatus = TrialStatus.PENDING
    value: float | None = None  # the objective; None until reported (NaN reads back as None)
    values: dict[str, float] = field(default_factory=dict)  # last value of every metric
    attempt: int = 0
    task_index: int = 0  # the task the trial is at, for trials of several tasks
    created_at: float = 0
    started_at: float | None = None
    finished_at: float | None = None
    model_uri: str | None = None
    message: str = ""
    last_step: int | None = None
    generation: int = 1
    # The sampler's view of the trial: raw (internal) parameter values and its bookkeeping,
    # so the search can be rebuilt exactly from the state.
    internal: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    # With several objectives: the trial's values, one per objective, as told to the
    # sampler (`value` is then None); empty otherwise.
    objective_values: list[float] = field(default_factory=list)
    # Population based training (tunectl.search.pbt): the member this trial trains, its
    # round, and the trial whose checkpoint it starts from. None for other algorithms.
    pbt_member: int | None = None
    pbt_round: int | None = None
    parent_trial: int | None = None


@dataclass
class TaskRecord(_Record):
    # `key` is the idempotency key given to the provider: one key, at most one task.
    key: str
    experiment: str
    trial_number: int
    task_index: int
    task_name: str
    attempt: int
    provider: str
    handle_id: str | None = None  # the provider's id, once `submit` returned
    status: TaskRecordStatus = TaskRecordStatus.SUBMITTING
    exit_code: int | None = None
    log_cursor: int = 0
    file_cursors: dict[str, int] = field(default_factory=dict)
    submitted_at: float = 0
    finished_at: float | None = None
    message: str = ""
    generation: int = 1
    # The host a host-local task runs on (`Capabilities.host_local`); None for tasks any
    # host can reach, and for tasks recorded before hosts were.
    host: str | None = None


@dataclass
class MetricRecord(_Record):
    experiment: str
    trial_number: int
    name: str
    step: int | None
    value: float
    ts: float
    generation: int = 1


@dataclass
class ModelObjectRecord(_Record):
    """One file or object a trial stored: `location` is its URI (`s3://bucket/key`) or
    absolute path. Destroy and `keep` delete exactly these."""

    experiment: str
    trial_number: int
    location: str
    size: int
    generation: int = 1


@dataclass
class LockInfo(_Record):
    """Who holds the state lock; written next to the lock file by the holder."""

    id: str
    operation: str  # e.g. "OperationTypeApply", as Terraform names them
    who: str  # "user@host"
    version: str  # the holder's tunectl version
    created: str  # ISO-8601, UTC
    path: str  # the state file the lock protects
    pid: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockInfo:
        """Raises `ValueError` when `data` is not a complete lock info."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"The lock info lacks {', '.join(missing)}.")
        return cls(
            **{n: data[n] for n in names if n != "pid"},
            pid=int(data["pid"]),
        )
