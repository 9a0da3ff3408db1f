"""Plan: refresh, then diff the configuration against the state (`tunectl.plans`), and
add what only a session knows — unknown `--target`s, the providers' capacity, the cost
of the trials still to run, the digest a saved plan is checked against."""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.config import sensitive
from tunectl.diags import DiagnosticError
from tunectl.engine.costs import configured_rates, most_per_trial, spend
from tunectl.engine.models import ModelStore, stored_usage
from tunectl.operations.outputs import direction
from tunectl.operations.refresh import refresh
from tunectl.operations.session import Session
from tunectl.operations.warm import as_finished, complete_trials
from tunectl.plans.change import Action, Drift, Plan
from tunectl.plans.differ import DiffOptions, StateView, make_plan
from tunectl.providers import registry
from tunectl.search.stopping import Progress, time_used
from tunectl.states import ExperimentRecord, State
from tunectl.states.backend import storage_call
from tunectl.status import ExperimentStatus


def refresh_and_plan(session: Session, state: State, options: DiffOptions) -> Plan:
    """What `tunectl plan` shows: drift from a refresh, then the plan."""
    return plan(session, state, options, refresh(session, state))


def plan(session: Session, state: State, options: DiffOptions, drift: Sequence[Drift] = ()) -> Plan:
    from tunectl.search.space import space_size

    config = session.config
    models = session.models()
    _scrub(session, state)
    views = state_views(state, models)
    _price_spend(session, state, views)

    def replace_keys(provider: str) -> tuple[str, ...]:
        try:
            return registry.load(provider).replace_on_change
        except (KeyError, registry.ProviderLoadError):
            return ()

    result = make_plan(
        config,
        views,
        options,
        replace_keys=replace_keys,
        space_size=lambda exp: space_size(exp.algorithm, exp.params),
        drift=drift,
        storage_name=models.describe(),
        salt=state.salt,
        finished=lambda name: as_finished(complete_trials(state, name)),
    )
    _rerun_trials(state, result, options)
    _bound_by_capacity(session, result)
    _estimate_costs(session, state, result)
    result.lineage, result.serial = state.lineage, state.serial
    result.config_digest = digest(session, state)
    result.variables = {k: v for k, v in config.values.items() if not config.variables[k].sensitive}
    return result


def stored_progress(state: State, record: ExperimentRecord, now: float) -> Progress:
    """An experiment's `Progress` from the state's aggregates: the same figures
    `compute_progress` gives on its trials (tests/operations), without reading every trial,
    so that planning a large state stays fast."""
    counts = state.trial_counts(record.name)
    best = state.best_trial(record.name, direction(record.config))
    return Progress(
        complete=counts.get("complete", 0),
        pruned=counts.get("pruned", 0),
        failed=counts.get("failed", 0),
        running=counts.get("running", 0) + counts.get("pending", 0),
        best_value=best.value if best else None,
        since_best=state.count_ended_after(record.name, best.number) if best else 0,
        elapsed=time_used(record.elapsed, record.clock_since, now),
        asked=sum(counts.values()),
    )


def state_views(state: State, models: ModelStore) -> dict[str, StateView]:
    """Each experiment in the state as the differ compares it."""
    views = {}
    for record in state.list_experiments():
        progress = stored_progress(state, record, time.time())
        stored, size = storage_call(functools.partial(stored_usage, state, models, record.name))
        views[record.name] = StateView(
            name=record.name,
            config=record.config,
            status=record.status,
            progress=progress,
            models=stored,
            model_bytes=size,
            running_trials=progress.running,
            stop_reason=record.stop_reason,
        )
    return views


def digest(session: Session, state: State) -> str:
    """What a saved plan records of the configuration and the variable values: the plain
    digest of the files and non-sensitive values, and an HMAC of the sensitive values
    keyed by the state's salt. Apply recomputes it from the values given again (--var,
    TUNECTL_VAR_*), so a changed secret makes the plan stale without the plan file
    holding anything that reveals it."""
    config = session.config
    secret = config.sensitive_values
    if not secret:
        return config.digest
    return config.digest + "+" + sensitive.digest(secret, state.salt)


def config_hash(data: Mapping[str, Any]) -> str:
    """The hash an experiment record keeps of its canonical configuration."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _scrub(session: Session, state: State) -> None:
    """Replace sensitive values the state holds in clear by their markers.

    A state written by an older tunectl, or before a variable was declared sensitive,
    has them in its copy of the experiment. Hidden as if stored that way, an unchanged
    secret is no change, and no plan shows the old value."""
    salt = state.salt
    for record in state.list_experiments():
        exp = session.config.experiments.get(record.name)
        if exp is None or not exp.sensitive:
            continue
        hidden = sensitive.hide_paths(copy.deepcopy(record.config), exp.sensitive, salt)
        if hidden != record.config:
            record.config, record.config_hash = hidden, config_hash(hidden)
            state.put_experiment(record)


def _bound_by_capacity(session: Session, plan: Plan) -> None:
    """Trials run at once: `max_concurrent`, bounded by the provider's capacity (local
    `slots`), as apply bounds them (SPEC "Budget")."""
    for change in plan.changes:
        exp = session.config.experiments.get(change.name)
        if change.intent is None or exp is None:
            continue
        try:
            limit = session.provider(exp.trial.provider).capacity()
        except (DiagnosticError, registry.ProviderLoadError):
            continue
        if limit is not None and limit < change.intent.max_concurrent:
            change.intent = dataclasses.replace(change.intent, max_concurrent=limit)


def _estimate_costs(session: Session, state: State, plan: Plan) -> None:
    """Where the provider knows prices: what the trials still to run may cost, at most,
    and with `max_cost`, what the experiment has spent (`tunectl.engine.costs`).

    Each trial is priced for its longest possible run (`max_running_time` or the
    task's `timeout`); without either there is no estimate.
    """
    now = time.time()
    for change in plan.changes:
        exp = session.config.experiments.get(change.name)
        if change.intent is None or exp is None:
            continue
        try:
            cls = registry.load(exp.trial.provider)
        except (KeyError, registry.ProviderLoadError):
            continue
        rates = configured_rates(exp, session.config.providers)
        if rates is None or not (cls.capabilities.price or exp.max_cost is not None):
            continue
        block = session.config.providers.get(exp.trial.provider)
        currency = str((block.settings if block else {}).get("currency") or "")
        per_trial = most_per_trial(exp, rates) if change.intent.to_run else None
        intent = change.intent
        if per_trial is not None:
            intent = dataclasses.replace(
                intent, estimated_cost=per_trial * intent.to_run, currency=currency
            )
        if exp.max_cost is not None:
            record = state.get_experiment(change.name)
            spent = 0.0
            if record is not None and change.action is not Action.REPLACE:
                spent = spend(state, record.name, record.generation, rates, now)
            intent = dataclasses.replace(
                intent, max_cost=exp.max_cost, spent=spent, currency=currency
            )
        change.intent = intent


def _rerun_trials(state: State, plan: Plan, options: DiffOptions) -> None:
    """`--replace experiment.X.trial[N]`: the trial runs again (`tunectl.engine.rerun`).
    It must be an ended trial of an experiment the plan keeps; the intent counts it as
    running again, so apply follows the experiment until it has ended."""
    from tunectl.addrs import Address, parse_address
    from tunectl.diags import error

    changes = {c.name: c for c in plan.changes}
    for text in options.replace:
        try:
            found = parse_address(text, flag="--replace")
        except DiagnosticError:
            continue  # the differ reported it
        change = changes.get(found.experiment)
        if found.trial is None or change is None or change.intent is None:
            continue
        address = str(found)
        trial = None
        if change.action in (Action.UPDATE, Action.NOOP):
            trial = state.get_trial(found.experiment, found.trial)
        if trial is None or not trial.status.ended:
            if change.action not in (Action.UPDATE, Action.NOOP):
                done_to = "replaced" if change.action is Action.REPLACE else "not in the state"
                what = f"{Address(found.experiment)} is {done_to}"
            elif trial is None:
                what = "it is not in the state"
            else:
                what = f"it is {trial.status.value}: only an ended trial runs again"
            plan.errors.append(error("Invalid --replace address", f"--replace {address}: {what}."))
            continue
        if found.trial in change.intent.rerun:
            continue
        intent = change.intent
        status = trial.status.value
        change.intent = dataclasses.replace(
            intent,
            rerun=(*intent.rerun, found.trial),
            done=intent.done - 1,
            complete=intent.complete - (status == "complete"),
            pruned=intent.pruned - (status == "pruned"),
            failed=intent.failed - (status == "failed"),
            running=intent.running + 1,
            status=ExperimentStatus.RUNNING,
        )
        change.reasons.append(f"{address} runs again, as requested with --replace")


def _price_spend(session: Session, state: State, views: dict[str, StateView]) -> None:
    """With `max_cost`: each experiment's spend so far, for the differ's stop decision."""
    now = time.time()
    for name, view in views.items():
        exp = session.config.experiments.get(name)
        record = state.get_experiment(name)
        if exp is None or exp.max_cost is None or record is None:
            continue
        rates = configured_rates(exp, session.config.providers)
        if rates is not None:
            cost = spend(state, name, record.generation, rates, now)
            view.progress = dataclasses.replace(view.progress, cost=cost)


@dataclasses.dataclass
class PlanResult:
    """`tunectl plan`'s result: the plan (its errors are in `plan.errors`) and the state's
    plan key to seal it with when it is to be saved (empty otherwise)."""

    plan: Plan
    key: bytes = b""


def run(
    session: Session, options: DiffOptions, *, seal: bool = False, preview: int = 0
) -> PlanResult:
    """`tunectl plan`: under the lock, refresh and plan; persist what the refresh recorded.
    `preview`: list the next sets each experiment's sampler proposes (`operations.preview`)."""
    with session.locked("OperationTypePlan"):
        state = session.open_state(create=True)
        try:
            result = refresh_and_plan(session, state, options)
            if preview:
                from tunectl.operations.preview import fill_preview

                fill_preview(session, state, result, preview)
            key = state.plan_key() if seal else b""  # made before the push
            session.save(state)  # the refresh may have recorded drift
        finally:
            state.close()
            session.close()
    return PlanResult(result, key)
