"""Apply (and destroy): carry out a plan's experiment-level changes, then run the trials
until every experiment is done, the user interrupts, or one pass is made (`--once`).

`run` takes the lock, refreshes and plans, asks the caller to approve (`ApplyHooks`),
creates / updates / replaces / destroys experiments, and drives the engine's reconcile
loop, emitting `events` as it goes; the state is persisted at the end whatever happens.
The result says how it ended: the CLI turns that into an exit code and diagnostics.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from tunectl.addrs import Address
from tunectl.config.model import Experiment
from tunectl.diags import Diagnostic, error
from tunectl.engine.rerun import rerun_trial
from tunectl.operations.destroy import destroy_experiment
from tunectl.operations.events import (
    Destroyed,
    Emit,
    Event,
    ExperimentChanged,
    Finished,
    LoopPass,
    Note,
    PlanReady,
    RunStarted,
    RunStopped,
    TrialEvent,
)
from tunectl.operations.outputs import exported, record_outputs
from tunectl.operations.plan import config_hash, digest, refresh_and_plan
from tunectl.operations.session import Session
from tunectl.operations.warm import own_carry, seed_if_new, write_carried
from tunectl.plans import planfile
from tunectl.plans.change import Action, Plan
from tunectl.plans.differ import DiffOptions, canonical
from tunectl.states import ExperimentRecord, State
from tunectl.status import ExperimentStatus


@dataclass(frozen=True)
class ApplyRequest:
    """What to apply: the flags of `tunectl apply` / `destroy`, or a saved plan's."""

    destroy: bool = False
    targets: Sequence[str] = ()
    replace: Sequence[str] = ()
    once: bool = False
    auto_approve: bool = False
    saved: planfile.SavedPlan | None = None

    @property
    def operation(self) -> str:
        """The lock's operation name, as Terraform's."""
        return "OperationTypeDestroy" if self.destroy else "OperationTypeApply"


def saved_request(path: Path, var: Sequence[str]) -> tuple[ApplyRequest, list[str]]:
    """The request a saved plan makes, and the variables to load the configuration with:
    the plan's non-sensitive values, then `var` (given again, they win). Nothing in the
    file is used before its digest is checked."""
    saved = planfile.read_sealed(path)
    recorded = saved.plan
    request = ApplyRequest(
        destroy=bool(recorded.get("destroy")),
        targets=list(recorded.get("targets") or []),
        replace=list(recorded.get("replace") or []),
        saved=saved,
    )
    merged = [f"{k}={_var_text(v)}" for k, v in (recorded.get("variables") or {}).items()]
    return request, merged + list(var)


class ApplyHooks(Protocol):
    """What `run` needs from its caller besides the session."""

    def emit(self, event: Event) -> None:
        """Show an event (in order)."""
        ...

    def approve(self, question: str) -> bool:
        """Ask the user to approve the plan shown; True to go on."""
        ...

    def interrupts(self) -> AbstractContextManager[threading.Event]:
        """While the lock is held: an event set when the user asks to stop."""
        ...


@dataclass
class ApplyResult:
    """How apply ended. `outcome`: "done" (also with failed experiments, see
    `failures`), "errors" (the plan has errors, also as `diagnostics`; nothing was
    changed), "cancelled" (not approved), "interrupted" (stopped by the user; running
    trials keep running)."""

    outcome: Literal["done", "errors", "cancelled", "interrupted"]
    plan: Plan | None = None
    failures: list[Diagnostic] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def run(session: Session, request: ApplyRequest, hooks: ApplyHooks) -> ApplyResult:
    """Apply or destroy; see the module docstring."""
    emit = hooks.emit
    saved = request.saved
    session.config  # noqa: B018 (load it, and report bad input, before taking the lock)
    with session.locked(request.operation), hooks.interrupts() as stop:
        state = session.open_state(create=True)
        try:
            if saved is not None:
                planfile.check(
                    saved, state.lineage, state.serial, digest(session, state), state.plan_key
                )
            state.backup()
            options = DiffOptions(
                destroy=request.destroy,
                targets=list(request.targets),
                replace=list(request.replace),
            )
            plan = refresh_and_plan(session, state, options)
            if saved is not None:
                planfile.check_changes(saved, plan)
            if saved is None or plan.drift or plan.errors:
                emit(PlanReady(plan))
            if plan.errors:
                return ApplyResult("errors", plan, diagnostics=list(plan.errors))
            if not plan.has_changes and not plan.pending_work:
                if request.destroy:
                    emit(Destroyed(0))
                else:
                    _finish(session, state, emit, ran=False)
                return ApplyResult("done", plan)
            if saved is None and not request.auto_approve:
                question = (
                    "Do you really want to destroy all experiments?"
                    if request.destroy
                    else "Do you want to perform these actions?"
                )
                if not hooks.approve(question):
                    return ApplyResult("cancelled", plan)
            experiments = apply_changes(session, state, plan, emit)
            if request.destroy:
                record_outputs(session, state)
                emit(Destroyed(sum(c.action is Action.DESTROY for c in plan.changes)))
                return ApplyResult("done", plan)
            if experiments and not _run_trials(
                session, state, experiments, emit, request.once, stop
            ):
                return ApplyResult("interrupted", plan)
            failed = [e.name for e in experiments if _status(state, e.name) == "failed"]
            _finish(session, state, emit, ran=bool(experiments), failed=bool(failed))
            return ApplyResult("done", plan, [failure(state, name) for name in failed])
        finally:
            try:
                session.save(state)  # also after an interrupt or an error: it is consistent
            finally:
                state.close()
                session.close()


def apply_changes(session: Session, state: State, plan: Plan, emit: Emit) -> list[Experiment]:
    """Destroy, replace, create and update experiments; return those that have work."""
    config = session.config
    models = session.models()
    salt = state.salt
    to_run: list[Experiment] = []
    for change in plan.changes:
        name = change.name
        exp = config.experiments.get(name)
        own = change.carry is not None and change.carry.source == change.address
        carry = own_carry(state, exp) if exp and own and change.action is Action.REPLACE else []
        # With trials to carry, deleting the old generation and writing the new one with
        # them is one transaction (`tunectl.operations.warm`).
        with state.transaction() if carry else contextlib.nullcontext():
            if change.action in (Action.DESTROY, Action.REPLACE):
                destroy_experiment(session, state, models, name)
                replaced = change.action is Action.REPLACE
                emit(
                    ExperimentChanged(
                        name, "destroyed for replacement" if replaced else "destroyed"
                    )
                )
            if change.action is Action.DESTROY:
                continue
            assert exp is not None
            record = state.get_experiment(name)
            if change.action in (Action.CREATE, Action.REPLACE) or record is None:
                # A new generation, drawn from the lineage's counter, so neither task keys
                # nor model paths meet those of an earlier experiment of this name.
                generation = state.new_generation()
                record = ExperimentRecord(
                    name=name,
                    generation=generation,
                    config=canonical(exp, salt),
                    config_hash=config_hash(canonical(exp, salt)),
                    status=ExperimentStatus.PENDING,
                    created_at=time.time(),
                )
                state.put_experiment(record)
                emit(ExperimentChanged(name, "created"))
                if carry:
                    count = write_carried(state, exp, generation, carry)
                    emit(ExperimentChanged(name, f"carried {count} trial(s) over"))
            elif change.action is Action.UPDATE:
                record.config = canonical(exp, salt)
                record.config_hash = config_hash(record.config)
                state.put_experiment(record)
                emit(ExperimentChanged(name, "updated in-place"))
            for number in change.intent.rerun if change.intent else ():  # --replace ..trial[N]
                attempt = rerun_trial(state, models, name, number)
                emit(ExperimentChanged(name, f"trial {number} replaced (attempt {attempt + 1})"))
            if change.intent is not None and (
                change.intent.to_run > 0 or change.intent.running > 0
            ):
                to_run.append(exp)
    return to_run


def failure(state: State, name: str) -> Diagnostic:
    """Terraform exits 1 when it cannot reach the desired state; so does apply when an
    experiment ends failed (SPEC 6 "Exit codes")."""
    from tunectl.search.stopping import REASON_TEXT

    record = state.get_experiment(name)
    reason = REASON_TEXT.get(record.stop_reason, record.stop_reason) if record else ""
    counts = state.trial_counts(name)
    return error(
        f"{Address(name)} failed",
        f"The experiment ended failed ({reason}; {counts['complete']} complete, "
        f"{counts['failed']} failed trials). See the failed trials' messages with "
        f"`tunectl show {Address(name)}` and their output with `tunectl logs "
        f"{Address(name)} --trial N`; fix the cause, then raise the limit or replace the "
        "experiment and apply again.",
    )


def _run_trials(
    session: Session,
    state: State,
    experiments: Sequence[Experiment],
    emit: Emit,
    once: bool,
    stop: threading.Event,
) -> bool:
    """Run the experiments' trials; False when the user interrupted."""
    from tunectl.config.warm_start import warm_start_order
    from tunectl.engine.reconcile import LoopOptions, Reconciler
    from tunectl.engine.runner import Runner
    from tunectl.search.space import space_size

    models = session.models()

    def event(
        kind: str,
        experiment: str,
        message: str,
        trial: int | None = None,
        output: Sequence[str] = (),
    ) -> None:
        emit(TrialEvent(kind, experiment, message, trial, tuple(output)))

    # A shared state learns of a local task before it starts (see Runner).
    shared = session.backend.shared

    def ahead() -> None:
        session.save(state, force=False, ahead=True)

    def should_stop() -> bool:
        session.save(state, force=False)  # a remote state is pushed every few seconds
        emit(LoopPass())
        return stop.is_set()

    runners: list[Runner] = []
    waiting: set[str] = set()
    # An experiment seeded from another (`warm_start { from }`) runs after it, in a later
    # wave, and only once it has finished; otherwise all run side by side.
    by_name = {exp.name: exp for exp in experiments}
    for wave in warm_start_order(by_name):
        ready = []
        for name in wave:
            exp = by_name[name]
            source = exp.warm_start.source if exp.warm_start else None
            behind = next((r for r in runners if r.exp.name == source), None)
            if source in waiting or (behind is not None and not behind.finished):
                emit(Note(f"{Address(name)} waits for {Address(str(source))} to finish."))
                waiting.add(name)
                continue
            seeded = seed_if_new(state, exp)
            if seeded:
                what = f"seeded with {seeded} trial(s) of {Address(str(source))}"
                emit(ExperimentChanged(name, what))
            ready.append(exp)
        if not ready:
            continue
        started = [
            Runner(
                exp,
                state,
                session.provider(exp.trial.provider),
                models,
                session.directory,
                space_size(exp.algorithm, exp.params),
                event,
                before_launch=ahead if shared else None,
            )
            for exp in ready
        ]
        runners.extend(started)
        emit(RunStarted(started))
        try:
            Reconciler(started, LoopOptions(once=once), should_stop).run()
        finally:
            emit(RunStopped())
        if stop.is_set():
            break
    if stop.is_set():
        emit(Note("Stopped. Running trials keep running; run tunectl apply again to adopt them."))
        # Checkpointed, but not done: exit 1, as Terraform does after an interrupt.
        record_outputs(session, state)
        return False
    if once:
        running = sum(len(r.active) for r in runners)
        text = f"One pass done (--once); {running} trial(s) running, adopted by the next apply."
        emit(Note(text))
    return True


def _finish(session: Session, state: State, emit: Emit, ran: bool, failed: bool = False) -> None:
    outputs = record_outputs(session, state)
    summary = exported(state) if ran else {}
    emit(Finished(ran=ran, failed=failed, exported=summary, outputs=outputs))


def _status(state: State, name: str) -> str | None:
    record = state.get_experiment(name)
    return record.status if record is not None else None


def _var_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
