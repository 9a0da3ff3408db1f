"""Diagnostics: the one type for every user-facing error and warning.

Expected failures (bad configuration, unreadable state, a stale plan) are returned or
raised as `Diagnostic`s and rendered in Terraform's form::

    Error: Unsupported argument

      on main.hcl line 12, in experiment "mnist":
      12:   max_trails = 40
            ^^^^^^^^^^^^^^^

    An argument named "max_trails" is not expected here. Did you mean "max_trials"?

Exceptions other than `DiagnosticError` are bugs; the CLI shows them as an internal error
(with a traceback only when TUNECTL_DEBUG=1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class SourceRange:
    """Where something is written, as Terraform's tfdiags ranges: a file name (as shown to
    users), the 1-based start line and column, and the end line and column. The end
    column is exclusive (just after the last character); columns count characters. A
    column is None where only the line is known."""

    filename: str
    line: int
    end_line: int | None = None
    column: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.filename} line {self.line}"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    summary: str
    detail: str = ""
    subject: SourceRange | None = None
    # Terraform's "in experiment "mnist"" context, shown after the location.
    context: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "severity": self.severity,
            "summary": self.summary,
            "detail": self.detail,
        }
        if self.subject is not None:
            subject = self.subject
            start: dict[str, int] = {"line": subject.line}
            end: dict[str, int] = {"line": subject.end_line or subject.line}
            if subject.column is not None:
                start["column"] = subject.column
                if subject.end_column is not None:
                    end["column"] = subject.end_column
            out["range"] = {"filename": subject.filename, "start": start, "end": end}
        return out


def error(
    summary: str,
    detail: str = "",
    subject: SourceRange | None = None,
    context: str | None = None,
) -> Diagnostic:
    return Diagnostic("error", summary, detail, subject, context)


def warning(
    summary: str,
    detail: str = "",
    subject: SourceRange | None = None,
    context: str | None = None,
) -> Diagnostic:
    return Diagnostic("warning", summary, detail, subject, context)


class Diagnostics(list[Diagnostic]):
    """An ordered collection of diagnostics; `has_errors` decides the exit code."""

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self if d.severity == "error"]

    def raise_if_errors(self) -> None:
        if self.has_errors():
            raise DiagnosticError(self)


class DiagnosticError(Exception):
    """Carries diagnostics up to the CLI, which renders them and exits 1."""

    def __init__(self, diags: Iterable[Diagnostic] | Diagnostic) -> None:
        if isinstance(diags, Diagnostic):
            diags = [diags]
        self.diags = Diagnostics(diags)
        super().__init__("; ".join(d.summary for d in self.diags))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean "x"?' suffix, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' Did you mean "{match[0]}"?' if match else ""


@dataclass
class SourceFiles:
    """The text of every configuration file, to quote source lines in diagnostics."""

    texts: dict[str, str] = field(default_factory=dict)

    def line(self, filename: str, line: int) -> str | None:
        text = self.texts.get(filename)
        if text is None:
            return None
        lines = text.splitlines()
        if 1 <= line <= len(lines):
            return lines[line - 1]
        return None


def _underline(subject: SourceRange, src: str) -> str:
    """Carets under the subject's characters on its first line, as Terraform underlines
    them; '' when the column is not known. A subject running on to later lines is
    underlined to the end of its first line."""
    if subject.column is None or not 1 <= subject.column <= len(src) + 1:
        return ""
    start = subject.column - 1
    end = len(src)
    if subject.end_column is not None and (subject.end_line or subject.line) == subject.line:
        end = min(end, subject.end_column - 1)
    end = max(end, start + 1)
    # Tabs stay tabs so the carets line up with the quoted line however tabs are shown.
    lead = "".join(ch if ch == "\t" else " " for ch in src[:start])
    return lead + "^" * (end - start)


def render(diag: Diagnostic, sources: SourceFiles | Mapping[str, str] | None = None) -> str:
    """Render one diagnostic as plain text in Terraform's layout."""
    if sources is not None and not isinstance(sources, SourceFiles):
        sources = SourceFiles(dict(sources))
    title = "Error" if diag.severity == "error" else "Warning"
    out = [f"{title}: {diag.summary}", ""]
    if diag.subject is not None:
        where = f"  on {diag.subject.filename} line {diag.subject.line}"
        if diag.context:
            where += f", {diag.context}"
        out.append(where + ":")
        src = sources.line(diag.subject.filename, diag.subject.line) if sources else None
        if src is not None:
            prefix = f"  {diag.subject.line}: "
            out.append(prefix + src.rstrip())
            marks = _underline(diag.subject, src.rstrip())
            if marks:
                out.append(" " * len(prefix) + marks)
        out.append("")
    if diag.detail:
        out.append(diag.detail)
        out.append("")
    return "\n".join(out)
