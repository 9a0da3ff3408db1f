"""The `tunectl` command: a thin typer layer over the operations and views.

Every command turns `DiagnosticError` into rendered diagnostics and exit code 1; a usage
error (unknown flag or command, missing argument, bad option value) is rendered the same
way with the command's usage line, exit 1; any other exception is a bug and is shown as one
line (with the traceback only when TUNECTL_DEBUG=1).

typer and click are pinned in pyproject.toml and this layer uses only their public API
(`click.UsageError`, `typer.core.TyperGroup`; see `common.App`): typer 0.26+ vendors click
under a private name, whose exceptions `import click` cannot catch.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer

from tunectl import __version__
from tunectl.cli import apply as apply_cmds
from tunectl.cli import imports as import_cmds
from tunectl.cli import inspect as inspect_cmds
from tunectl.cli import results as results_cmds
from tunectl.cli import setup as setup_cmds
from tunectl.cli import state as state_cmds
from tunectl.cli.common import (
    App,
    Context,
    disable_color,
    echo,
    emit_diagnostics,
    examples,
    usage_error,
)
from tunectl.diags import DiagnosticError, error

app = App(
    name="tunectl",
    help="Hyperparameter-tuning experiments as code: plan, apply, destroy.",
    # typer's shell completion: --install-completion / --show-completion (bash, zsh, fish,
    # PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tunectl v{__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    chdir: Annotated[
        Path | None,
        typer.Option(
            "--chdir",
            "-C",
            metavar="DIR",
            help="Work on the configuration in DIR instead of the current directory.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    no_color: Annotated[
        bool,
        typer.Option(
            "--no-color", help="Print no colours (as the NO_COLOR environment variable does)."
        ),
    ] = False,
) -> None:
    """Hyperparameter-tuning experiments as code: plan, apply, destroy."""
    if no_color:
        disable_color()
    directory = (chdir or Path.cwd()).absolute()
    if chdir is not None:
        # As Terraform's -chdir: every relative path (plan files, --var-file, state) is
        # then relative to DIR.
        try:
            os.chdir(directory)
        except OSError as exc:
            raise DiagnosticError(
                error(
                    "Invalid --chdir",
                    f"Cannot work in {directory}: {exc.strerror}. Check the path.",
                )
            ) from None
    ctx.obj = Context(directory=directory)


def version(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the versions of tunectl, Python and the installed providers."""
    import json
    import platform

    from tunectl.providers import registry

    providers = {name: entry.version for name, entry in registry.entries().items()}
    if json_:
        data = {
            "tunectl_version": __version__,
            "python_version": platform.python_version(),
            "providers": providers,
        }
        echo(json.dumps(data, indent=2, sort_keys=True))
        return
    echo(f"tunectl v{__version__}")
    echo(f"on Python {platform.python_version()}")
    for name, provider_version in sorted(providers.items()):
        echo(f"+ provider {name} v{provider_version}")


app.command(epilog=examples("tunectl version", "tunectl version --json"))(version)
setup_cmds.register(app)
apply_cmds.register(app)
inspect_cmds.register(app)
results_cmds.register(app)
state_cmds.register(app)
import_cmds.register(app)


def _machine_fault(exc: BaseException) -> DiagnosticError | None:
    """A full disk, a quota or a read-only file system met anywhere (state, plan file, logs,
    task files) is the machine's fault, not a bug: say so, with the file when known."""
    import errno
    import sqlite3

    from tunectl.diags import error

    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return None
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno == errno.EROFS:
        summary, remedy = "Read-only file system", "Run tunectl where it can write"
    else:
        summary, remedy = "No space left on device", "Free some space (or raise the quota)"
    return DiagnosticError(
        error(
            summary,
            f"tunectl stopped{where}: {exc.strerror or exc}. {remedy}, then run the command "
            "again: the state is as the last completed step left it (every write to it is "
            "a transaction).",
        )
    )


def run() -> None:
    """Console-script entry point."""
    try:
        # Without standalone mode, click returns (not raises) the code of typer.Exit.
        # prog_name: usage lines say `tunectl`, also when run as `python -m tunectl`.
        code = app(standalone_mode=False, prog_name="tunectl")
    except DiagnosticError as exc:
        emit_diagnostics(exc.diags)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        # Terraform exits 1 on a usage error; click's own handling would exit 2.
        emit_diagnostics([usage_error(exc)])
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("\nInterrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # bugs
        if os.environ.get("TUNECTL_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        fault = _machine_fault(exc)
        if fault is not None:
            emit_diagnostics(fault.diags)
            sys.exit(1)
        typer.echo(
            f"Error: internal error: {type(exc).__name__}: {exc}\n\n"
            "This is a bug in tunectl. Set TUNECTL_DEBUG=1 to see the traceback, and report it.",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
