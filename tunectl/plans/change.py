"""What a plan is made of: `Change`s to experiments, drift, and trial-level intent.

The differ (`tunectl.plans.differ`) computes a `Plan`; renderers in `tunectl.views` turn it
into text, JSON or markdown; the engine carries it out. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

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
    status: str = "pending"
    space_size: int | None = None  # finite search space (grid/bruteforce)
    estimated_cost: float | None = None  # in the provider's currency
    currency: str = ""

    def sentence(self) -> str:
        if self.to_run == 0 and self.running == 0:
            return f"will run no trials ({self.done} done, status {self.status})"
        if self.to_run == 0:
            return (
                f"will start no new trials and follow the {self.running} running ({self.done} done)"
            )
        text = (
            f"will run up to {self.to_run} trials, {self.max_concurrent} at a time "
            f"({self.done} done, {self.running} running)"
        )
        if self.estimated_cost is not None:
            text += f", estimated cost {self.currency}{self.estimated_cost:,.2f}"
        return text


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

    @property
    def name(self) -> str:
        return self.address.split(".", 1)[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "type": "experiment",
            "name": self.name,
            "action": self.action.value,
            "before": self.before,
            "after": self.after,
            "attributes": [a.to_json() for a in self.attrs],
            "reasons": self.reasons,
            "consequences": self.consequences,
            "intent": asdict(self.intent) if self.intent else None,
        }


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
    # Plan-time errors that make the plan unappliable (e.g. prevent_destroy).
    errors: list[str] = field(default_factory=list)

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

    def summary_line(self) -> str:
        if not self.has_changes:
            return "No changes. Your experiments match the configuration."
        add, change, destroy = self.counts
        return f"Plan: {add} to add, {change} to change, {destroy} to destroy."

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
            "errors": self.errors,
        }
