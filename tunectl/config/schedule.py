"""`schedule { days, start, end, timezone }`: when an experiment may launch trials.

PAI AutoML's `schedule_config` (`day`, `start_time`, `end_time`). This module owns the
block's decoding and the window arithmetic (pure functions of a moment; the engine's gate
is `tunectl.engine.schedule`, and plans say when the next window opens).

A window opens at `start` on each listed day (in `timezone`) and closes at `end`; an `end`
at or before `start` closes it on the next day (`start = "22:00", end = "06:00"` runs
through the night that begins on a listed day). `start == end` is the whole day. Times
fall on the wall clock of the zone, so a window keeps its hours across daylight saving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tunectl.diags import Diagnostics, did_you_mean
from tunectl.hcl.expr import Scope
from tunectl.hcl.syntax import Block

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# PAI's `day = "everyday" | "weekend"`, and the working week.
DAY_GROUPS = {
    "everyday": DAY_NAMES,
    "weekend": ("sat", "sun"),
    "weekdays": DAY_NAMES[:5],
}
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)\Z")


@dataclass(frozen=True)
class Schedule:
    """The days (indexes into `DAY_NAMES`, Monday = 0) and the window's wall-clock hours."""

    days: tuple[int, ...] = tuple(range(7))
    start: str = "00:00"
    end: str = "00:00"
    timezone: str = "UTC"

    def to_dict(self) -> dict[str, object]:
        return {
            "days": [DAY_NAMES[d] for d in self.days],
            "start": self.start,
            "end": self.end,
            "timezone": self.timezone,
        }

    def _windows(self, around: datetime) -> list[tuple[datetime, datetime]]:
        """The windows that open from two days before `around` to eight days after it."""
        zone = ZoneInfo(self.timezone)
        local = around.astimezone(zone)
        sh, sm = (int(p) for p in self.start.split(":"))
        eh, em = (int(p) for p in self.end.split(":"))
        out = []
        for offset in range(-2, 9):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            opens = datetime(day.year, day.month, day.day, sh, sm, tzinfo=zone)
            closes = datetime(day.year, day.month, day.day, eh, em, tzinfo=zone)
            if closes <= opens:
                closes += timedelta(days=1)
            out.append((opens, closes))
        return out

    def is_open(self, now: float) -> bool:
        """Whether the moment `now` (seconds since the epoch) is inside a window."""
        at = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        return any(o <= at < c for o, c in self._windows(at))

    def next_open(self, now: float) -> float | None:
        """When the next window opens after `now` (None while one is open)."""
        at = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        windows = self._windows(at)
        if any(o <= at < c for o, c in windows):
            return None
        return min(o for o, _ in windows if o > at).timestamp()

    def closes(self, now: float) -> float | None:
        """When the window open at `now` closes (None when none is open)."""
        at = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        ends = [c for o, c in self._windows(at) if o <= at < c]
        return max(ends).timestamp() if ends else None

    def describe(self, moment: float) -> str:
        """A moment as the schedule's wall clock: `Sat 2026-12-05 22:00 Asia/Shanghai`."""
        at = datetime.fromtimestamp(moment, ZoneInfo(self.timezone))
        return at.strftime("%a %Y-%m-%d %H:%M ") + self.timezone


def decode_schedule(
    block: Block, scope: Scope, context: str, diags: Diagnostics
) -> Schedule | None:
    """The `schedule` block, or None when it has an error (said in `diags`)."""
    # Here, not at the top: the model imports this module, and the schema reads the
    # algorithm registry when it is first imported (after plugins register).
    from tunectl.config.schema import Reader

    reader = Reader(block.body, scope, context, diags)
    start = len(diags)
    days_value = reader.get("days", "list", None)
    days: list[int] = []
    for item in days_value if days_value is not None else ["everyday"]:
        name = str(item).lower() if isinstance(item, str) else ""
        if name in DAY_GROUPS:
            days.extend(DAY_NAMES.index(d) for d in DAY_GROUPS[name])
        elif name[:3] in DAY_NAMES and name in (name[:3], _long(name[:3])):
            days.append(DAY_NAMES.index(name[:3]))
        else:
            choices = (*DAY_NAMES, *DAY_GROUPS)
            reader.fail(
                block.body.attributes.get("days"),
                "Invalid schedule",
                f'"{item}" is not a day.{did_you_mean(str(item), choices)} Use '
                f"{', '.join(DAY_NAMES)}, or {', '.join(DAY_GROUPS)}.",
            )
    if days_value is not None and not days_value:
        reader.fail(block.body.attributes.get("days"), "Invalid schedule", "days is empty.")
    times = {}
    for name in ("start", "end"):
        value = reader.get(name, "string", "00:00")
        if value is not None and not _TIME.match(str(value)):
            reader.fail(
                block.body.attributes.get(name),
                "Invalid schedule",
                f'{name} must be a time of day as "HH:MM" (00:00 to 23:59), got "{value}".',
            )
        times[name] = str(value)
    timezone = reader.get("timezone", "string", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        reader.fail(
            block.body.attributes.get("timezone"),
            "Invalid schedule",
            f'"{timezone}" is not a time zone: use an IANA name such as "Asia/Shanghai", '
            '"Europe/Berlin" or "UTC".',
        )
    if Diagnostics(diags[start:]).has_errors():
        return None
    return Schedule(tuple(sorted(set(days))), times["start"], times["end"], str(timezone))


def _long(short: str) -> str:
    return {
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
        "sun": "sunday",
    }[short]
