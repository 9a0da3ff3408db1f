"""Turning a task's output lines into metric values, and refusing what is not one.

Three line formats, checked in this order:

* `@tunectl {"step": 3, "metrics": {"val_acc": 0.91}}` — written by `tunectl.report`;
* each `metrics "stdout" { pattern = ... }` of the task: named groups name the metrics,
  a single unnamed group reports the block's `name` (default: the objective's metric);
* with no stdout pattern configured, Katib's default `NAME=VALUE` for the objective's
  metrics only (other `x=y` text in a log is not mistaken for a metric).

Pattern matches carry no step; each match of a metric is its next step (1, 2, ...), as
Katib counts them. JSON / JSON-lines files (`metrics "json"`) hold either the report's
`{"step", "metrics"}` objects or flat `{"step": 3, "val_acc": 0.91}` objects.

What a value may be (SPEC §6 "Metric values"):

* a step is an integer in [0, 2^63) (an integral JSON float such as `3.0` counts);
  anything else — `1.5`, `-1`, `1e30`, `Infinity`, `true` — makes the line malformed;
* a metric value is a number; NaN and ±infinity (also `1e999`, which overflows to
  infinity) are returned as samples all the same: the engine fails the trial on them,
  naming the metric, as Optuna fails a trial whose objective is NaN;
* a malformed line (bad JSON, a bad step, a value that is not a number) is skipped and
  yields a warning; it never raises.

Over-long lines: a provider hands out a line longer than its read bound in pieces
(`LogChunk.partial`). The parser keeps a bounded tail of such a line between pieces, so a
`NAME=VALUE` split across two pieces is still found, in memory that does not grow with
the line. A report (`@tunectl`) or JSON line that long is skipped with a warning.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tunectl.config.model import MetricsSource

REPORT_PREFIX = "@tunectl "
MAX_STEP = 1 << 63  # exclusive; what a SQLite INTEGER holds
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:nan|inf(?:inity)?)"
# An over-long line is scanned in pieces: this much of its end is carried into the next
# piece, and a match ending in the last _SETTLE characters waits for that next piece (it
# may continue there). So a match is missed only if it is longer than _CARRY - _SETTLE.
_CARRY = 64 << 10
_SETTLE = 32 << 10
_EXCERPT = 100  # characters of a skipped line quoted in its warning


@dataclass(frozen=True)
class Sample:
    """One reported value. `value` may be NaN or infinite: the engine fails the trial."""

    name: str
    step: int | None
    value: float


@dataclass
class Parsed:
    """What a batch of lines held: samples in order, and one warning per skipped line."""

    samples: list[Sample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Malformed(ValueError):
    """A line that reports nothing usable; the message says why, for the user."""


def _excerpt(line: str) -> str:
    line = line.strip()
    return line if len(line) <= _EXCERPT else line[: _EXCERPT - 3] + "..."


def check_step(raw: object) -> int | None:
    """The step a report gives, or None for none. Raises `Malformed` on a bad step."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Malformed(f"step {json.dumps(raw)} is not an integer")
    if isinstance(raw, float) and not raw.is_integer():
        raise Malformed(f"step {_number_text(raw)} is not an integer")
    if not 0 <= raw < MAX_STEP:
        raise Malformed(f"step {_number_text(raw)} is outside [0, 2^63)")
    return int(raw)


def _number_text(value: float | int) -> str:
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 24 else f"{text[:8]}...({len(text)} digits)"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _metric_value(name: str, raw: object) -> float:
    """A JSON metric value as a float (NaN/inf kept). Raises `Malformed` if not a number."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Malformed(f'metric "{name}" is {json.dumps(raw)[:40]}, not a number')
    try:
        return float(raw)
    except OverflowError:  # an integer beyond a float's range: infinite for our purposes
        return math.inf if raw > 0 else -math.inf


def samples_of_object(obj: object) -> list[Sample]:
    """The samples of one report / JSON-lines object. Raises `Malformed` on a bad one.

    In the report form every entry of `"metrics"` must be a number; in the flat form the
    number-valued keys (other than `step`, `ts`, `time`) are the metrics and other values
    (strings, lists, ...) are ignored, since such files often carry labels too.
    """
    if not isinstance(obj, dict):
        raise Malformed("not a JSON object")
    step = check_step(obj.get("step"))
    metrics = obj.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise Malformed('"metrics" is not an object')
        return [Sample(str(k), step, _metric_value(str(k), v)) for k, v in metrics.items()]
    return [
        Sample(str(k), step, _metric_value(str(k), v))
        for k, v in obj.items()
        if k not in ("step", "ts", "time")
        and isinstance(v, int | float)
        and not isinstance(v, bool)
    ]


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Malformed(f"not valid JSON ({exc.args[0].split(':')[0]})") from None
    except RecursionError:
        raise Malformed("not valid JSON (nested too deeply)") from None


def report_line_problem(line: str) -> str | None:
    """Why tunectl skips this `@tunectl` line, or None (a good line, or not a report)."""
    if not line.startswith(REPORT_PREFIX):
        return None
    try:
        samples_of_object(_loads(line[len(REPORT_PREFIX) :]))
    except Malformed as exc:
        return str(exc)
    return None


def _skipped(what: str, line: str, why: str) -> str:
    return f"skipped a malformed {what}: {why}: {_excerpt(line)}"


@dataclass
class MetricsParser:
    """Stateful per task attempt: numbers pattern matches by count, carries long lines.

    `feed` takes the lines of one `LogChunk` in order; `partial` says the last one is
    unfinished (its rest comes first in the next call).
    """

    sources: Sequence[MetricsSource]
    objective_metrics: Sequence[str]
    _counts: dict[str, int] = field(default_factory=dict)
    _patterns: list[tuple[re.Pattern[str], str | None]] = field(default_factory=list)
    # The unfinished line: its kept tail, how much of that tail was already scanned, and
    # whether the line is being skipped (an over-long report line).
    _carry: str | None = None
    _done: int = 0
    _skipping: bool = False
    _warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        default_name = self.objective_metrics[0] if len(self.objective_metrics) == 1 else None
        for src in self.sources:
            if src.kind == "stdout" and src.get("pattern"):
                self._patterns.append(
                    (re.compile(src.get("pattern")), src.get("name", default_name))
                )
        if not self._patterns and self.objective_metrics:
            names = "|".join(re.escape(m) for m in self.objective_metrics)
            self._patterns.append(
                (re.compile(rf"(?<![\w.-])(?P<name>{names})\s*[=:]\s*(?P<value>{_NUMBER})"), None)
            )

    def continue_steps(self, counts: dict[str, int]) -> None:
        """Continue numbering pattern matches after `counts` (a resumed task attempt)."""
        self._counts.update(counts)

    def _next_step(self, name: str) -> int:
        self._counts[name] = self._counts.get(name, 0) + 1
        return self._counts[name]

    def feed(self, lines: Iterable[str], partial: bool = False) -> list[Sample]:
        """The samples of `lines`, in order; skipped lines' warnings go to `take_warnings`."""
        out = Parsed(warnings=self._warnings)
        batch = list(lines)
        for i, line in enumerate(batch):
            last = i == len(batch) - 1
            if self._carry is not None or (partial and last):
                self._piece(line, partial and last, out)
            else:
                self._line(line, out)
        return out.samples

    def take_warnings(self) -> list[str]:
        """The warnings of lines skipped since the last call."""
        taken, self._warnings = self._warnings, []
        return taken

    def _line(self, line: str, out: Parsed) -> None:
        if line.startswith(REPORT_PREFIX):
            try:
                out.samples.extend(samples_of_object(_loads(line[len(REPORT_PREFIX) :])))
            except Malformed as exc:
                out.warnings.append(_skipped("report line", line, str(exc)))
            return
        for pattern, name in self._patterns:
            for match in pattern.finditer(line):
                self._samples(match, name, out)

    def _piece(self, piece: str, unfinished: bool, out: Parsed) -> None:
        """A piece of an over-long line: scan it with the carried tail, in bounded memory."""
        if self._carry is None:  # the line starts here
            self._carry, self._done = "", 0
            self._skipping = piece.startswith(REPORT_PREFIX)
            if self._skipping:
                out.warnings.append(
                    _skipped("report line", piece, "the line is too long to be a report")
                )
        if self._skipping:
            if not unfinished:
                self._carry = None
            return
        text = self._carry + piece
        limit = len(text) - _SETTLE if unfinished else len(text)
        for pattern, name in self._patterns:
            for match in pattern.finditer(text):
                if self._done < match.end() <= limit:
                    self._samples(match, name, out)
        if unfinished:
            cut = max(0, len(text) - _CARRY)
            self._carry = text[cut:]
            self._done = max(0, limit - cut)
        else:
            self._carry = None

    def _samples(self, match: re.Match[str], name: str | None, out: Parsed) -> None:
        groups = match.groupdict()
        if "name" in groups and "value" in groups:
            found = [(groups["name"], groups["value"])]
        elif groups:
            found = [(metric, raw) for metric, raw in groups.items() if raw is not None]
        elif name is not None and match.groups():
            found = [(name, match.group(1))]
        else:
            return
        for metric, raw in found:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                why = f'"{raw}" for "{metric}" is not a number'
                out.warnings.append(_skipped("metric value", match.group(0), why))
                continue
            out.samples.append(Sample(metric, self._next_step(metric), value))


@dataclass
class JsonLinesParser:
    """Stateful per file and task attempt: JSON objects, one a line; blank lines ignored."""

    _skipping: bool = False  # inside a line too long to be read whole
    _warnings: list[str] = field(default_factory=list)

    def feed(self, lines: Iterable[str], partial: bool = False) -> list[Sample]:
        """The samples of `lines`, in order; skipped lines' warnings go to `take_warnings`."""
        out = Parsed(warnings=self._warnings)
        batch = list(lines)
        for i, line in enumerate(batch):
            unfinished = partial and i == len(batch) - 1
            if self._skipping or unfinished:
                if not self._skipping:
                    out.warnings.append(
                        _skipped("JSON line", line, "the line is too long to be read")
                    )
                self._skipping = unfinished
                continue
            if not line.strip():
                continue
            try:
                out.samples.extend(samples_of_object(_loads(line)))
            except Malformed as exc:
                out.warnings.append(_skipped("JSON line", line, str(exc)))
        return out.samples

    def take_warnings(self) -> list[str]:
        """The warnings of lines skipped since the last call."""
        taken, self._warnings = self._warnings, []
        return taken


class TableRowsParser(JsonLinesParser):
    """The rows a `metrics "table"` query returned (`Provider.read_metrics` of
    `MetricSource.TABLE`), one a line: a JSON object (as in a JSON-lines file, with an
    optional `step`), or `name=value` pairs separated by blanks, tabs or commas, where a
    `step=N` pair gives the row's step. Without a step a row's values are final values."""

    def feed(self, lines: Iterable[str], partial: bool = False) -> list[Sample]:
        batch = list(lines)
        out: list[Sample] = []
        for i, line in enumerate(batch):
            unfinished = partial and i == len(batch) - 1
            if line.lstrip().startswith("{") or unfinished or not line.strip():
                out.extend(super().feed([line], unfinished))
                continue
            try:
                out.extend(_row_samples(line))
            except Malformed as exc:
                self._warnings.append(_skipped("table row", line, str(exc)))
        return out


class EventLinesParser(JsonLinesParser):
    """The scalars of a `metrics "tensorboard"` event directory, as a provider serves them
    (`MetricSource.EVENTS`, `tunectl.providers.events`): JSON lines, each a metric named by
    its tag. With `tags`, only those tags are metrics; other scalars are left out."""

    def __init__(self, tags: Iterable[str] = ()) -> None:
        super().__init__()
        self.tags = frozenset(tags)

    def feed(self, lines: Iterable[str], partial: bool = False) -> list[Sample]:
        samples = super().feed(lines, partial)
        return [s for s in samples if not self.tags or s.name in self.tags]


def _row_samples(line: str) -> list[Sample]:
    """The samples of one `name=value ...` row. Raises `Malformed` on a bad one."""
    pairs: dict[str, object] = {}
    for piece in re.split(r"[\s,]+", line.strip()):
        name, eq, text = piece.partition("=")
        if not eq or not name:
            raise Malformed(f"{json.dumps(piece)[:40]} is not name=value")
        try:
            value: object = int(text) if name == "step" and text.isdigit() else float(text)
        except ValueError:
            raise Malformed(f'metric "{name}" is {json.dumps(text)[:40]}, not a number') from None
        pairs[name] = value
    return samples_of_object(pairs)


def parse_json_lines(lines: Iterable[str]) -> list[Sample]:
    """The samples of complete JSON lines, malformed ones left out (for one-off reads)."""
    return JsonLinesParser().feed(lines)
