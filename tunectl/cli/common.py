"""What every command shares: the context object, options, output and diagnostics."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from tunectl.diags import Diagnostic, DiagnosticError, SourceFiles, error, render
from tunectl.workspace import Workspace


@dataclass
class Context:
    directory: Path
    # Source texts of the configuration, to quote lines in diagnostics.
    sources: SourceFiles = field(default_factory=SourceFiles)


_CURRENT: dict[str, SourceFiles] = {}


def color_enabled(stream=None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def emit_diagnostics(diags: Iterable[Diagnostic]) -> None:
    sources = _CURRENT.get("sources")
    color = color_enabled(sys.stderr)
    for diag in diags:
        text = render(diag, sources)
        if color:
            head, _, rest = text.partition("\n")
            code = "\x1b[1;31m" if diag.severity == "error" else "\x1b[1;33m"
            text = f"{code}{head}\x1b[0m\n{rest}"
        typer.echo("\n" + text, err=True)


def workspace(
    ctx: typer.Context,
    var: list[str] | None = None,
    var_file: list[Path] | None = None,
    lock_timeout: str = "0s",
) -> Workspace:
    from tunectl.durations import parse_duration

    obj: Context = ctx.obj
    try:
        timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise DiagnosticError(
            error("Invalid --lock-timeout", f"{exc} Use a duration such as 10s or 2m.")
        ) from None
    files = [p if p.is_absolute() else Path.cwd() / p for p in (var_file or [])]
    ws = Workspace(obj.directory, var or [], files, timeout)
    return ws


def load(ws: Workspace):
    """Load the configuration, keeping its sources for diagnostics."""
    from tunectl.config.load import config_files

    # Keep the raw texts even when loading fails, to quote them in diagnostics.
    texts = {}
    if ws.directory.is_dir():
        for path in config_files(ws.directory):
            try:
                texts[path.name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    _CURRENT["sources"] = SourceFiles(texts)
    return ws.config


VarOpt = Annotated[
    list[str] | None,
    typer.Option("--var", help="Set a variable: --var NAME=VALUE (repeatable)."),
]
VarFileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--var-file", help="Read variables from a file of NAME = VALUE lines, or JSON (repeatable)."
    ),
]
LockTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        help="How long to wait for the state lock, e.g. 10s (default: fail at once).",
    ),
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", help="Limit the operation to this experiment address (repeatable)."),
]
ReplaceOpt = Annotated[
    list[str] | None,
    typer.Option("--replace", help="Force replacement of this experiment address (repeatable)."),
]


def echo(text: str = "", err: bool = False) -> None:
    typer.echo(text, err=err)
