"""The schedule's window arithmetic at fixed moments (`tunectl.config.schedule`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tunectl.config.schedule import Schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHTS = Schedule(days=(5, 6), start="22:00", end="06:00", timezone="Asia/Shanghai")


def at(text: str, zone: ZoneInfo = SHANGHAI) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    ("moment", "open_", "until"),
    [
        ("2026-12-04 23:00", False, None),  # Friday night: not a listed day
        ("2026-12-05 21:59", False, None),
        ("2026-12-05 22:00", True, "2026-12-06 06:00"),  # Saturday's night
        ("2026-12-06 03:00", True, "2026-12-06 06:00"),
        ("2026-12-06 06:00", False, None),
        ("2026-12-06 23:30", True, "2026-12-07 06:00"),  # Sunday's night runs into Monday
        ("2026-12-07 05:59", True, "2026-12-07 06:00"),
        ("2026-12-07 07:00", False, None),
    ],
)
def test_a_window_over_midnight(moment: str, open_: bool, until: str | None) -> None:
    now = at(moment)
    assert NIGHTS.is_open(now) is open_
    closes = NIGHTS.closes(now)
    assert (closes == at(until)) if until else closes is None
    if open_:
        assert NIGHTS.next_open(now) is None
    else:
        opens = NIGHTS.next_open(now)
        assert opens is not None and opens > now and NIGHTS.is_open(opens)


def test_the_next_window_is_said_in_the_zone() -> None:
    opens = NIGHTS.next_open(at("2026-12-07 07:00"))
    assert opens is not None
    assert NIGHTS.describe(opens) == "Sat 2026-12-12 22:00 Asia/Shanghai"
    # The same moment in UTC is 14:00.
    assert Schedule(timezone="UTC").describe(opens) == "Sat 2026-12-12 14:00 UTC"


def test_the_whole_day_and_every_day_by_default() -> None:
    always = Schedule()
    assert always.is_open(at("2026-12-01 00:00")) and always.is_open(at("2026-12-01 23:59"))
    weekend = Schedule(days=(5, 6))
    assert not weekend.is_open(at("2026-12-04 23:59", ZoneInfo("UTC")))
    assert weekend.is_open(at("2026-12-05 00:00", ZoneInfo("UTC")))


def test_wall_clock_hours_hold_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    evenings = Schedule(start="20:00", end="23:00", timezone="Europe/Berlin")
    # Before and after the clocks went back on 2026-10-25.
    assert evenings.is_open(at("2026-10-24 20:30", berlin))
    assert evenings.is_open(at("2026-10-26 20:30", berlin))
    assert not evenings.is_open(at("2026-10-26 19:30", berlin))
