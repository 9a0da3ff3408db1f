"""`tunectl.report`: how trial code reports metrics to tunectl.

Trial code calls::

    import tunectl

    tunectl.report(step=epoch, val_acc=0.91, loss=0.27)

This module uses the standard library only: it is imported inside trials, on machines
where tunectl's own dependencies may be missing, and must import in a few milliseconds.

The line format (a contract: ``tunectl.engine.metrics`` and every provider parse it)
--------------------------------------------------------------------------------

Each call writes exactly one line to standard output and flushes it::

    @tunectl {"metrics":{"loss":0.27,"val_acc":0.91},"step":3}

* The prefix is ``@tunectl`` followed by one space, at the very start of the line.
* The rest of the line is one JSON object, written with compact separators and sorted
  keys, with exactly two keys:

  - ``"metrics"``: an object mapping each metric name (a Python identifier) to a finite
    number, always written as a JSON float (``1`` is written ``1.0``);
  - ``"step"``: a non-negative integer, or ``null`` when the call gave no step.

Standard output is used because it is the one channel every provider can read (a local
process's log, a PAI-DLC pod's log). Write nothing without a newline right before
calling ``report``: the line is only recognised when the prefix starts it.

When the environment variable ``TUNECTL_METRICS_FILE`` is set, the same JSON object
(without the prefix) is also appended as one line to that file (a path relative to the
trial's working directory is relative to it; its directory is created when missing).
The file is opened, appended to and closed on every call, so a reader never sees a line
half written by an earlier call.

Invalid input raises ``ValueError`` before anything is written: a metric value that is
not a finite number (``bool``, ``str``, ``nan`` and ``inf`` are refused; NumPy and other
scalars that convert with ``float()`` are accepted), a metric name that is not an
identifier, a step that is not a non-negative integer, or a call without any metric.

Calls are thread-safe: lines written by concurrent calls never interleave.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading

__all__ = ["METRICS_FILE_ENV", "PREFIX", "report"]

PREFIX = "@tunectl "
METRICS_FILE_ENV = "TUNECTL_METRICS_FILE"

_lock = threading.Lock()


def _step(step: object) -> int | None:
    if step is None:
        return None
    if _is_bool(step):
        raise ValueError(f"tunectl.report: step must be a non-negative integer, not {step!r}.")
    try:
        index = step.__index__()  # type: ignore[attr-defined]  # int, numpy integers
    except (AttributeError, TypeError):
        raise ValueError(
            f"tunectl.report: step must be a non-negative integer, not {step!r}."
        ) from None
    if index < 0:
        raise ValueError(f"tunectl.report: step must be a non-negative integer, not {index}.")
    return int(index)


def _is_bool(value: object) -> bool:
    # numpy.bool_ is not a subclass of bool; its type is named "bool_" (NumPy 1) or "bool".
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def _value(name: str, value: object) -> float:
    if _is_bool(value) or isinstance(value, str | bytes | bytearray):
        raise ValueError(f"tunectl.report: metric {name!r} must be a finite number, not {value!r}.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"tunectl.report: metric {name!r} must be a finite number, not {value!r}."
        ) from None
    if not math.isfinite(number):
        raise ValueError(
            f"tunectl.report: metric {name!r} must be a finite number, not {number!r}; "
            "report only finite values."
        )
    return number


def report(step: int | None = None, **metrics: float) -> None:
    """Report metric values of this trial, optionally at a step (an epoch, an iteration).

    Writes one ``@tunectl {...}`` line to standard output (see the module docstring for
    the format) and, when ``TUNECTL_METRICS_FILE`` is set, appends the JSON object to that
    file. Raises ``ValueError`` on a name that is not an identifier, a value that is not a
    finite number, a step that is not a non-negative integer, or no metric at all.
    """
    checked_step = _step(step)
    if not metrics:
        raise ValueError(
            "tunectl.report: give at least one metric, e.g. tunectl.report(step=1, val_acc=0.9)."
        )
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"tunectl.report: metric name {name!r} is not a valid identifier; "
                "use letters, digits and underscores, not starting with a digit."
            )
        values[name] = _value(name, value)
    payload = json.dumps(
        {"metrics": values, "step": checked_step}, separators=(",", ":"), sort_keys=True
    )
    path = os.environ.get(METRICS_FILE_ENV)
    with _lock:
        out = sys.stdout
        if out is not None:
            out.write(PREFIX + payload + "\n")
            out.flush()
        if path:
            folder = os.path.dirname(path)
            if folder:  # a per-trial path such as metrics/<trial id>.jsonl
                os.makedirs(folder, exist_ok=True)
            with open(path, "a", encoding="utf-8") as file:
                file.write(payload + "\n")
