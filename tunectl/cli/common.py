"""What every command shares: the context object, options, output and diagnostics."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperCommand, TyperGroup

from tunectl.diags import Diagnostic, DiagnosticError, SourceFiles, did_you_mean, error, render
from tunectl.names import shown

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs (start-up time)
    from tunectl.operations.session import Session


@dataclass
class Context:
    directory: Path
    # Source texts of the configuration, to quote lines in diagnostics.
    sources: SourceFiles = field(default_factory=SourceFiles)


_CURRENT: dict[str, SourceFiles] = {}


class Group(TyperGroup):
    """A command group (tunectl, tunectl state) that behaves the same on every pinned click.

    Without a subcommand it prints its help and exits 1, as Terraform does (click 8.1 exits
    0 there, click 8.2+ raises a usage error). A usage error found while parsing its own
    options carries its context, so that `run` can print the usage line.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:
            text = ctx.get_help()  # typer's rich help prints itself and returns ""
            if text:
                echo(text)
            ctx.exit(1)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # One message on every version: typer and click 8.4+ each add their own "Did you
        # mean", twice over; click 8.1 adds none.
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            hint = did_you_mean(name, self.list_commands(ctx))
            raise click.UsageError(f"No such command {shown(name)}.{hint}", ctx)
        return super().resolve_command(ctx, args)


class Command(TyperCommand):
    """A command whose usage errors always carry its context.

    click's option parser raises some usage errors (an option missing its value) without
    a context; with one, `run` can print the command's usage line with the error.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class App(typer.Typer):
    """A typer app whose groups and commands use `Group` and `Command`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["cls"] = kwargs.get("cls") or Command
        return super().command(*args, **kwargs)


def usage_error(exc: click.UsageError) -> Diagnostic:
    """A usage error as a diagnostic: click's message, then the usage line and where help is."""
    ctx = exc.ctx
    if ctx is None:
        return error(exc.format_message())
    usage = ctx.get_usage()
    help_names = ctx.help_option_names
    hint = f"Try '{ctx.command_path} {help_names[0]}' for help." if help_names else ""
    return error(exc.format_message(), f"{usage}\n{hint}".rstrip())


_NO_COLOR: dict[str, bool] = {"set": False}


def disable_color() -> None:
    """`--no-color`: plain text on every stream, as with NO_COLOR set."""
    _NO_COLOR["set"] = True


def color_enabled(stream=None) -> bool:
    stream = stream or sys.stdout
    if _NO_COLOR["set"]:
        return False
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def examples(*lines: str) -> str:
    """A command's examples, shown at the end of its --help and on its docs page
    (docs/cli/). Each line is a command, optionally followed by `  # what it does`."""
    return "Examples:\n\n" + "\n\n".join(f"  $ {line}" for line in lines)


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


def session(
    ctx: typer.Context,
    var: list[str] | None = None,
    var_file: list[Path] | None = None,
    lock_timeout: str = "0s",
) -> Session:
    """The session a command's operations share, from its options."""
    from tunectl.durations import parse_duration

    obj: Context = ctx.obj
    try:
        timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise DiagnosticError(
            error("Invalid --lock-timeout", f"{exc} Use a duration such as 10s or 2m.")
        ) from None
    files = [p if p.is_absolute() else Path.cwd() / p for p in (var_file or [])]
    from tunectl.operations.session import Session

    return Session(obj.directory, var or [], files, timeout)


def load(session: Session, warn: bool = False) -> Any:
    """Load the configuration, keeping its sources for diagnostics; with `warn`, show the
    configuration's warnings (validate, plan and apply do)."""
    from tunectl.config.load import config_files

    # Keep the raw texts even when loading fails, to quote them in diagnostics.
    texts = {}
    if session.directory.is_dir():
        for path in config_files(session.directory):
            try:
                texts[path.name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    _CURRENT["sources"] = SourceFiles(texts)
    config = session.config
    if warn:
        emit_diagnostics(config.warnings)
    return config


VarOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--var", metavar="NAME=VALUE", help="Set a variable: --var NAME=VALUE (repeatable)."
    ),
]
VarFileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--var-file",
        metavar="FILE",
        help="Read variables from a file of NAME = VALUE lines, or JSON (repeatable).",
    ),
]
LockTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        help="How long to wait for the state lock, e.g. 10s (default: fail at once).",
    ),
]
AddrArg = Annotated[
    str,
    typer.Argument(
        metavar="ADDR", help="An experiment or trial: experiment.NAME or experiment.NAME.trial[N]."
    ),
]
ExperimentArg = Annotated[
    str, typer.Argument(metavar="ADDR", help="The experiment: experiment.NAME.")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        metavar="ADDR",
        help="Limit the operation to this experiment address (repeatable).",
    ),
]
ReplaceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--replace",
        metavar="ADDR",
        help="Force replacement of this experiment address, or run this trial again "
        "(experiment.NAME.trial[N]: a new attempt, same parameters); repeatable.",
    ),
]


def echo(text: str = "", err: bool = False) -> None:
    typer.echo(text, err=err)
