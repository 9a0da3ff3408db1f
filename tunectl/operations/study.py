"""A real Optuna study rebuilt from an experiment's results: the one place that does it,
for `export` (into any Optuna storage), `dashboard` and `report`.

The study speaks the trial's language, not the sampler's: each parameter's distribution is
over the values the trial saw (a `choice` is a categorical of its values, not of indices;
a `normal` is a float between the values its sampler can reach), so Optuna's plots,
importances and optuna-dashboard show what users wrote. States map as the engine's do
(running and pending trials are RUNNING; a complete trial without a value is FAIL; a pruned
trial's value is its last intermediate value). An experiment with several objectives is
a multi-objective study (`directions`, one metric name per objective; a complete trial
holds its values, and `Study.best_trials` is the experiment's Pareto front). Each trial
carries user attributes naming it in tunectl: `tunectl_trial_id`, `tunectl_number`,
`model_uri`, `attempts`, `task_ids`, and every metric's value as `metric:NAME`; the study
carries the experiment's address.

The engine's own study (`tunectl.engine.search`) is a different thing: it holds the
sampler's internal values and bookkeeping so that sampling can resume, and is never shown.
"""

from __future__ import annotations

import datetime
import math
import warnings
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunectl.diags import DiagnosticError, error
from tunectl.engine.results import ExperimentResults, TrialResult
from tunectl.search.model import ParamSpec
from tunectl.search.params import NORMAL_EPS
from tunectl.search.space import internal_distribution, to_external
from tunectl.status import TrialStatus

optuna.logging.set_verbosity(optuna.logging.WARNING)

_STATES = {
    TrialStatus.COMPLETE: TrialState.COMPLETE,
    TrialStatus.PRUNED: TrialState.PRUNED,
    TrialStatus.FAILED: TrialState.FAIL,
    TrialStatus.RUNNING: TrialState.RUNNING,
    TrialStatus.PENDING: TrialState.RUNNING,
}
# Parameter types whose external value is the internal one.
_IDENTITY = ("randint", "uniform", "loguniform", "int", "float")


def external_distribution(p: ParamSpec) -> BaseDistribution:
    """The distribution of the values a trial sees for `p`."""
    kind, kw = internal_distribution(p)
    if kind == "categorical":
        return CategoricalDistribution([to_external(p, c) for c in kw["choices"]])
    if kind == "int":
        return IntDistribution(**kw)
    if p.type in _IDENTITY:
        return FloatDistribution(**kw)
    low, high = kw["low"], kw["high"]
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        low, high = NORMAL_EPS, 1 - NORMAL_EPS
    a, b = float(to_external(p, low)), float(to_external(p, high))
    low, high = min(a, b), max(a, b)
    log = bool(kw.get("log")) or p.type == "lognormal"
    return FloatDistribution(low, high, log=log and low > 0)


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        internal = dist.to_internal_repr(value)
    except (TypeError, ValueError):
        return False
    if isinstance(dist, CategoricalDistribution):
        return True
    assert isinstance(dist, IntDistribution | FloatDistribution)
    return not math.isnan(internal) and dist.low <= internal <= dist.high


def _when(ts: float | None) -> datetime.datetime | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts)


def frozen_trial(
    trial: TrialResult, dists: dict[str, BaseDistribution], width: int = 1
) -> FrozenTrial:
    """`trial` as an Optuna trial (not yet in a study) of `width` objectives."""
    params: dict[str, Any] = {}
    used: dict[str, BaseDistribution] = {}
    for name, value in trial.params.items():
        dist = dists.get(name)
        if dist is not None and value is not None and _contains(dist, value):
            params[name], used[name] = value, dist
    curve = {step: value for step, value in trial.curve if math.isfinite(value)}
    state = _STATES[trial.status]
    value = trial.value
    values = list(trial.values) if width > 1 and state == TrialState.COMPLETE else None
    if width > 1:  # several objectives: no single value, and a complete trial has them all
        value = None
        if state == TrialState.COMPLETE and (not values or len(values) != width):
            state, values = TrialState.FAIL, None
    elif state == TrialState.COMPLETE and value is None:
        state = TrialState.FAIL
    elif state == TrialState.PRUNED and value is None and curve:
        value = curve[max(curve)]
    elif state not in (TrialState.COMPLETE, TrialState.PRUNED):
        value = None
    attrs: dict[str, Any] = {
        "tunectl_trial_id": trial.id,
        "tunectl_number": trial.number,
        "model_uri": trial.model_uri,
        "attempts": trial.attempts,
        "task_ids": [t.id for t in trial.tasks],
    }
    attrs.update({f"metric:{k}": v for k, v in sorted(trial.metrics.items())})
    if trial.message:
        attrs["message"] = trial.message
    start = _when(trial.started_at or trial.created_at)
    end = _when(trial.finished_at) if state != TrialState.RUNNING else None
    if end is None and state != TrialState.RUNNING:
        end = start
    frozen = optuna.trial.create_trial(
        state=state,
        value=value,
        values=values,
        params=params,
        distributions=used,
        user_attrs=attrs,
        intermediate_values=curve,
    )
    frozen.datetime_start = start
    frozen.datetime_complete = end
    return frozen


def rebuild_study(
    results: ExperimentResults,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
) -> optuna.Study:
    """A study holding `results`' trials, in number order, in `storage` (default: memory).

    Raises a diagnostic when `storage` already has a study of that name.
    """
    dists = {p.name: external_distribution(p) for p in results.params}
    name = study_name or results.name
    directions = results.objective.directions
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=[
                StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE
                for d in directions
            ],
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise DiagnosticError(
            error(
                "Study already exists",
                f'The storage already has a study named "{name}". Choose another name with '
                "--study-name, or pass --overwrite to replace it.",
            )
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        names = results.objective.metric_names if results.multi else [results.objective_label]
        study.set_metric_names(names)
    study.set_user_attr("tunectl_address", results.address)
    study.set_user_attr("tunectl_generation", results.generation)
    study.set_user_attr("tunectl_status", results.status)
    study.add_trials([frozen_trial(t, dists, len(directions)) for t in results.trials])
    return study


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL: an RDB URL (`sqlite:///study.db`, any SQLAlchemy URL
    Optuna takes), or `journal:///PATH` / a path ending in `.log` for a journal file."""
    if url.startswith("journal://") or (url.endswith(".log") and "://" not in url):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal://") if url.startswith("journal://") else url
        if not path:
            raise DiagnosticError(
                error("Invalid --storage", "journal:// needs a file path: journal:///study.log")
            )
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(path))
        except OSError as exc:
            raise DiagnosticError(
                error("Cannot open the storage", f"Optuna could not open {path}: {exc.strerror}")
            ) from None
    if "://" not in url:
        raise DiagnosticError(
            error(
                "Invalid --storage",
                f'"{masked(url)}" is not a storage URL. Use sqlite:///study.db (any database URL '
                "Optuna takes) or journal:///study.log.",
            )
        )
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # noqa: BLE001
        # SQLAlchemy's own errors (unknown dialect, missing driver, a file it cannot
        # create): the URL is the user's to fix, and tunectl does not import SQLAlchemy.
        password = urlsplit(url).password
        reason = str(exc).replace(password, "***") if password else str(exc)
        raise DiagnosticError(
            error("Cannot open the storage", f"Optuna could not open {masked(url)}: {reason}")
        ) from None


def masked(url: str) -> str:
    """A storage URL as it may be printed: a password in it (`user:pw@host`) as `***`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def export(
    results: ExperimentResults, url: str, study_name: str | None, overwrite: bool
) -> optuna.Study:
    """`tunectl export`: write `results` as a study into the storage at `url`."""
    storage = open_storage(url)
    name = study_name or results.name
    if overwrite:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass
    return rebuild_study(results, storage, name)
