"""Placeholders in a shell command line: where each one sits, and how to quote its value.

These are the rules of the `SHELL` body kind (`tunectl.providers.bodies`).

A string `command` runs as `/bin/sh -c COMMAND` (dash locally, often bash on DLC). A value
substituted into it must reach the program as data, whatever its bytes, so how it is
quoted depends on where the placeholder sits in the command's text:

* unquoted (`--lr ${param.lr}`, `--x=${param.x}`, inside `$(...)`): `shlex.quote`, which
  leaves plain values such as `0.01` readable and single-quotes the rest;
* inside single quotes (`'${param.s}'`): each `'` of the value becomes `'\\''`;
* inside double quotes (`"${param.s}"`): `\\`, `"`, `$` and backquote are backslash-escaped.

Some positions cannot be quoted safely, because the shell reads text there a second time
or by rules that differ between dash and bash: inside backquotes, `${...}`, `$((...))`,
`$[...]`, `$'...'` and `$"..."`, a comment, a here-document; directly after a backslash or
a `$`; in the arguments of `eval`, `let`, `[[ ... ]]`, `(( ... ))`, `trap`, `declare` and
the other commands that read their arguments as code or bash arithmetic, and in an array
subscript. `placeholder_slots` reports those as refusals (shown by `validate`), and
`command_line` never renders them.

This module is pure: it reads a `Template`'s literal parts and never runs a shell.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tunectl.hcl.values import Path, Template, format_path, to_string

Context = Literal["unquoted", "single", "double"]

_BLANKS = " \t"
_OPERATORS = ";&|<>()"
# Words after which the next word is still a command's first word.
_LEADING_WORDS = frozenset("! { if then else elif do while until time command builtin".split())
# Commands that evaluate their arguments as shell code or bash arithmetic (where
# `a[$(cmd)]` runs cmd): a quoted value is still code there.
_CODE_COMMANDS = {
    "eval": "eval",
    "let": "let",
    "[[": "[[ ... ]]",
    "trap": "trap",
    "alias": "alias",
    "read": "read",
    "unset": "unset",
    "declare": "declare",
    "typeset": "typeset",
    "local": "local",
    "readonly": "readonly",
}
# Commands whose arguments name variables before an `=`: bash evaluates a subscript there.
_NAME_COMMANDS = frozenset(["export"])
_FIX = (
    "Move the placeholder to a plain argument (unquoted, or inside '...' or \"...\"), or "
    'pass the value through env (env = {{ VALUE = "${{{0}}}" }}, then "$VALUE" in the '
    "command), or use a list command, which runs without a shell."
)


@dataclass(frozen=True)
class Slot:
    """Where one placeholder of a command sits.

    `context` says how its value is quoted; `refusal` (when set) says why no quoting is
    safe there, and the value must not be substituted. `force_quotes` asks for quotes even
    around a plain value, which would otherwise change meaning next to the text before it
    (`~${x}`, `$HOME${x}`).
    """

    path: Path
    context: Context
    refusal: str | None = None
    force_quotes: bool = False


class UnsafePlaceholder(ValueError):
    """A command was rendered with a placeholder in a position `placeholder_slots` refuses."""


def quote(value: str, slot: Slot) -> str:
    """`value` as text that the shell reads back as exactly `value`, at `slot`."""
    if slot.refusal is not None:
        raise UnsafePlaceholder(slot.refusal)
    if slot.context == "single":
        return value.replace("'", "'\\''")
    if slot.context == "double":
        escaped = re.sub(r'([\\"$`])', r"\\\1", value)
        # `"$HOME""x"`: a new pair of quotes ends the variable name before the value.
        return '""' + escaped if slot.force_quotes else escaped
    quoted = shlex.quote(value)
    if slot.force_quotes and quoted == value:
        return "'" + value + "'"
    return quoted


def command_line(template: Template, resolve: Callable[[Path], object]) -> str:
    """The command with every placeholder's value quoted for its position.

    Raises `UnsafePlaceholder` when a placeholder sits where no quoting is safe (the
    configuration's `validate` refuses those first) and `ValueError` for a NUL byte,
    which no command line can carry.
    """
    slots = iter(placeholder_slots(template.parts))
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = to_string(resolve(part))
        if "\0" in value:
            raise ValueError(f"the value of {format_path(part)} contains a NUL byte")
        out.append(quote(value, next(slots)))
    return "".join(out)


def placeholder_slots(parts: Sequence[str | Path]) -> list[Slot]:
    """One `Slot` per placeholder of a command template's parts, in order."""
    return _Lexer().run(parts)


@dataclass
class _Frame:
    """One nesting level of the lexer: a command context, or a quoted/expanded string."""

    kind: str  # cmd | single | double | ansi | backquote | brace | arith | comment | heredoc
    substitution: bool = False  # cmd: opened by `$(`
    depth: int = 0  # open `(` (cmd, arith) or `{` (brace) inside the frame
    close: str = ""  # arith: `)` or `]`; heredoc: the delimiter
    strip_tabs: bool = False  # heredoc `<<-`
    line: str = ""  # double, heredoc: the text so far (of the current line)
    locale: bool = False  # double: bash's `$"..."`
    # cmd only: the current word's literal text (a placeholder counts as "\0"), whether a
    # word is open, whether it is a command's first word, and the code-reading command
    # whose arguments run until `code_until` (";" = the end of the command).
    word: str = ""
    in_word: bool = False
    command_start: bool = True
    code_until: str | None = None
    code_name: str = ""
    redirect: bool = False  # the next word is a redirection's target, not a command


class _Lexer:
    """A POSIX-sh reader of just enough grammar to know each placeholder's quoting.

    It fails closed: where it cannot be sure how the shell reads what follows (a `case`
    inside `$(...)`, quotes inside `${...}`), every later placeholder is refused.
    """

    def __init__(self) -> None:
        self.stack: list[_Frame] = [_Frame("cmd")]
        self.slots: list[Slot] = []
        self.escape = False  # the previous character was an active backslash
        self.dollar_before = False  # the previous character was an unescaped, bare `$`
        self.pending_heredocs: list[tuple[str, bool]] = []
        self.lost: str | None = None
        self.seen = False  # any text before the current position

    def run(self, parts: Sequence[str | Path]) -> list[Slot]:
        for part in parts:
            if isinstance(part, str):
                i = 0
                while i < len(part):
                    i = getattr(self, "in_" + self.top.kind)(part, i)
                self.seen = self.seen or bool(part)
            else:
                self.slot(part)
        return self.slots

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def push(self, kind: str, **fields: object) -> None:
        self.stack.append(_Frame(kind, **fields))  # type: ignore[arg-type]

    def pop(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = f"after {why}, where tunectl cannot tell how the shell reads it"

    # -- placeholders --------------------------------------------------------

    def slot(self, path: Path) -> None:
        frame = self.top
        refusal = self.refusal(frame)
        context: Context = "unquoted"
        force = False
        if frame.kind == "single":
            context = "single"
        elif frame.kind == "double":
            context = "double"
            force = _ends_in_name(frame.line)
        elif frame.kind == "cmd":
            word = frame.word
            # `~${x}` would be a tilde expansion of a plain value such as `root`; a line
            # starting with `-x` would be read as options by `sh -c` itself.
            force = _ends_in_name(word) or bool(re.search(r"(^|[=:])~$", word))
            force = force or not self.seen
            if refusal is None and frame.command_start and re.match(r"[A-Za-z_]\w*\[", word):
                refusal = "in an array subscript, which bash evaluates as code"
            if refusal is None and frame.code_until == "=" and "=" not in word:
                refusal = f"in a variable name given to {frame.code_name}"
            frame.in_word = True
            frame.word += "\0"
        elif frame.kind == "heredoc":
            frame.line += "\0"
        if refusal is not None:
            text = format_path(path)
            refusal = f"${{{text}}} sits {refusal}. {_FIX.format(text)}"
        self.slots.append(Slot(path, context, refusal, force))
        self.seen = True
        self.escape = self.dollar_before = False

    def refusal(self, frame: _Frame) -> str | None:
        if self.lost is not None:
            return self.lost
        if self.escape:
            return "directly after a backslash"
        if self.dollar_before:
            return "directly after a $"
        if frame.kind == "double" and frame.locale:
            return 'inside a $"..." string'
        for outer in self.stack:
            if outer.kind == "cmd" and outer.code_until not in (None, "="):
                return f"in the arguments of {outer.code_name}, which reads them as code"
        return {
            "ansi": "inside a $'...' string",
            "backquote": "inside backquotes (`...`)",
            "brace": "inside a ${...} expansion",
            "arith": "inside arithmetic",
            "comment": "in a comment",
            "heredoc": "in a here-document",
        }.get(frame.kind)

    # -- characters, by the kind of the innermost frame --------------------------

    def in_comment(self, text: str, i: int) -> int:
        if text[i] == "\n":
            self.pop()
            return self.in_cmd(text, i)
        return i + 1

    def in_single(self, text: str, i: int) -> int:
        if text[i] == "'":
            self.pop()
        return i + 1

    def in_ansi(self, text: str, i: int) -> int:
        return self.escaped_until(text, i, "'")

    def in_backquote(self, text: str, i: int) -> int:
        return self.escaped_until(text, i, "`")

    def escaped_until(self, text: str, i: int, close: str) -> int:
        ch = text[i]
        if self.escape:
            self.escape = False
        elif ch == "\\":
            self.escape = True
        elif ch == close:
            self.pop()
        return i + 1

    def in_brace(self, text: str, i: int) -> int:
        ch, frame = text[i], self.top
        if self.escape:
            self.escape = False
        elif ch == "\\":
            self.escape = True
        elif ch in "'\"`":
            self.lose("a quote inside a ${...} expansion")
        elif ch == "{":
            frame.depth += 1
        elif ch == "}":
            if frame.depth == 0:
                self.pop()
            frame.depth -= 1
        return i + 1

    def in_arith(self, text: str, i: int) -> int:
        ch, frame = text[i], self.top
        opener = "(" if frame.close == ")" else "["
        if ch in "'\"`\\":
            self.lose("a quote inside arithmetic")
        elif ch == opener:
            frame.depth += 1
        elif ch == frame.close:
            if frame.depth > 0:
                frame.depth -= 1
            elif frame.close == "]":
                self.pop()
            elif text.startswith("))", i):
                self.pop()
                return i + 2
            else:
                self.lose("arithmetic closed by a single )")
        return i + 1

    def in_heredoc(self, text: str, i: int) -> int:
        ch, frame = text[i], self.top
        if ch != "\n":
            frame.line += ch
            return i + 1
        line = frame.line.lstrip("\t") if frame.strip_tabs else frame.line
        frame.line = ""
        if line == frame.close:
            self.pop()
            if self.pending_heredocs:
                self.start_heredoc()
        return i + 1

    def in_double(self, text: str, i: int) -> int:
        ch, frame = text[i], self.top
        self.dollar_before = False
        if self.escape:
            self.escape = False
        elif ch == "\\":
            self.escape = True
        elif ch == '"':
            self.pop()
            return i + 1
        elif ch == "`":
            self.push("backquote")
            return i + 1
        elif ch == "$":
            nxt = self.dollar(text, i)
            if nxt is not None:
                return nxt
            self.dollar_before = True
        frame.line += ch
        return i + 1

    def dollar(self, text: str, i: int) -> int | None:
        """Open the expansion that the `$` at `text[i]` starts; the index after its opener.

        None when this `$` opens nothing (`$NAME`, or a `$` at the end of the literal text,
        before a placeholder).
        """
        ahead, in_cmd = text[i + 1 : i + 3], self.top.kind == "cmd"
        if ahead.startswith("(("):
            self.push("arith", close=")")
            return i + 3
        if ahead.startswith("("):
            self.push("cmd", substitution=True)
            return i + 2
        if ahead[:1] and ahead[0] in "$?#!@*-0123456789":
            return i + 2  # a special parameter such as `$$`: nothing opens
        opener = {"{": "brace", "[": "arith", "'": "ansi", '"': "double"}.get(ahead[:1])
        if opener is None or (ahead[0] in "'\"" and not in_cmd):
            return None
        self.push(opener, close="]" if opener == "arith" else "", locale=opener == "double")
        return i + 2

    def in_cmd(self, text: str, i: int) -> int:
        ch, frame = text[i], self.top
        self.dollar_before = False
        if self.escape:
            self.escape = False
            if ch != "\n":  # backslash-newline only joins lines
                frame.in_word, frame.word = True, frame.word + "\\" + ch
            return i + 1
        if ch == "\\":
            self.escape = True
        elif ch == "#" and not frame.in_word:
            self.push("comment")
        elif ch in _BLANKS:
            self.end_word(frame)
        elif ch == "\n":
            self.end_command(frame)
            if self.pending_heredocs:
                self.start_heredoc()
        elif ch in _OPERATORS:
            return self.operator(text, i, frame)
        else:
            frame.in_word, frame.word = True, frame.word + ch
            if ch in "'\"`":
                self.push({"'": "single", '"': "double", "`": "backquote"}[ch])
            elif ch == "$":
                nxt = self.dollar(text, i)
                if nxt is not None:
                    return nxt
                self.dollar_before = True
        return i + 1

    def operator(self, text: str, i: int, frame: _Frame) -> int:
        ch = text[i]
        if ch in "<>" and frame.in_word and frame.word.isdigit():
            frame.word, frame.in_word = "", False  # `2>x`: a file descriptor, no command
        self.end_word(frame)
        if ch == "(":
            if frame.command_start and text.startswith("((", i):
                # bash's arithmetic command (dash reads two subshells, as harmless).
                self.push("arith", close=")")
                return i + 2
            frame.depth += 1
            frame.command_start = True
        elif ch == ")":
            if frame.depth > 0:
                frame.depth -= 1
            elif frame.substitution:
                self.end_command(frame)
                self.pop()
                return i + 1
            frame.command_start = True  # after a subshell, or a case pattern: `a) cmd`
        elif text.startswith("<<", i) and not text.startswith("<<<", i):
            strip = text.startswith("<<-", i)
            return self.heredoc_operator(text, i + (3 if strip else 2), strip)
        elif ch in "<>":
            # `>`, `>>`, `>&`, `>|`, `<>`, `<<<`...: one operator; then the target word.
            frame.redirect = True
            while i + 1 < len(text) and text[i + 1] in "<>&|":
                i += 1
        elif ch in ";&|":
            self.end_command(frame)
        return i + 1

    def heredoc_operator(self, text: str, i: int, strip: bool) -> int:
        """Read a here-document's delimiter word after `<<` / `<<-`."""
        while i < len(text) and text[i] in _BLANKS:
            i += 1
        start = i
        while i < len(text) and text[i] not in _BLANKS + "\n" + _OPERATORS:
            i += 1
        word = re.sub(r"""\\(.)|['"]""", r"\1", text[start:i])
        if not word or i >= len(text):
            # The delimiter is, or runs into, a placeholder: where the body ends is unknown.
            self.lose("a here-document whose delimiter is not plain text")
        self.pending_heredocs.append((word, strip))
        return i

    def start_heredoc(self) -> None:
        word, strip = self.pending_heredocs.pop(0)
        self.push("heredoc", close=word, strip_tabs=strip)

    # -- words and commands --------------------------------------------------

    def end_word(self, frame: _Frame) -> None:
        if not frame.in_word:
            return
        word, frame.word, frame.in_word = frame.word, "", False
        if frame.redirect:
            frame.redirect = False
            return
        if frame.code_until == "]]" and word == "]]":
            frame.code_until = None
            return
        if not frame.command_start:
            return
        frame.command_start = False
        if word in _CODE_COMMANDS and frame.code_until is None:
            frame.code_name = _CODE_COMMANDS[word]
            frame.code_until = "]]" if word == "[[" else ";"
        elif word in _NAME_COMMANDS and frame.code_until is None:
            frame.code_name, frame.code_until = word, "="
        elif word == "case" and any(f.substitution for f in self.stack):
            # In `$(case x in a) ...)` the `)` after a pattern does not close the
            # substitution; telling which one does needs the whole grammar.
            self.lose("a case statement inside $(...)")
        elif word in _LEADING_WORDS or re.match(r"[A-Za-z_]\w*=", word):
            frame.command_start = True  # still before the command's name

    def end_command(self, frame: _Frame) -> None:
        self.end_word(frame)
        if frame.code_until in (";", "="):
            frame.code_until = None
        frame.command_start = True


def _ends_in_name(text: str) -> bool:
    """Whether `text` ends in an unescaped `$NAME`, which a plain value would extend."""
    found = re.search(r"(\\*)\$([A-Za-z_][A-Za-z0-9_]*|[0-9])$", text)
    return found is not None and len(found.group(1)) % 2 == 0
