"""Durations as users write them: "10s", "1m30s", "2h", "500ms", "1d", "0"."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in `text`: numbers with units ms, s, m, h, d, written together ("1h30m").

    A bare "0" needs no unit. Raises `ValueError` with a sentence saying what is wrong.
    """
    value = text.strip()
    if value == "0":
        return 0.0
    if not value:
        raise ValueError('A duration cannot be empty; write for example "30s", "10m" or "2h".')
    total, pos = 0.0, 0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value):
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            hint = f'"{value}" has no unit; write for example "{value}s" or "{value}m".'
        else:
            hint = f'"{value}" is not a duration.'
        raise ValueError(
            f"{hint} A duration is numbers with units ms, s, m, h or d, such as "
            '"500ms", "10s", "1m30s" or "2h".'
        )
    return total


def format_duration(seconds: float) -> str:
    """The shortest spelling of `seconds` that `parse_duration` reads back: "1h30m"."""
    if seconds <= 0:
        return "0"
    if seconds != int(seconds):
        whole = int(seconds)
        millis = round((seconds - whole) * 1000)
        return (format_duration(whole) if whole else "") + (f"{millis}ms" if millis else "")
    rest = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out
