"""What operations report while they run; the CLI renders each through `tunectl.views`.

Events are emitted in order to one callback (`Emit`), so what a user sees keeps the order
in which things happened (a plan, then each experiment's change, then trial events)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.plans.change import Plan


@dataclass(frozen=True)
class PlanReady:
    """The plan apply or destroy is about to carry out, to show before approval."""

    plan: Plan


@dataclass(frozen=True)
class ExperimentChanged:
    """An experiment-level change was made: "created", "updated in-place", "destroyed",
    "destroyed for replacement"."""

    name: str
    what: str


@dataclass(frozen=True)
class TrialEvent:
    """One thing that happened to a trial (the engine's `kind`: started, complete, pruned,
    failed, adopt, warn, ...)."""

    kind: str
    experiment: str
    message: str
    trial: int | None = None  # the trial, when the event ends one
    output: tuple[str, ...] = ()  # a failed trial's last lines of output


@dataclass(frozen=True)
class RunStarted:
    """The trial loop starts; `runners` report each experiment's live progress."""

    runners: Sequence[Any]


@dataclass(frozen=True)
class LoopPass:
    """A pass of the trial loop ended (several a second while trials run, at least every
    10 s): a view may refresh what it shows, such as a status line at an interval."""


@dataclass(frozen=True)
class RunStopped:
    """The trial loop ended (or was interrupted)."""


@dataclass(frozen=True)
class Note:
    """A line for the user (e.g. what an interrupted or a --once apply leaves running)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """Apply is done: `ran` when trials ran (then `exported` is each experiment's summary
    and `failed` whether one ended failed); `outputs` as recorded."""

    ran: bool
    failed: bool = False
    exported: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, tuple[Any, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Destroyed:
    """Destroy is done: `count` experiments destroyed."""

    count: int


Event = (
    PlanReady
    | ExperimentChanged
    | TrialEvent
    | RunStarted
    | LoopPass
    | RunStopped
    | Note
    | Finished
    | Destroyed
)
Emit = Callable[[Event], None]
