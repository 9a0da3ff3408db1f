"""The launch gate of an experiment's `schedule`: new trials start only inside a window.

Trials already running go on when a window closes, and a trial already asked for (waiting
to be submitted, or moving on to its next task) is still submitted: the gate holds back
only the algorithm's next trials. Apply says once when the gate closes (and when the next
window opens) and once when it opens again; `tunectl.engine.reconcile` waits at its slow
polling pace while every experiment it runs is held. The window arithmetic is
`tunectl.config.schedule`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from tunectl.config.schedule import Schedule

Event = Callable[[str, str, str], None]  # (kind, experiment, message)


class ScheduleGate:
    """Whether an experiment may launch new trials now. Without a schedule: always."""

    def __init__(
        self, schedule: Schedule | None, experiment: str, clock: Callable[[], float], event: Event
    ) -> None:
        self.schedule = schedule
        self.experiment = experiment
        self.clock = clock
        self.event = event
        self.closed = False
        self.opens: float | None = None  # when the window opens, while closed
        self._said: float | None = None  # the opening last announced

    def allows(self) -> bool:
        """True inside a window; says when the gate closes or opens again."""
        if self.schedule is None:
            return True
        now = self.clock()
        opens = self.schedule.next_open(now)
        if opens is None:
            if self.closed:
                closes = self.schedule.closes(now)
                until = f" until {self.schedule.describe(closes)}" if closes else ""
                self.event("schedule", self.experiment, f"schedule window open{until}")
            self.closed, self.opens, self._said = False, None, None
            return True
        self.closed, self.opens = True, opens
        if self._said != opens:
            self._said = opens
            self.event(
                "schedule",
                self.experiment,
                "outside its schedule: no new trials until the next window opens "
                f"{self.schedule.describe(opens)}",
            )
        return False
