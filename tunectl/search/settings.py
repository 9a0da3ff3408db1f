"""Settings of algorithm and early-stopping blocks: what each takes, and the checks.

A `Setting` is one argument of a registry entry (`algorithms`, `pruners`): its check, its
default and a line of documentation. `check_settings` turns a block's settings into
sentences for diagnostics. Also the small value tests the search layer shares.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunectl.diags import did_you_mean

Check = Callable[[Any], str | None]  # None when fine, else what the value must be


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_whole(value: Any) -> bool:
    return is_int(value) or (isinstance(value, float) and value.is_integer())


def show(value: Any) -> str:
    """A value as the user would write it in HCL."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True)
class Setting:
    """One setting of an algorithm or early-stopping rule.

    `default` is what the builder uses when the setting is absent (None: the library's own
    default, or no value).
    """

    check: Check
    default: Any = None
    doc: str = ""


def whole(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        ok = is_whole(value) and value >= minimum
        return None if ok else f"a whole number of at least {minimum}"

    return check


def number(low: float | None = None, high: float | None = None, above: bool = False) -> Check:
    def check(value: Any) -> str | None:
        ok = is_number(value) and math.isfinite(value)
        ok = ok and (low is None or (value > low if above else value >= low))
        ok = ok and (high is None or value <= high)
        if ok:
            return None
        if low is not None and high is not None:
            return f"a number from {low:g} to {high:g}"
        if low is not None:
            return f"a number {'greater than' if above else 'of at least'} {low:g}"
        return "a number"

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(f'"{c}"' for c in choices)

    return check


def whole_or_auto(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        ok = value == "auto" or (is_whole(value) and value >= minimum)
        return None if ok else f'"auto" or a whole number of at least {minimum}'

    return check


# Settings NNI and PAI AutoML take that are not settings here, whatever the algorithm or
# rule: what to write instead.
COMMON_HINTS = {
    "optimize_mode": "The direction is the objective's: set objective { direction }.",
}


def check_settings(
    what: str,
    known: Mapping[str, Setting],
    settings: Sequence[tuple[str, Any]],
    hints: Mapping[str, str] | None = None,
) -> list[str]:
    """Sentences for each unknown setting and each value its check refuses.

    `hints` says, for settings other tools take under that name (NNI's and PAI's
    `class_args`), what to do instead; `COMMON_HINTS` hold for every block."""
    hints = COMMON_HINTS | dict(hints or {})
    errors = []
    for key, value in settings:
        setting = known.get(key)
        if setting is None:
            names = ", ".join(known) if known else "none"
            why = f" {hints[key]}" if key in hints else did_you_mean(key, known)
            errors.append(f'"{key}" is not a setting of {what}.{why} Known settings: {names}.')
        elif (expected := setting.check(value)) is not None:
            errors.append(f"{key} of {what} must be {expected}, got {show(value)}.")
    return errors


def with_defaults(known: Mapping[str, Setting], settings: Sequence[tuple[str, Any]]) -> dict:
    """The settings written, with each absent one at its default (None when it has none)."""
    out = {key: setting.default for key, setting in known.items()}
    out.update(settings)
    return out
