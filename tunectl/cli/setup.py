"""`tunectl init`, `validate`, `fmt` and `providers`."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tunectl.cli.common import VarFileOpt, VarOpt, echo, emit_diagnostics, examples, load, session
from tunectl.diags import Diagnostic, DiagnosticError, SourceRange, error

if TYPE_CHECKING:
    from tunectl.operations.session import Session


def init(
    ctx: typer.Context,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    migrate_state: Annotated[
        bool,
        typer.Option(
            "--migrate-state",
            help="Copy the local state (state/tunectl.db) to the configured S3 backend.",
        ),
    ] = False,
) -> None:
    """Check that the configuration's providers are installed and create the state."""
    ses = session(ctx, var, var_file)
    # `load` keeps the sources to quote in diagnostics; whether a failure to load matters
    # to init (missing variable values may not) is `load_for_init`'s to say.
    with contextlib.suppress(DiagnosticError):
        load(ses)
    names = ses.load_for_init()
    echo("Initializing providers...")
    from tunectl.providers import registry

    installed = registry.entries()
    missing = [name for name in names if name not in installed]
    if missing:
        raise DiagnosticError(
            error(
                "Provider not installed",
                f"The configuration uses the {', '.join(missing)} provider, which is not "
                f"installed. Install it (e.g. pip install ./providers/{missing[0]}), then run "
                "tunectl init again.",
            )
        )
    for name in names:
        entry = installed[name]
        echo(f"- {name}: {entry.distribution} v{entry.version}")
    if migrate_state:
        _migrate(ses)
        return
    with ses.locked("OperationTypeInit"):
        state = ses.open_state(create=True)
        ses.save(state)
        state.close()
    echo(f"\nState: {ses.backend.where()}\n\ntunectl has been successfully initialized!")


def _migrate(ses: Session) -> None:
    """Move the local state to the S3 backend, refusing to overwrite a state there."""
    from tunectl.operations.session import config_id
    from tunectl.states import State

    backend = ses.backend
    source = ses.directory / "state" / "tunectl.db"
    if not backend.shared:
        raise DiagnosticError(
            error(
                "Nothing to migrate to",
                '--migrate-state moves the local state to a backend "s3"; this configuration '
                'has no such backend. Add tunectl { backend "s3" { ... } } first.',
            )
        )
    if not source.exists():
        raise DiagnosticError(
            error("No local state", f"There is no local state at {source} to migrate.")
        )
    with ses.locked("OperationTypeMigrate"):
        if backend.exists():
            raise DiagnosticError(
                error(
                    "Backend already has a state",
                    f"{backend.where()} already holds a state; tunectl does not overwrite it. "
                    "Delete it first if the local state is the one to keep.",
                )
            )
        local = State.open(source, create=False, config_id=config_id(ses.directory))
        try:
            ses.save(local)
            serial = local.serial
        finally:
            local.close()
    echo(
        f"Copied the local state ({source}, serial {serial}) to {backend.where()}.\n"
        "The local file is left in place; delete it once you have checked the migration."
    )


def validate(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
) -> None:
    """Check the configuration alone (no state, no network)."""
    ses = session(ctx, var, var_file)
    try:
        config = load(ses, warn=not json_)
    except DiagnosticError as exc:
        if not json_:
            raise
        from tunectl.views.plan_json import render_diagnostics_json

        echo(render_diagnostics_json(exc.diags))
        raise typer.Exit(1) from None
    if json_:
        echo(
            json.dumps(
                {
                    "format_version": "1.0",
                    "valid": True,
                    "error_count": 0,
                    "warning_count": len(config.warnings),
                    "diagnostics": [d.to_json() for d in config.warnings],
                },
                indent=2,
            )
        )
    elif config.warnings:
        echo("Success! The configuration is valid, but there were some warnings.")
    else:
        echo("Success! The configuration is valid.")


def fmt(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 3 when a file is not formatted.")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Show the changes as a unified diff.")
    ] = False,
) -> None:
    """Rewrite *.hcl files in the canonical layout (comments kept)."""
    from tunectl.config.load import config_files
    from tunectl.hcl.fmt import FormatError, format_text, unified_diff

    directory = ctx.obj.directory
    changed = []
    failures: list[Diagnostic] = []
    for path in config_files(directory):
        text = path.read_text(encoding="utf-8")
        try:
            new = format_text(text, path.name)
        except DiagnosticError as exc:
            failures.extend(exc.diags)
            continue
        except FormatError as exc:
            failures.append(
                error(
                    "Failed to format",
                    f"{exc}; the file was left as it is. Please report this as a bug.",
                    SourceRange(path.name, 1),
                )
            )
            continue
        if new == text:
            continue
        changed.append(path.name)
        if diff:
            sys.stdout.write(unified_diff(text, new, path.name))
        if not check:
            path.write_text(new, encoding="utf-8")
        if not diff:
            echo(path.name)
    if failures:
        emit_diagnostics(failures)
        raise typer.Exit(1)
    if check and changed:
        raise typer.Exit(3)


def providers() -> None:
    """List installed providers and their versions."""
    from tunectl.providers import registry

    entries = registry.entries()
    if not entries:
        echo("No providers are installed. Install one, e.g. pip install ./providers/local")
        return
    for name in sorted(entries):
        entry = entries[name]
        status = ""
        try:
            cls = registry.load(name)
            caps = [k for k, v in vars(cls.capabilities).items() if v is True]
            status = f"  ({', '.join(caps)})" if caps else ""
        except registry.ProviderLoadError as exc:
            status = f"  BROKEN: {exc}"
        echo(f"{name}  {entry.distribution} v{entry.version}{status}")


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples("tunectl init", "tunectl init --migrate-state  # local state to S3")
    )(init)
    app.command(epilog=examples("tunectl validate", "tunectl validate --json"))(validate)
    app.command(epilog=examples("tunectl fmt", "tunectl fmt --check --diff  # in CI"))(fmt)
    app.command(epilog=examples("tunectl providers"))(providers)
