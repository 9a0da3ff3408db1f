"""Addresses: how users name an experiment or a trial on the command line.

`experiment.NAME` names an experiment, `experiment.NAME.trial[N]` one of its trials, as in
SPEC section 4. `parse_address` is the only parser of that syntax: `--target`, `--replace`,
`show ADDR`, `state show/rm ADDR` and `logs ADDR` all go through it, so every command accepts
and refuses the same texts, with the same diagnostics. Names follow `tunectl.names`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tunectl.diags import DiagnosticError, error
from tunectl.names import RULE, is_valid_name, name_problem, shown

# Trial numbers are SQLite integers in the state; anything larger cannot exist.
MAX_TRIAL_NUMBER = 2**63 - 1

_PREFIX = "experiment."
_TRIAL = re.compile(r"trial\[(.*)\]", re.DOTALL)
# Builds the error for a bad address: (what is wrong, what to do instead).
Fail = Callable[[str, str], DiagnosticError]

_FORMS = "Addresses look like experiment.mnist or experiment.mnist.trial[12]."


@dataclass(frozen=True)
class Address:
    """An experiment (`trial` is None) or one of its trials.

    `experiment` follows the name rule and `trial` is in [0, MAX_TRIAL_NUMBER]; only
    `parse_address` and code holding names from the state build one.
    """

    experiment: str
    trial: int | None = None

    def __str__(self) -> str:
        base = f"{_PREFIX}{self.experiment}"
        return base if self.trial is None else f"{base}.trial[{self.trial}]"


def is_address_like(text: str) -> bool:
    """Whether `text` is meant as an address (it starts with `experiment.`), valid or not:
    commands that also take a file name or a bare name tell them apart with it."""
    return text.startswith(_PREFIX)


def parse_address(text: str, *, flag: str | None = None, trials: bool = True) -> Address:
    """Parse `text` as typed by a user; DiagnosticError saying what is wrong otherwise.

    `flag` names where the text came from ("--target") for the message; with
    `trials=False` only experiment addresses are accepted.
    """
    summary = f"Invalid {flag} address" if flag else "Invalid address"

    def fail(problem: str, advice: str = _FORMS) -> DiagnosticError:
        where = f"{flag} {shown(text)}" if flag else shown(text)
        return DiagnosticError(error(summary, f"{where}: {problem} {advice}"))

    if not text.startswith(_PREFIX):
        if is_valid_name(text):
            raise fail(
                'an address starts with "experiment.".',
                f"Did you mean experiment.{text}?",
            )
        raise fail("this is not an address.")
    name, dot, rest = text[len(_PREFIX) :].partition(".")
    problem = name_problem(name)
    if problem is not None:
        raise fail(f"{shown(name)} is not a valid experiment name: {problem}.", RULE)
    if not dot:
        return Address(name)
    match = _TRIAL.fullmatch(rest)
    if match is None:
        raise fail(f"after experiment.{name} only .trial[N] may follow.")
    number = trial_number(match.group(1), fail)
    if not trials:
        raise fail(
            "this addresses a trial, and only whole experiments are accepted here.",
            f"Use experiment.{name}.",
        )
    return Address(name, number)


def trial_number(text: str, fail: Fail | None = None) -> int:
    """The trial number written as `text` (the N of trial[N], or --trial N).

    Raises what `fail(problem, advice)` returns when `text` is not a whole number in
    [0, MAX_TRIAL_NUMBER] written without leading zeros.
    """
    fail = fail or _invalid_trial_number
    advice = f"Trial numbers are whole numbers from 0 to {MAX_TRIAL_NUMBER}, such as 12."
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise fail(f"{shown(text, 24)} is not a trial number.", advice)
    cut = text if len(text) <= 24 else text[:24] + "..."
    if text.startswith("-"):
        raise fail(f"the trial number {cut} is negative.", advice)
    if len(text) > 1 and text.startswith("0"):
        raise fail(f"the trial number {cut} has leading zeros.", "Write it without them.")
    # Compare digit counts first: int() of thousands of digits is slow, then refused.
    if len(text) > len(str(MAX_TRIAL_NUMBER)) or int(text) > MAX_TRIAL_NUMBER:
        raise fail(f"the trial number {cut} is out of range.", advice)
    return int(text)


def _invalid_trial_number(problem: str, advice: str) -> DiagnosticError:
    return DiagnosticError(
        error("Invalid trial number", f"{problem[0].upper()}{problem[1:]} {advice}")
    )


def check_trial_option(number: int | None, flag: str = "--trial") -> int | None:
    """Check a trial number given as an integer option; None passes through."""
    if number is None:
        return None

    def fail(problem: str, advice: str) -> DiagnosticError:
        return DiagnosticError(
            error(f"Invalid {flag} value", f"{flag} {number}: {problem} {advice}")
        )

    return trial_number(str(number), fail)
