"""`tunectl fmt`: the canonical layout of an HCL file, comments kept.

The rules are Terraform's: two spaces per nesting level, one space around `=`, the `=` of
consecutive one-line arguments in a block aligned, no trailing whitespace, one newline at
the end. Everything else -- comments, blank lines between groups, the text of strings and
heredocs, the order of things -- is left as the author wrote it.

The formatter works on lines, with a small scanner that knows where strings, comments and
heredocs are, so that a brace inside a string never changes the indentation. A file that
does not parse is refused (`FormatError`), and the result is parsed again before it is
returned: formatting never turns a valid file into an invalid one.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from tunectl.diags import DiagnosticError

INDENT = "  "
_ATTR = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*=(?![=>])\s*(.*)$")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)\s*$")


class FormatError(Exception):
    """Formatting produced text that does not parse: a bug in the formatter, never saved."""


@dataclass
class _Line:
    text: str  # stripped of indentation and trailing whitespace
    depth: int  # nesting level at which the line starts
    verbatim: bool = False  # heredoc body: keep exactly
    attr: tuple[str, str] | None = None  # (name, rest) of a one-line `name = value`


def _scan(line: str, depth: int, in_comment: bool) -> tuple[int, int, bool, str | None]:
    """Walk one line; return (depth at end, lowest depth reached, in block comment, heredoc).

    Only brackets outside strings and comments count. Template interpolations `${...}`
    inside strings are skipped as part of the string.
    """
    low = depth
    i, n = 0, len(line)
    while i < n:
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return depth, low, True, None
            in_comment = False
            i = end + 2
            continue
        ch = line[i]
        if ch == "#" or line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_comment = True
            i += 2
            continue
        if ch == '"':
            i = _skip_string(line, i + 1)
            continue
        if line.startswith("<<", i):
            match = _HEREDOC.match(line, i)
            if match:
                return depth, low, False, match.group(2)
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            low = min(low, depth)
        i += 1
    return depth, low, in_comment, None


def _skip_string(line: str, i: int) -> int:
    """Index just past the closing quote of a string that opened before `i`."""
    n = len(line)
    nested = 0
    while i < n:
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if line.startswith("${", i) or line.startswith("%{", i):
            nested += 1
            i += 2
            continue
        if ch == "}" and nested:
            nested -= 1
        elif ch == '"' and not nested:
            return i + 1
        i += 1
    return n


def format_text(text: str, filename: str = "<input>") -> str:
    """The canonical layout of `text`.

    Raises DiagnosticError (located in `filename`) when `text` is not valid HCL.
    """
    from tunectl.hcl.syntax import parse

    parse(text, filename)
    lines: list[_Line] = []
    depth = 0
    in_comment = False
    heredoc: str | None = None
    for raw in text.replace("\r\n", "\n").split("\n"):
        if heredoc is not None:
            lines.append(_Line(raw, depth, verbatim=True))
            if raw.strip() == heredoc:
                heredoc = None
            continue
        stripped = raw.strip()
        if in_comment:
            lines.append(_Line(raw.rstrip(), depth, verbatim=True))
            depth, _low, in_comment, heredoc = _scan(stripped, depth, True)
            continue
        end, low, in_comment, heredoc = _scan(stripped, depth, False)
        # A line that starts by closing brackets is indented at the level it closes to.
        start = depth
        lead = len(stripped) - len(stripped.lstrip("}])"))
        if lead:
            start = max(low, depth - lead)
        entry = _Line(stripped, max(start, 0))
        match = _ATTR.match(stripped)
        if match and end == depth and heredoc is None and not in_comment:
            entry.attr = (match.group(1), match.group(2))
        elif match:
            # A value over several lines is not aligned, and ends the run before it.
            entry.text = f"{match.group(1)} = {match.group(2)}"
        lines.append(entry)
        depth = max(end, 0)

    # Align the `=` of runs of one-line arguments at the same depth.
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.attr is None:
            out.append(_render(line))
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].attr is not None and lines[j].depth == line.depth:
            j += 1
        width = max(len(lines[k].attr[0]) for k in range(i, j))  # type: ignore[index]
        for k in range(i, j):
            name, rest = lines[k].attr  # type: ignore[misc]
            text_k = f"{name.ljust(width)} = {rest}".rstrip()
            out.append(INDENT * lines[k].depth + text_k)
        i = j

    result = "\n".join(out).strip("\n") + "\n"
    try:
        parse(result, filename)
    except DiagnosticError:
        raise FormatError(f"formatting {filename} would break its syntax") from None
    return result


def _render(line: _Line) -> str:
    if line.verbatim:
        return line.text
    if not line.text:
        return ""
    return INDENT * line.depth + line.text


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"old/{name}",
            tofile=f"new/{name}",
        )
    )
