"""Turning a task's output lines into metric values.

Three line formats, checked in this order:

* `@tunectl {"step": 3, "metrics": {"val_acc": 0.91}}` — written by `tunectl.report`;
* each `metrics "stdout" { pattern = ... }` of the task: named groups name the metrics,
  a single unnamed group reports the block's `name` (default: the objective's metric);
* with no stdout pattern configured, Katib's default `NAME=VALUE` for the objective's
  metrics only (other `x=y` text in a log is not mistaken for a metric).

Pattern matches carry no step; each match of a metric is its next step (1, 2, ...), as
Katib counts them. JSON / JSON-lines files (`metrics "json"`) hold either the report's
`{"step", "metrics"}` objects or flat `{"step": 3, "val_acc": 0.91}` objects.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tunectl.config.model import MetricsSource

REPORT_PREFIX = "@tunectl "
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf)"


@dataclass(frozen=True)
class Sample:
    name: str
    step: int | None
    value: float


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_json_object(obj: object) -> list[Sample]:
    if not isinstance(obj, dict):
        return []
    step = obj.get("step")
    step = int(step) if isinstance(step, int | float) and not isinstance(step, bool) else None
    metrics = obj.get("metrics")
    if not isinstance(metrics, dict):
        metrics = {k: v for k, v in obj.items() if k not in ("step", "ts", "time")}
    out = []
    for name, raw in metrics.items():
        value = _finite(raw)
        if value is not None and not isinstance(raw, bool):
            out.append(Sample(str(name), step, value))
    return out


@dataclass
class MetricsParser:
    """Stateful per task attempt: counts pattern matches to number their steps."""

    sources: Sequence[MetricsSource]
    objective_metrics: Sequence[str]
    _counts: dict[str, int] = field(default_factory=dict)
    _patterns: list[tuple[re.Pattern[str], str | None]] = field(default_factory=list)

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

    def _next_step(self, name: str) -> int:
        self._counts[name] = self._counts.get(name, 0) + 1
        return self._counts[name]

    def feed(self, lines: Iterable[str]) -> list[Sample]:
        out: list[Sample] = []
        for line in lines:
            if line.startswith(REPORT_PREFIX):
                try:
                    out.extend(_from_json_object(json.loads(line[len(REPORT_PREFIX) :])))
                except ValueError:
                    pass
                continue
            for pattern, name in self._patterns:
                for match in pattern.finditer(line):
                    out.extend(self._samples(match, name))
        return out

    def _samples(self, match: re.Match[str], name: str | None) -> list[Sample]:
        groups = match.groupdict()
        if "name" in groups and "value" in groups:
            value = _finite(groups["value"])
            metric = groups["name"]
            return [Sample(metric, self._next_step(metric), value)] if value is not None else []
        if groups:
            found = []
            for metric, raw in groups.items():
                value = _finite(raw)
                if value is not None:
                    found.append(Sample(metric, self._next_step(metric), value))
            return found
        if name is None or not match.groups():
            return []
        value = _finite(match.group(1))
        return [Sample(name, self._next_step(name), value)] if value is not None else []


def parse_json_lines(lines: Iterable[str]) -> list[Sample]:
    out: list[Sample] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            out.extend(_from_json_object(json.loads(line)))
        except ValueError:
            continue
    return out
