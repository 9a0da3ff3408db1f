"""What a plan is made of: `Change`s to experiments, drift, trial-level intent, and the
plan-time errors (`Diagnostic`s) that make a plan unappliable.

The differ (`tunectl.plans.differ`) computes a `Plan`; renderers in `tunectl.views` turn it
into text, JSON or markdown (the sentences people read are built there, from these fields);
the engine carries it out. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from tunectl.addrs import parse_address
from tunectl.diags import Diagnostic, error
from tunectl.status import ExperimentStatus

FORMAT_VERSION = "1.0"


class Action(str, enum.Enum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # destroy, then create
    DESTROY = "delete"

    @property
    def symbol(self) -> str:
        return {
            Action.NOOP: " ",
            Action.CREATE: "+",
            Action.UPDATE: "~",
            Action.REPLACE: "-/+",
            Action.DESTROY: "-",
        }[self]


class _Missing:
    """Marks the absent side of an attribute change (added or removed)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True)
class AttrChange:
    """One changed attribute, by dotted path (`max_trials`, `param.lr.high`)."""

    path: str
    before: Any = MISSING
    after: Any = MISSING
    forces_replacement: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.before is not MISSING:
            out["before"] = self.before
        if self.after is not MISSING:
            out["after"] = self.after
        out["forces_replacement"] = self.forces_replacement
        return out


@dataclass(frozen=True)
class TrialIntent:
    """What apply will do for one experiment, in trial terms."""

    max_trials: int
    max_concurrent: int
    done: int = 0  # complete + pruned + failed
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    to_run: int = 0  # trials apply may still start
    status: ExperimentStatus = ExperimentStatus.PENDING
    space_size: int | None = None  # finite search space (grid/bruteforce)
    estimated_cost: float | None = None  # in the provider's currency
    currency: str = ""
    # With `max_cost`: the budget, and the estimated spend of the trials run so far.
    max_cost: float | None = None
    spent: float | None = None
    # Ended trials `--replace experiment.X.trial[N]` runs again (counted as running).
    rerun: tuple[int, ...] = ()
    # With a `schedule`: when trials may launch (`window open until ...`, or when the
    # next window opens), in the schedule's time zone.
    schedule: str = ""
    # What the algorithm runs when it is more than trials up to max_trials (PBT's rounds).
    search: str = ""


@dataclass(frozen=True)
class Carry:
    """Finished trials a new generation of an experiment starts with (`warm_start`).

    `source` is the address they come from: the experiment itself (its replaced
    generation) or the one `warm_start { from }` names. `total` complete trials were
    looked at, `fit` of them fit the new space (`tunectl.search.enqueue.fits`), and the
    new generation starts with `carried` (0 without warm_start; at most `top` from another
    experiment). `waits`: the source runs trials in this apply first, so the figures are
    as of now and the seeding happens when it has finished."""

    source: str
    total: int
    fit: int
    carried: int
    top: int | None = None
    waits: bool = False


@dataclass
class Change:
    address: str  # experiment.mnist
    action: Action
    before: dict[str, Any] | None = None  # canonical experiment dict in the state
    after: dict[str, Any] | None = None  # canonical experiment dict in the configuration
    attrs: list[AttrChange] = field(default_factory=list)
    # Why the action was chosen when not obvious from attrs (e.g. "--replace").
    reasons: list[str] = field(default_factory=list)
    # What the action does beyond the config, in plain words ("stops 2 running trials").
    consequences: list[str] = field(default_factory=list)
    intent: TrialIntent | None = None
    carry: Carry | None = None  # with a new generation: the trials it starts with
    # `plan --preview N`: the next parameter sets the sampler proposes (informational,
    # never part of what a saved plan applies).
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return parse_address(self.address, trials=False).experiment

    def to_json(self) -> dict[str, Any]:
        out = {
            "address": self.address,
            "type": "experiment",
            "name": self.name,
            "action": self.action.value,
            "before": self.before,
            "after": self.after,
            "attributes": [a.to_json() for a in self.attrs],
            "reasons": self.reasons,
            "consequences": self.consequences,
            "intent": _intent_json(self.intent) if self.intent else None,
        }
        if self.carry is not None:
            out["carry"] = asdict(self.carry)
        if self.preview:
            out["preview"] = self.preview
        return out


@dataclass(frozen=True)
class Drift:
    """A trial whose task changed outside of tunectl since the last apply."""

    address: str  # experiment.mnist.trial[3]
    before: str  # status in the state
    after: str  # status seen at refresh
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    destroy: bool = False  # made with --destroy
    lineage: str = ""
    serial: int = 0
    config_digest: str = ""
    variables: dict[str, Any] = field(default_factory=dict)  # non-sensitive values only
    targets: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    # Plan-time errors that make the plan unappliable (e.g. prevent_destroy), with the
    # source range of what causes them where there is one.
    errors: list[Diagnostic] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        add = change = destroy = 0
        for c in self.changes:
            if c.action is Action.CREATE:
                add += 1
            elif c.action is Action.UPDATE:
                change += 1
            elif c.action is Action.DESTROY:
                destroy += 1
            elif c.action is Action.REPLACE:
                add += 1
                destroy += 1
        return add, change, destroy

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def pending_work(self) -> bool:
        """True when apply would run trials even though no experiment block changed."""
        return any(
            c.intent is not None and (c.intent.to_run > 0 or c.intent.running > 0)
            for c in self.changes
            if c.action is not Action.DESTROY
        )

    def to_json(self) -> dict[str, Any]:
        add, change, destroy = self.counts
        return {
            "format_version": FORMAT_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "config_digest": self.config_digest,
            "destroy": self.destroy,
            "variables": self.variables,
            "targets": self.targets,
            "replace": self.replace,
            "changes": [c.to_json() for c in self.changes],
            "drift": [d.to_json() for d in self.drift],
            "summary": {"add": add, "change": change, "destroy": destroy},
            # The plan format predates diagnostics: an error is its sentence.
            "errors": [error_text(d) for d in self.errors],
        }


PLAN_ERROR = "Plan cannot be applied"
"""The summary of a plan-time error read back from a plan's JSON, which keeps only its text."""


def error_text(diag: Diagnostic) -> str:
    """What the JSON plan says of a plan-time error: its detail (its summary if it has none)."""
    return diag.detail or diag.summary


def error_from_text(text: str) -> Diagnostic:
    return error(PLAN_ERROR, text)


def _intent_json(intent: TrialIntent) -> dict[str, Any]:
    out = asdict(intent)
    out["status"] = intent.status.value
    if not intent.search:
        del out["search"]
    return out
