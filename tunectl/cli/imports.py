"""`tunectl import nni FILE` and `tunectl import pai FILE`: existing experiments as HCL.

Writes the formatted HCL (to `-o FILE`, default `main.hcl` in the working directory;
`-o -` prints it), then the report of what was not carried over and why. Refuses to
overwrite an existing file unless `--force`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tunectl.cli.common import App, echo, examples
from tunectl.diags import DiagnosticError, error

import_app = App(help="Write the HCL of an existing NNI or PAI AutoML experiment.")

SourceArg = Annotated[Path, typer.Argument(metavar="FILE", help="The configuration to import.")]
OutOpt = Annotated[
    str,
    typer.Option(
        "--out", "-o", metavar="FILE", help="Where to write the HCL ('-' for standard output)."
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite the output file.")]


def _write(ctx: typer.Context, source: Path, out: str, force: bool, kind: str) -> None:
    from tunectl.importers import import_nni, import_pai

    base: Path = ctx.obj.directory if ctx.obj else Path.cwd()
    src = source if source.is_absolute() else Path.cwd() / source
    target = None if out == "-" else (Path(out) if Path(out).is_absolute() else Path.cwd() / out)
    out_dir = target.parent if target is not None else base
    if target is not None and target.exists() and not force:
        raise DiagnosticError(
            error(
                "Output file exists",
                f"{out} already exists; choose another with -o, or pass --force to replace it.",
            )
        )
    imported = (import_nni if kind == "nni" else import_pai)(src, out_dir)
    if target is None:
        sys.stdout.write(imported.text)
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(imported.text, encoding="utf-8")
        except OSError as exc:
            raise DiagnosticError(
                error("Cannot write the output", f"{target}: {exc.strerror or exc}.")
            ) from None
    stream = target is None  # the HCL is on stdout: the report goes to stderr
    if target is not None:
        echo(f"Wrote {out}.")
    if imported.notes:
        echo(f"\nNot carried over as it is ({len(imported.notes)}):", err=stream)
        for note in imported.notes:
            echo(f"  - {note.source}: {note.why}", err=stream)
    else:
        echo("Everything was carried over.", err=stream)
    if target is not None:
        echo("\nNext: tunectl validate, then tunectl plan.")


@import_app.command("nni", epilog=examples("tunectl import nni config.yml -o main.hcl"))
def nni(
    ctx: typer.Context, source: SourceArg, out: OutOpt = "main.hcl", force: ForceOpt = False
) -> None:
    """Import an NNI experiment (config.yml or .json, v2 format, with its search space)."""
    _write(ctx.parent or ctx, source, out, force, "nni")  # type: ignore[arg-type]


@import_app.command("pai", epilog=examples("tunectl import pai hpo-config.json -o main.hcl"))
def pai(
    ctx: typer.Context, source: SourceArg, out: OutOpt = "main.hcl", force: ForceOpt = False
) -> None:
    """Import a PAI AutoML experiment (its HpoExperimentConfig as JSON)."""
    _write(ctx.parent or ctx, source, out, force, "pai")  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
