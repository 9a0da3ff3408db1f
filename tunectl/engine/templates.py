"""Rendering a trial's `template` files before its first task starts.

The rules (what a template may hold, how each `format` writes a value) are
`tunectl.config.templates`'; this module applies them to one trial's values. A file is
written whole (a temporary file renamed over it), so a task adopted after a crash, whose
file is rendered again with the same values, never sees it half-written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunectl.config.model import FileTemplate
from tunectl.config.templates import parse
from tunectl.diags import DiagnosticError, error
from tunectl.engine.trials import Placeholders
from tunectl.private_files import write_atomic


def render_text(tpl: FileTemplate, placeholders: Placeholders) -> str:
    """The template's text with each placeholder replaced by its value, written as its
    `format` says. Raises `DiagnosticError` for a value `text` cannot hold."""
    out: list[str] = []
    for part in parse(tpl.text):
        if isinstance(part, str):
            out.append(part)
            continue
        path = (part[0], part[1])
        out.append(_written(tpl, path, placeholders))
    return "".join(out)


def _written(tpl: FileTemplate, path: tuple[str, str], placeholders: Placeholders) -> str:
    if tpl.format == "json":
        value: Any = placeholders.values.get(path)
        if isinstance(value, float):
            return _float_literal(value)
        return json.dumps(value, ensure_ascii=False) if value is not None else "null"
    text = placeholders.resolve(path)
    if any(c in text for c in "\n\r\0"):
        raise DiagnosticError(
            error(
                "Unsafe placeholder value",
                f"Trial {placeholders.number}: the value of {path[0]}.{path[1]} holds a line "
                f'break or NUL, which template "{tpl.source}" (format = "text") cannot '
                'hold as one value. Use format = "json", or change the parameter\'s values.',
            )
        )
    return text


def _float_literal(value: float) -> str:
    """A float as JSON writes it, with a `.` in its mantissa (`1.0e-05`, not `1e-05`),
    which YAML 1.1 readers (PyYAML) need to read it as a number."""
    text = json.dumps(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def render_templates(
    templates: Sequence[FileTemplate], placeholders: Placeholders, workdir: Path
) -> None:
    """Write each template's file for one trial; a relative destination is relative to
    the trial's (first task's) working directory."""
    for tpl in templates:
        dest = Path(placeholders.render_path(tpl.destination))
        dest = dest if dest.is_absolute() else workdir / dest
        text = render_text(tpl, placeholders)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, text)
        except OSError as exc:
            raise DiagnosticError(
                error(
                    "Cannot render template",
                    f'Trial {placeholders.number}: template "{tpl.source}" cannot be written '
                    f"to {dest}: {exc.strerror or exc}.",
                )
            ) from None
