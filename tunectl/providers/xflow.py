"""PAI (XFlow) commands: `pai -name xgboost -project algo_public -DtreeCount=5 ...`.

The text a PAI AutoML user writes — odpscmd's `PAI` command — is read here into what the
MaxCompute REST API takes: the algorithm's name, the project it is published in and a map
of parameters. Nothing is ever sent as a command line: each `-Dkey=value` becomes one
`<Parameter>` whose value is an XML text node, so a value cannot add a parameter.

Words are separated by blanks. A word may be quoted in part or whole: `"..."` takes the
escapes `\\\\`, `\\"`, `\\'`, `\\n`, `\\r`, `\\t` (as odpscmd unescapes them), `'...'` takes
none. The `XFLOW` body kind (`tunectl.providers.bodies`) renders a placeholder's value as a
double-quoted `-D` value, which `parse` reads back byte for byte. A leading `pai` (any
case) is optional.

This module is pure: no network, no pyodps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


class XFlowSyntaxError(ValueError):
    """The text is not a PAI command; the message says what is wrong and how to write it."""


@dataclass(frozen=True)
class XFlowCommand:
    """A PAI command read from its text."""

    name: str
    project: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


def words(text: str) -> list[str]:
    """The command's words, quotes removed and escapes applied."""
    out: list[str] = []
    current: list[str] = []
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            if in_word:
                out.append("".join(current))
                current, in_word = [], False
            i += 1
            continue
        in_word = True
        if ch == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                if text[end] == "\\" and end + 1 < len(text):
                    nxt = text[end + 1]
                    current.append(_ESCAPES.get(nxt, "\\" + nxt))
                    end += 2
                    continue
                current.append(text[end])
                end += 1
            if end >= len(text):
                raise XFlowSyntaxError(f"a double quote is not closed: {text[i : i + 30]!r}")
            i = end + 1
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise XFlowSyntaxError(f"a single quote is not closed: {text[i : i + 30]!r}")
            current.append(text[i + 1 : end])
            i = end + 1
        else:
            current.append(ch)
            i += 1
    if in_word:
        out.append("".join(current))
    return out


def parse(text: str) -> XFlowCommand:
    """The PAI command `text` holds. Raises `XFlowSyntaxError`."""
    given = words(text)
    if given and given[0].lower() == "pai":
        given = given[1:]
    name: str | None = None
    project: str | None = None
    parameters: dict[str, str] = {}
    i = 0
    while i < len(given):
        word = given[i]
        if word in ("-name", "-project"):
            if i + 1 >= len(given) or given[i + 1].startswith("-"):
                raise XFlowSyntaxError(f"{word} needs a value: {word} NAME")
            if word == "-name":
                name = given[i + 1]
            else:
                project = given[i + 1]
            i += 2
            continue
        if word.startswith("-D"):
            key, eq, value = word[2:].partition("=")
            if not eq or not key:
                raise XFlowSyntaxError(f"{word!r} is not a parameter: write -Dkey=value")
            if key in parameters:
                raise XFlowSyntaxError(f"-D{key} is given twice")
            parameters[key] = value
            i += 1
            continue
        raise XFlowSyntaxError(
            f"{word!r} is not an argument of a PAI command: it takes -name ALGORITHM, "
            "-project PROJECT and -Dkey=value parameters"
        )
    if not name:
        raise XFlowSyntaxError("no algorithm: a PAI command starts -name ALGORITHM")
    return XFlowCommand(name, project, parameters)
