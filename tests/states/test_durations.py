from __future__ import annotations

import pytest

from tunectl.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("1h30m15s", 5415.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", '"10" has no unit; write for example "10s"'),
        ("ten seconds", '"ten seconds" is not a duration.'),
        ("-5s", "is not a duration"),
        ("5x", "is not a duration"),
        ("1m 30s", "is not a duration"),
        ("s", "is not a duration"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="units ms, s, m, h or d") as exc:
        parse_duration(text)
    assert message in str(exc.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_parse_duration_rejects_empty(text: str) -> None:
    with pytest.raises(ValueError, match='cannot be empty; write for example "30s"'):
        parse_duration(text)
