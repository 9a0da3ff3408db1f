"""Names: the one rule for everything a user names (SPEC section 6, "Names").

Experiment, param, task, variable, local and output names are identifiers: ASCII letters,
digits, `_` and `-`, starting with a letter, at most 64 characters. Names end up in file
paths, S3 keys, provider job names, shell commands and addresses, so the rule is strict and
the same everywhere: the configuration loader checks every label with `check_name`, and the
address parser (`tunectl.addrs`) checks the names typed on the command line with
`name_problem`. Nothing else decides what a valid name is.

`path_component_problem` is the rule for values placed inside a path (a parameter value in
`workdir`): the loader refuses them up front, the engine again when it renders a trial.
"""

from __future__ import annotations

import re
import unicodedata

from tunectl.diags import Diagnostic, SourceRange, error

MAX_NAME_LENGTH = 64

# fullmatch, not match with `$`: `$` would accept a trailing newline.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

RULE = (
    "A name is made of ASCII letters, digits, underscores (_) and dashes (-), starts with a "
    f"letter, and is at most {MAX_NAME_LENGTH} characters long: for example mnist, lr or "
    "batch_size-2."
)


def is_valid_name(text: str) -> bool:
    """True when `text` follows the name rule."""
    return len(text) <= MAX_NAME_LENGTH and _NAME.fullmatch(text) is not None


def name_problem(text: str) -> str | None:
    """What is wrong with `text` as a name, as a sentence fragment; None when it is valid.

    The fragment follows '"NAME" is not a valid ... name: ', e.g. 'it starts with "1"'.
    """
    if text == "":
        return "it is empty"
    if len(text) > MAX_NAME_LENGTH:
        return f"it is {len(text)} characters long"
    if not ("A" <= text[0] <= "Z" or "a" <= text[0] <= "z"):
        return f"it starts with {describe_char(text[0])}"
    for char in text:
        if not _NAME.fullmatch("a" + char):
            return f"it contains {describe_char(char)}"
    return None


def describe_char(char: str) -> str:
    """A character as a user can read it, even when it is invisible or a look-alike."""
    if char == '"':
        return "'\"'"
    if char.isascii() and char.isprintable() and char != " ":
        return f'"{char}"'
    name = unicodedata.name(char, "").lower() or "a control character"
    return f"U+{ord(char):04X} ({name})"


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for a message, cut short so that a huge name cannot flood the screen."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def check_name(
    name: str,
    kind: str,
    subject: SourceRange | None = None,
    context: str | None = None,
) -> Diagnostic | None:
    """A diagnostic for `name` used as the name of a `kind` (e.g. "experiment"), or None.

    The diagnostic states the rule and points at `subject`, the block or argument that
    declares the name.
    """
    problem = name_problem(name)
    if problem is None:
        return None
    return error(
        f"Invalid {kind} name",
        f"{shown(name)} is not a valid {kind} name: {problem}. {RULE}",
        subject,
        context,
    )


def path_component_problem(value: str) -> str | None:
    """Why `value` cannot be substituted into a path, or None when it can.

    Substituted into `workdir` or a metrics `path`, a value names (part of) one file or
    directory in the place the configuration chose. Without `/` it cannot add a level;
    made of more than dots it cannot, even glued to literal dots, form `.` or `..`, so the
    path never climbs out. An empty value (an inactive parameter) adds nothing.
    """
    if "/" in value:
        return "it contains a /"
    if value and value.strip(".") == "":
        return "it is only dots, which name a directory or its parent"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "it contains a control character (such as a newline or NUL)"
    return None
