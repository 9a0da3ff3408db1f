"""Task bodies: what a task runs, and how a placeholder's value is quoted inside it.

A provider declares the bodies its tasks take (`Provider.task_bodies`): each `BodySpec`
names an attribute of the task block and the kinds it accepts, one per shape (a string or
a list). The kind owns the quoting rules: core renders every `${param.*}` / `${trial.*}`
through it (`tunectl.engine.trials.build_request`) and asks it, at `validate`, which
placeholders sit where no quoting is safe. Core never assumes a shell.

Kinds shipped with tunectl:

* `SHELL` — a string run as `/bin/sh -c BODY`: values are quoted for where they sit, and
  unsafe positions are refused (`tunectl.providers.shell`);
* `ARGV` — a list run without a shell: each element is one argument, values go in as they
  are;
* `TEXT` — a string handed over as data (the test provider's scripts): values go in as
  they are;
* `XFLOW` — XFlow (PAI) command parameters, `-name xgboost -DtreeCount=${param.trees}`: a
  placeholder may sit only in the value of a `-Dkey=value` parameter, and that value is
  double-quoted with `\\` and `"` escaped, so no value can end it or add a parameter;
* `SQL` (standard string literals, `'` doubled) and `SQL_BACKSLASH` (MaxCompute/Hive
  literals, `\\` and `'` backslash-escaped): a placeholder inside a `'...'` literal is
  escaped by the dialect's rules; outside a literal it is allowed only when its value is a
  number (`number_slots`: a number-typed parameter, or `trial.number`), which the render
  checks again; anywhere else (identifiers, comments) it is refused;
* `ListOf(kind)` — a list of bodies of one kind, run in order (several SQL statements).

A provider with another language subclasses `BodyKind` with that language's rules and
declares it on its own body name.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tunectl.hcl.expr import Path, Template
from tunectl.hcl.values import format_path, to_string
from tunectl.providers import xflow
from tunectl.providers.shell import UnsafePlaceholder, command_line, placeholder_slots

Shape = Literal["string", "list"]
Resolve = Callable[[Path], object]


class BodyKind(abc.ABC):
    """The quoting rules of one body language. Implementations are stateless."""

    name: ClassVar[str]
    shape: ClassVar[Shape]

    @abc.abstractmethod
    def refusals(self, value: Any) -> list[str]:
        """Why each placeholder of `value` that no quoting makes safe is refused (shown by
        `validate`); empty when every placeholder can be rendered."""

    @abc.abstractmethod
    def render(self, value: Any, resolve: Resolve) -> str | list[str]:
        """`value` with each placeholder replaced by its quoted value. Raises
        `UnsafePlaceholder` for a placeholder `refusals` reports."""

    def number_slots(self, value: Any) -> list[Path]:
        """Placeholders of `value` that are safe only when their value is a number; the
        loader refuses those whose parameter can take another value."""
        return []

    def problems(self, value: Any) -> list[str]:
        """What is wrong with the body's own syntax, checked offline at `validate` (a PAI
        command without -name, SQL with an unclosed quote); empty when it reads well."""
        return []


def _text(value: Any, resolve: Resolve) -> str:
    if isinstance(value, Template):
        return value.render(resolve)
    return str(value)


class ShellKind(BodyKind):
    """A POSIX shell command line; see `tunectl.providers.shell` for the rules."""

    name = "shell"
    shape = "string"

    def refusals(self, value: Any) -> list[str]:
        if not isinstance(value, Template):
            return []
        return [s.refusal for s in placeholder_slots(value.parts) if s.refusal is not None]

    def render(self, value: Any, resolve: Resolve) -> str:
        if not isinstance(value, Template):
            return str(value)
        return command_line(value, resolve)


class ArgvKind(BodyKind):
    """A program and its arguments, run without a shell: nothing is re-read as code."""

    name = "argv"
    shape = "list"

    def refusals(self, value: Any) -> list[str]:
        return []

    def render(self, value: Any, resolve: Resolve) -> list[str]:
        return [_text(part, resolve) for part in value]


class TextKind(BodyKind):
    """Text handed over as data, never parsed by a shell: values go in verbatim."""

    name = "text"
    shape = "string"

    def refusals(self, value: Any) -> list[str]:
        return []

    def render(self, value: Any, resolve: Resolve) -> str:
        return _text(value, resolve)


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parts(value: Any) -> tuple[str | Path, ...]:
    if isinstance(value, Template):
        return value.parts
    return (str(value),)


def _value(resolve: Resolve, path: Path) -> str:
    return to_string(resolve(path))


def _stand_in(value: Any) -> str:
    """`value`'s text with each placeholder as a plain number: for syntax checks of
    positions where a placeholder is allowed (its value is quoted there)."""
    return "".join(p if isinstance(p, str) else "0" for p in _parts(value))


class XFlowKind(BodyKind):
    """XFlow (PAI) parameters: `-name ALGO -project P -Dkey=value ...`, whitespace-separated.

    A placeholder may sit only in the value of a `-Dkey=value` parameter written without
    quotes; the whole value is then rendered as `"..."` with `\\`, `"`, newline and carriage
    return escaped, so a value can never end the parameter or add another.
    """

    name = "xflow"
    shape = "string"

    @staticmethod
    def _tokens(parts: Sequence[str | Path]) -> list[list[str | Path]]:
        """The parameters (each a list of literal texts and placeholders) and, between
        them, the blanks (one-element lists of whitespace)."""
        out: list[list[str | Path]] = [[]]
        for part in parts:
            if not isinstance(part, str):
                out[-1].append(part)
                continue
            for piece in re.split(r"(\s+)", part):
                if not piece:
                    continue
                if piece.isspace():
                    out.append([piece])
                    out.append([])
                else:
                    out[-1].append(piece)
        return [t for t in out if t]

    def _refusal(self, token: list[str | Path]) -> str | None:
        if all(isinstance(p, str) for p in token):
            return None
        head = token[0]
        first = next(p for p in token if not isinstance(p, str))
        where = format_path(first)
        if not isinstance(head, str) or not head.startswith("-D") or "=" not in head:
            return (
                f"${{{where}}} is outside the value of a -Dkey=value parameter, where its "
                "value could add or change parameters. Write it as -Dkey=${...}."
            )
        value_text = head.split("=", 1)[1] + "".join(p for p in token[1:] if isinstance(p, str))
        if any(c in value_text for c in "\"'\\"):
            return (
                f"${{{where}}} is in a value written with quotes or backslashes; write the "
                "value without them: tunectl quotes it."
            )
        return None

    def refusals(self, value: Any) -> list[str]:
        found = (self._refusal(t) for t in self._tokens(_parts(value)))
        return [r for r in found if r is not None]

    def problems(self, value: Any) -> list[str]:
        try:
            xflow.parse(_stand_in(value))
        except xflow.XFlowSyntaxError as exc:
            return [f"Not a PAI command: {exc}."]
        return []

    def render(self, value: Any, resolve: Resolve) -> str:
        out: list[str] = []
        for token in self._tokens(_parts(value)):
            if all(isinstance(p, str) for p in token):
                out.append("".join(str(p) for p in token))
                continue
            refusal = self._refusal(token)
            if refusal is not None:
                raise UnsafePlaceholder(refusal)
            key, rest = str(token[0]).split("=", 1)
            text = rest + "".join(
                p if isinstance(p, str) else _value(resolve, p) for p in token[1:]
            )
            out.append(f'{key}="{xflow_escape(text)}"')
        return "".join(out)


def xflow_escape(text: str) -> str:
    """`text` for inside a double-quoted XFlow parameter value."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


SqlContext = Literal["code", "string", "quoted", "comment"]


class SqlKind(BodyKind):
    """One SQL statement. `backslash` says the dialect's string literals take backslash
    escapes (MaxCompute, Hive, MySQL); otherwise a `'` is escaped by doubling it."""

    name = "sql"
    shape = "string"

    def __init__(self, backslash: bool = False) -> None:
        self.backslash = backslash

    def _slots(self, parts: Sequence[str | Path]) -> list[tuple[Path, SqlContext]]:
        """Each placeholder and the context it sits in."""
        state = "code"
        out: list[tuple[Path, SqlContext]] = []
        for part in parts:
            if isinstance(part, str):
                state = self._advance(state, part)
                continue
            ctx: SqlContext = (
                "code"
                if state == "code"
                else "string"
                if state == "string"
                else "comment"
                if state in ("line", "block")
                else "quoted"
            )
            out.append((part, ctx))
        return out

    def _advance(self, state: str, text: str, ends: list[int] | None = None) -> str:
        """The scanner's state after `text`, from `state`: code, string ('), dquote ("),
        bquote (`), line (-- comment) or block (/* comment). With `ends`, the offsets of
        the `;` met in code are appended to it."""
        i = 0
        while i < len(text):
            c, nxt = text[i], text[i + 1 : i + 2]
            if state == "code":
                if c == "'":
                    state = "string"
                elif c == '"':
                    state = "dquote"
                elif c == "`":
                    state = "bquote"
                elif c == "-" and nxt == "-":
                    state, i = "line", i + 1
                elif c == "/" and nxt == "*":
                    state, i = "block", i + 1
                elif c == ";" and ends is not None:
                    ends.append(i)
            elif state == "string":
                if c == "\\" and self.backslash:
                    i += 1
                elif c == "'":
                    state = "code"  # a doubled '' re-enters at the next character
            elif state == "dquote":
                if c == "\\" and self.backslash:
                    i += 1
                elif c == '"':
                    state = "code"
            elif state == "bquote":
                if c == "`":
                    state = "code"
            elif state == "line":
                if c == "\n":
                    state = "code"
            elif state == "block" and c == "*" and nxt == "/":
                state, i = "code", i + 1
            i += 1
        return state

    def number_slots(self, value: Any) -> list[Path]:
        return [p for p, ctx in self._slots(_parts(value)) if ctx == "code"]

    def problems(self, value: Any) -> list[str]:
        text = _stand_in(value)
        ends, state = self.statement_ends(text)
        if state in ("string", "dquote", "bquote", "block"):
            return ["A quote or a /* comment is not closed."]
        statements = [s for s in _pieces(text, ends) if not _SET.match(s)]
        if not statements:
            return ["There is no statement (only SET, comments or blanks)."]
        if len(statements) > 1:
            return [
                f"This holds {len(statements)} statements; write one per string, and several "
                'as a list: ["create ...", "insert ..."] (SET k=v; may come first).'
            ]
        return []

    def statement_ends(self, text: str) -> tuple[list[int], str]:
        """The offsets of the `;` that end statements (outside literals and comments),
        and the state at the end of `text` (`code` when nothing is left open)."""
        ends: list[int] = []
        return ends, self._advance("code", text, ends)

    def refusals(self, value: Any) -> list[str]:
        out = []
        for path, ctx in self._slots(_parts(value)):
            where = format_path(path)
            if ctx == "code" and not _numeric_path(path):
                out.append(
                    f"${{{where}}} is outside a '...' string literal, where only a number "
                    "is safe. Put it in a string literal ('${...}'), or use a number-typed "
                    "parameter or trial.number."
                )
            elif ctx in ("quoted", "comment"):
                what = "an identifier or double-quoted text" if ctx == "quoted" else "a comment"
                out.append(
                    f"${{{where}}} is inside {what}, where no quoting is safe. Put it in a "
                    "'...' string literal."
                )
        return out

    def render(self, value: Any, resolve: Resolve) -> str:
        parts = _parts(value)
        refused = self.refusals(value)
        if refused:
            raise UnsafePlaceholder(refused[0])
        out: list[str] = []
        contexts = iter(self._slots(parts))
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            _, ctx = next(contexts)
            text = _value(resolve, part)
            if ctx == "string":
                out.append(self.escape(text))
            elif _NUMBER.fullmatch(text):
                # In parentheses when negative: after a `-`, `-1` would start a comment.
                out.append(f"({text})" if text.startswith("-") else text)
            else:
                raise UnsafePlaceholder(
                    f"The value {text!r} of ${{{format_path(part)}}} is not a number, and "
                    "sits outside a string literal."
                )
        return "".join(out)

    def escape(self, text: str) -> str:
        """`text` for inside a '...' literal of this dialect."""
        if "\0" in text:
            raise UnsafePlaceholder("A value with a NUL byte cannot be placed in SQL.")
        if self.backslash:
            # Line ends as escapes too: the query travels in XML, whose parsers turn a
            # raw carriage return into a line feed.
            return (
                text.replace("\\", "\\\\")
                .replace("'", "\\'")
                .replace("\n", "\\n")
                .replace("\r", "\\r")
            )
        return text.replace("'", "''")


_SET = re.compile(r"\s*set\s+[\w.]+\s*=", re.I)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def _pieces(text: str, ends: list[int]) -> list[str]:
    """The statements of `text` cut at `ends`, comments dropped, blank ones left out."""
    out, start = [], 0
    for end in [*ends, len(text)]:
        piece = _COMMENTS.sub(" ", text[start:end]).strip()
        if piece:
            out.append(piece)
        start = end + 1
    return out


def _numeric_path(path: Path) -> bool:
    """Placeholders whose value may be a number: a parameter (the loader checks its
    type) or the trial's number."""
    return (len(path) == 2 and path[0] == "param") or path == ("trial", "number")


def query_kind(bodies: Sequence[BodySpec]) -> SqlKind:
    """The SQL dialect a provider's queries are written in (`metrics "table"`): that of
    its `sql` body, or standard SQL."""
    for spec in bodies:
        if spec.name == "sql":
            for kind in spec.kinds:
                inner = kind.kind if isinstance(kind, ListOf) else kind
                if isinstance(inner, SqlKind):
                    return inner
    return SQL


class ListOf(BodyKind):
    """A list of bodies of one kind, run in order."""

    shape = "list"

    def __init__(self, kind: BodyKind) -> None:
        self.kind = kind
        self.name = f"list of {kind.name}"  # type: ignore[misc]

    def refusals(self, value: Any) -> list[str]:
        return [r for item in value for r in self.kind.refusals(item)]

    def number_slots(self, value: Any) -> list[Path]:
        return [p for item in value for p in self.kind.number_slots(item)]

    def problems(self, value: Any) -> list[str]:
        if not value:
            return ["The list is empty: give at least one."]
        return [
            f"Item {i + 1}: {problem}" if len(value) > 1 else problem
            for i, item in enumerate(value)
            for problem in self.kind.problems(item)
        ]

    def render(self, value: Any, resolve: Resolve) -> list[str]:
        return [str(self.kind.render(item, resolve)) for item in value]


SHELL = ShellKind()
ARGV = ArgvKind()
TEXT = TextKind()
XFLOW = XFlowKind()
SQL = SqlKind()
SQL_BACKSLASH = SqlKind(backslash=True)


@dataclass(frozen=True)
class BodySpec:
    """One body attribute of a task block, and the kinds it accepts (one per shape).

    `noun` names the body in messages ("Unsafe placeholder in a command").
    """

    name: str
    kinds: Sequence[BodyKind]
    noun: str = ""
    description: str = ""

    def kind_for(self, value: Any) -> BodyKind:
        """The kind that renders `value`: by its shape (a list, else a string)."""
        shape: Shape = "list" if isinstance(value, list | tuple) else "string"
        for kind in self.kinds:
            if kind.shape == shape:
                return kind
        raise ValueError(f'"{self.name}" cannot be a {shape}')

    def render(self, value: Any, resolve: Resolve) -> str | list[str]:
        return self.kind_for(value).render(value, resolve)


COMMAND = BodySpec(
    "command",
    (SHELL, ARGV),
    noun="a command",
    description="A shell command line (a string) or a program and its arguments (a list).",
)

__all__ = [
    "ARGV",
    "COMMAND",
    "SHELL",
    "SQL",
    "SQL_BACKSLASH",
    "TEXT",
    "XFLOW",
    "BodyKind",
    "BodySpec",
    "ListOf",
    "SqlKind",
    "XFlowKind",
    "query_kind",
    "UnsafePlaceholder",
]
