"""The statuses experiments, trials and recorded tasks go through: one vocabulary for the
state, the engine, plans and views.

Each is a `(str, Enum)`: a member equals its string value, so statuses read back from the
state compare equal to members, and a member is stored as its value. Write `.value` where
text is formatted (`str()` of a mixed-in enum differs across Python versions).
"""

from __future__ import annotations

import enum


class ExperimentStatus(str, enum.Enum):
    PENDING = "pending"  # created, no trial launched yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # a stop condition was met with at least one complete trial
    FAILED = "failed"
    STOPPED = "stopped"  # stopped before its stop conditions (destroy, too many failures)


class TrialStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (TrialStatus.COMPLETE, TrialStatus.PRUNED, TrialStatus.FAILED)


class TaskRecordStatus(str, enum.Enum):
    """A task as the state records it: the provider's `TaskState` values, and `submitting`
    (written before the provider is called, so a crash mid-submit is adopted, not lost)."""

    SUBMITTING = "submitting"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def active(self) -> bool:
        """It may still be running somewhere and must be adopted or stopped."""
        return self in ACTIVE_TASK_STATUSES


EXPERIMENT_STATUSES = tuple(s.value for s in ExperimentStatus)
TRIAL_STATUSES = tuple(s.value for s in TrialStatus)
TASK_STATUSES = tuple(s.value for s in TaskRecordStatus)
ACTIVE_TASK_STATUSES = (
    TaskRecordStatus.SUBMITTING.value,
    TaskRecordStatus.PENDING.value,
    TaskRecordStatus.RUNNING.value,
)
