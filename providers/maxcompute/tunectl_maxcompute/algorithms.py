"""The emulator's PAI algorithms: a small registry of fake `pai -name ...` commands.

Each takes the XFlow parameters (the `-D` values, as strings) and works on the project's
tables and models; a bad or missing parameter fails the task with an `ODPS-12...` error as
AlgoTask errors do. Their quality depends on their parameters in a smooth, known way, so a
tuner has something to find:

- `xgboost` (inputTableName, modelName, eta, max_depth, num_round, ...) trains a model;
- `LogisticRegression` (inputTableName, modelName, regularizedLevel, maxIter, ...) trains one;
- `evaluate` (modelName, inputTableName, outputTableName) writes one row `auc`, `f1` into
  the output table;
- `echo` (output, seconds, exit_code) runs `seconds`, then gives `output` as its result
  (its error text when `exit_code` is not 0): a task whose run is scripted, for tests.

An algorithm returns its result text (or None); `DURATIONS` says how long one runs when
its parameters say so (else the emulator's `algo_seconds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from tunectl_maxcompute.sql import Database, SqlError


class AlgoError(Exception):
    """The algorithm failed; the message is the task's error text."""


@dataclass
class Models:
    """Trained models by name (`project/offlinemodels/name`): their quality in [0, 1]."""

    quality: dict[str, float] = field(default_factory=dict)


Algorithm = Callable[[Database, Models, dict[str, str]], str | None]


def _param(params: dict[str, str], key: str, default: float | None = None) -> float:
    value = params.get(key)
    if value is None:
        if default is None:
            raise AlgoError(f"ODPS-1230002:Missing parameter - {key} is required")
        return default
    try:
        return float(value)
    except ValueError:
        raise AlgoError(
            f"ODPS-1230003:Invalid parameter - {key}={value!r} is not a number"
        ) from None


def _require(params: dict[str, str], key: str) -> str:
    value = params.get(key)
    if not value:
        raise AlgoError(f"ODPS-1230002:Missing parameter - {key} is required")
    return value


def _input(db: Database, params: dict[str, str]) -> int:
    table = _require(params, "inputTableName")
    try:
        return db.count(table)
    except SqlError as exc:
        raise AlgoError(str(exc).replace("ODPS-0130131", "ODPS-1230131")) from None


def xgboost(db: Database, models: Models, params: dict[str, str]) -> None:
    rows = _input(db, params)
    eta = _param(params, "eta", 0.3)
    depth = _param(params, "max_depth", 6)
    rounds = _param(params, "num_round", 10)
    if not 0 < eta <= 1 or depth < 1 or rounds < 1:
        raise AlgoError("ODPS-1230003:Invalid parameter - eta in (0, 1], max_depth, num_round >= 1")
    quality = 0.95 - 2.0 * (math.log10(eta) + 1) ** 2 * 0.05 - 0.004 * (depth - 6) ** 2
    quality -= 0.1 / math.sqrt(rounds) + (0.05 if rows == 0 else 0.0)
    models.quality[_require(params, "modelName")] = max(0.5, min(0.99, quality))


def logistic_regression(db: Database, models: Models, params: dict[str, str]) -> None:
    _input(db, params)
    level = _param(params, "regularizedLevel", 1.0)
    iters = _param(params, "maxIter", 100)
    if level < 0 or iters < 1:
        raise AlgoError("ODPS-1230003:Invalid parameter - regularizedLevel >= 0, maxIter >= 1")
    quality = 0.85 - 0.03 * math.log10(max(level, 1e-6) / 0.5) ** 2 - 3.0 / (iters + 10)
    models.quality[_require(params, "modelName")] = max(0.5, min(0.99, quality))


def evaluate(db: Database, models: Models, params: dict[str, str]) -> None:
    model = _require(params, "modelName")
    if model not in models.quality:
        raise AlgoError(f"ODPS-1230131:Model not found - {model}")
    _input(db, params)
    auc = models.quality[model]
    f1 = max(0.0, 2 * auc - 1.05)
    db.write(
        _require(params, "outputTableName"),
        [("auc", "double"), ("f1", "double")],
        [(round(auc, 6), round(f1, 6))],
    )


def echo(db: Database, models: Models, params: dict[str, str]) -> str:
    output = params.get("output", "")
    if _param(params, "exit_code", 0):
        raise AlgoError(output)
    return output


REGISTRY: dict[str, Algorithm] = {
    "xgboost": xgboost,
    "LogisticRegression": logistic_regression,
    "evaluate": evaluate,
    "echo": echo,
}
DURATIONS: dict[str, Callable[[dict[str, str]], float]] = {
    "echo": lambda params: _param(params, "seconds", 0.0),
}
