"""What an import returns, and the notes it collects on the way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from tunectl.diags import DiagnosticError, SourceRange, error
from tunectl.durations import parse_duration


@dataclass(frozen=True)
class Note:
    """One setting of the source that was not carried over as it is: where, and why."""

    source: str  # the setting, as the source names it: `tuner.classArgs.utility`
    why: str  # a sentence: what tunectl does instead, or why nothing


@dataclass
class Imported:
    """The HCL of an imported experiment, and what could not be mapped."""

    text: str
    notes: list[Note] = field(default_factory=list)


class Notes(list[Note]):
    def add(self, source: str, why: str) -> None:
        self.append(Note(source, why))


def fail(summary: str, detail: str, path: Path | None = None, line: int | None = None) -> NoReturn:
    """Raise one error diagnostic about the imported file."""
    where = SourceRange(path.name, line) if path is not None and line else None
    raise DiagnosticError(error(summary, detail, where))


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return fail(f"Missing {what}", f"{path} does not exist. Check the path.")
    except IsADirectoryError:
        return fail(f"Unreadable {what}", f"{path} is a directory, not a file.")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return fail(f"Unreadable {what}", f"Cannot read {path}: {reason}.")


def load_json(text: str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return fail(
            f"Malformed {what}",
            f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
            path,
            exc.lineno,
        )


def load_yaml(text: str, path: Path, what: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" (line {line}, column {mark.column + 1})" if mark is not None else ""
        return fail(
            f"Malformed {what}", f"{path.name} is not valid YAML: {problem}{at}.", path, line
        )


def load_mapping(path: Path, what: str) -> dict[str, Any]:
    """A JSON (`.json`) or YAML file that must hold a mapping."""
    text = read_text(path, what)
    data = load_json(text, path, what) if path.suffix == ".json" else load_yaml(text, path, what)
    if not isinstance(data, dict):
        fail(
            f"Malformed {what}",
            f"{path.name} must hold a mapping of settings, not {type(data).__name__}.",
            path,
        )
    return data


def duration(value: Any, field: str) -> str:
    """NNI's duration (`1h`, `0.5h`, `10m`, or seconds) as tunectl writes one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value}s"  # NNI reads a bare number as seconds
    text = str(value).strip().replace(" ", "")
    try:
        parse_duration(text)
    except ValueError:
        fail("Invalid duration", f"{field} is {value!r}: write a duration such as 30m or 2h.")
    return text
