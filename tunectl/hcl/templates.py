"""Scanning template text: the `${`/`%{` markers, where an interpolation ends, and the
common indentation of a `<<-` heredoc. Plain text functions, for `tunectl.hcl.reader`.
"""

from __future__ import annotations


def next_marker(text: str, start: int) -> int:
    """The index of the next "${", "$${", "%{" or "%%{" at or after start, or -1."""
    found = [k for k in (text.find("${", start), text.find("%{", start)) if k >= 0]
    if not found:
        return -1
    i = min(found)
    if i > start and text[i - 1] == text[i]:
        return i - 1
    return i


def match_interpolation(text: str, start: int) -> int:
    """The index of the "}" closing the interpolation whose body begins at start, or -1."""
    modes = ["e"]
    depths = [0]
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if modes[-1] == "e":
            if c == '"':
                modes.append("s")
            elif c == "{":
                depths[-1] += 1
            elif c == "}":
                if depths[-1]:
                    depths[-1] -= 1
                else:
                    modes.pop()
                    depths.pop()
                    if not modes:
                        return i
        else:
            if c == "\\":
                i += 1
            elif c == '"':
                modes.pop()
            elif text.startswith("$${", i) or text.startswith("%%{", i):
                i += 2
            elif text.startswith("${", i) or text.startswith("%{", i):
                modes.append("e")
                depths.append(0)
                i += 1
        i += 1
    return -1


def strip_indent(body: str) -> str:
    """A `<<-` heredoc's body without the indentation its lines have in common."""
    lines = body.split("\n")
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip(" \t")]
    if not indents:
        return "\n".join(ln.lstrip(" \t") for ln in lines)
    cut = min(indents)
    return "\n".join(ln[min(cut, len(ln) - len(ln.lstrip(" \t"))) :] for ln in lines)
