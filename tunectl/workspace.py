"""A configuration directory together with its state, providers and model store.

The CLI's commands go through a `Workspace`: it loads the configuration, opens and locks
the state, instantiates the providers the configuration uses, refreshes running trials
(drift), builds the plan, and carries out a plan's experiment-level changes. The trial-level
work is the engine's (`tunectl.engine.reconcile`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunectl import private_files
from tunectl.config import sensitive
from tunectl.config.load import load_backend, load_config
from tunectl.config.model import BackendConfig, Config, Experiment
from tunectl.diags import DiagnosticError, error
from tunectl.engine.hosts import elsewhere
from tunectl.engine.models import LocalModelStore, ModelStore, delete_stored, stored_usage
from tunectl.hcl.expr import Scope, evaluate
from tunectl.plans.change import Action, Drift, Plan
from tunectl.plans.differ import DiffOptions, StateView, canonical, make_plan
from tunectl.providers import registry
from tunectl.providers.base import Provider, ProviderError, TaskHandle, TaskState
from tunectl.search.stopping import Progress, time_used
from tunectl.states import ExperimentRecord, State, StateLock
from tunectl.states.remote import S3Backend, working_copy
from tunectl.status import ExperimentStatus

ACTIVE = ("submitting", "pending", "running")


def config_id(directory: Path) -> str:
    """Identifies a configuration directory across clones: its path inside the git
    repository (or its own name outside one)."""
    directory = directory.resolve()
    for parent in [directory, *directory.parents]:
        if (parent / ".git").exists():
            rel = directory.relative_to(parent).as_posix()
            return rel if rel != "." else directory.name
    return directory.name


@dataclass
class Workspace:
    directory: Path
    cli_vars: Sequence[str] = ()
    var_files: Sequence[Path] = ()
    lock_timeout: float = 0.0
    _config: Config | None = None
    _providers: dict[str, Provider] = field(default_factory=dict)
    _remote: S3Backend | None = None
    _pulled: bool = False
    _backend: BackendConfig | None = None  # set by `load_for_init` alone

    # -- configuration ------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.directory, self.cli_vars, self.var_files)
        return self._config

    @property
    def backend(self) -> BackendConfig:
        return self._backend if self._backend is not None else self.config.backend

    def load_for_init(self) -> list[str]:
        """Load what `init` needs; return the names of the providers the configuration uses.

        As Terraform's init, it needs no variable values unless the backend uses them: when
        the configuration lacks only such values, just the backend is evaluated.
        """
        try:
            config = self.config
        except DiagnosticError as exc:
            if any(d.summary != "No value for required variable" for d in exc.diags.errors()):
                raise
            self._backend, names = load_backend(self.directory, self.cli_vars, self.var_files)
            return names
        return sorted(
            {e.trial.provider for e in config.experiments.values()} | set(config.providers)
        )

    def state_path(self) -> Path:
        """The SQLite file commands work on (for an S3 backend: the working copy)."""
        backend = self.backend
        if backend.kind == "s3":
            return working_copy(self.directory, backend.settings)
        path = Path(str(backend.settings.get("path", "state/tunectl.db")))
        return path if path.is_absolute() else self.directory / path

    def remote(self) -> S3Backend | None:
        """The S3 backend, or None for a local state."""
        backend = self.backend
        if backend.kind != "s3":
            return None
        if self._remote is None:
            self._remote = _storage_call(lambda: S3Backend(backend.settings, self.state_path()))
        return self._remote

    def models(self) -> ModelStore:
        storage = self.config.storage
        keep = storage.settings.get("keep", "all")
        if storage.kind == "s3":
            from tunectl.engine.models import S3ModelStore

            staging = self.state_path().parent / "models-staging"
            return _storage_call(lambda: S3ModelStore(storage.settings, staging, keep))
        path = Path(str(storage.settings.get("path", "state/models")))
        return LocalModelStore(path if path.is_absolute() else self.directory / path, keep)

    # -- state --------------------------------------------------------------------------

    def open_state(self, create: bool) -> State:
        """Open the state; with an S3 backend, download it first (once per command)."""
        path = self.state_path()
        remote = self.remote()
        if remote is not None and not self._pulled:
            _storage_call(remote.pull)
            self._pulled = True
        if create:
            self._make_state_dir(path.parent)
        return State.open(path, create=create, config_id=config_id(self.directory))

    def save(self, state: State, *, force: bool = True, ahead: bool = False) -> None:
        """Push the state to the S3 backend. `force`: now, riding out an outage for the
        retry window; else only if due (`ahead`: now, unless the store is out). Local:
        no-op."""
        remote = self.remote()
        if remote is None:
            return
        if force:
            _storage_call(lambda: remote.push(state))
        else:
            _storage_call(lambda: remote.push_if_due(state, ahead=ahead))

    def _make_state_dir(self, directory: Path) -> None:
        """Create the state's directory 0700. tunectl's own `state/` tree in the
        configuration directory is made 0700 even when it exists (older releases made it
        0755); a directory that a `backend` block names elsewhere and that exists already
        keeps the mode its owner gave it."""
        private_files.make_dirs(directory)
        own = self.directory / "state"
        if directory == own or own in directory.parents:
            for path in (directory, *directory.parents):
                private_files.make_private(path, private_files.DIR_MODE)
                if path == own:
                    break

    @contextlib.contextmanager
    def locked(self, operation: str) -> Iterator[None]:
        remote = self.remote()
        if remote is not None:
            _storage_call(lambda: remote.lock(operation, self.lock_timeout))
            try:
                yield
            finally:
                _storage_call(remote.unlock)
            return
        path = self.state_path()
        self._make_state_dir(path.parent)
        lock = StateLock(path, operation)
        lock.acquire(self.lock_timeout)
        try:
            yield
        finally:
            lock.release()

    # -- providers ----------------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            try:
                cls = registry.load(name)
            except KeyError:
                raise DiagnosticError(
                    error(
                        "Unknown provider",
                        f'The state has tasks on provider "{name}", which is not installed. '
                        f"Install it to manage those tasks.",
                    )
                ) from None
            settings = self.config.providers[name].settings if name in self.config.providers else {}
            if not settings:
                settings = {s.name: s.default for s in cls.config_schema if s.default is not None}
            self._providers[name] = cls(settings, self.state_path().parent)
        return self._providers[name]

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()

    # -- refresh and plan ---------------------------------------------------------------

    def refresh(self, state: State) -> list[Drift]:
        """Poll every active task; record what changed outside of tunectl."""
        drift: list[Drift] = []
        by_provider: dict[str, list[Any]] = {}
        for task in state.active_tasks():
            if elsewhere(task.host, self.state_path().parent):
                continue  # only its own host can see it; apply says so
            by_provider.setdefault(task.provider, []).append(task)
        for name, tasks in by_provider.items():
            provider = self.provider(name)
            handles = [
                TaskHandle(t.key, t.handle_id or t.key) for t in tasks if t.status != "submitting"
            ]
            try:
                statuses = provider.poll(handles) if handles else {}
            except ProviderError as exc:
                raise DiagnosticError(
                    error("Failed to refresh", f"The {name} provider could not be reached: {exc}")
                ) from exc
            for task in tasks:
                status = statuses.get(task.handle_id or task.key)
                if status is None or not status.state.terminal:
                    continue
                before = task.status.value
                state.update_task(
                    task.key,
                    status=status.state.value,
                    exit_code=status.exit_code,
                    message=status.message,
                )
                trial_status = {TaskState.SUCCEEDED: "succeeded"}.get(
                    status.state, status.state.value
                )
                detail = status.message
                if status.state is TaskState.FAILED and status.exit_code is not None and not detail:
                    detail = f"task {task.task_name} exited with code {status.exit_code}"
                drift.append(
                    Drift(
                        f"experiment.{task.experiment}.trial[{task.trial_number}]",
                        before,
                        trial_status,
                        detail,
                    )
                )
        return drift

    def state_views(self, state: State, models: ModelStore) -> dict[str, StateView]:
        views = {}
        for record in state.list_experiments():
            counts = state.trial_counts(record.name)
            best = state.best_trial(record.name, _direction(record.config))
            since_best = state.count_ended_after(record.name, best.number) if best else 0
            progress = Progress(
                complete=counts.get("complete", 0),
                pruned=counts.get("pruned", 0),
                failed=counts.get("failed", 0),
                running=counts.get("running", 0) + counts.get("pending", 0),
                best_value=best.value if best else None,
                since_best=since_best,
                elapsed=time_used(record.elapsed, record.clock_since, time.time()),
                asked=sum(counts.values()),
            )
            stored, size = _storage_call(lambda name=record.name: stored_usage(state, models, name))
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

    def plan(self, state: State, options: DiffOptions, drift: Sequence[Drift] = ()) -> Plan:
        from tunectl.search.space import space_size

        config = self.config
        models = self.models()
        self._scrub(state)
        views = self.state_views(state, models)

        def replace_keys(provider: str) -> tuple[str, ...]:
            try:
                return registry.load(provider).replace_on_change
            except (KeyError, registry.ProviderLoadError):
                return ()

        plan = make_plan(
            config,
            views,
            options,
            replace_keys=replace_keys,
            space_size=lambda exp: space_size(exp.algorithm, exp.params),
            drift=drift,
            storage_name=models.describe(),
            salt=state.salt,
        )
        self._bound_by_capacity(plan)
        self._estimate_costs(plan)
        plan.lineage, plan.serial = state.lineage, state.serial
        plan.config_digest = self.digest(state)
        plan.variables = {
            k: v for k, v in config.values.items() if not config.variables[k].sensitive
        }
        return plan

    def _scrub(self, state: State) -> None:
        """Replace sensitive values the state holds in clear by their markers.

        A state written by an older tunectl, or before a variable was declared sensitive,
        has them in its copy of the experiment. Hidden as if stored that way, an unchanged
        secret is no change, and no plan shows the old value."""
        salt = state.salt
        for record in state.list_experiments():
            exp = self.config.experiments.get(record.name)
            if exp is None or not exp.sensitive:
                continue
            hidden = sensitive.hide_paths(copy.deepcopy(record.config), exp.sensitive, salt)
            if hidden != record.config:
                record.config, record.config_hash = hidden, _hash(hidden)
                state.put_experiment(record)

    def digest(self, state: State) -> str:
        """What a saved plan records of the configuration and the variable values: the plain
        digest of the files and non-sensitive values, and an HMAC of the sensitive values
        keyed by the state's salt. Apply recomputes it from the values given again (--var,
        TUNECTL_VAR_*), so a changed secret makes the plan stale without the plan file
        holding anything that reveals it."""
        secret = self.config.sensitive_values
        if not secret:
            return self.config.digest
        return self.config.digest + "+" + sensitive.digest(secret, state.salt)

    def _bound_by_capacity(self, plan: Plan) -> None:
        """Trials run at once: `max_concurrent`, bounded by the provider's capacity (local
        `slots`), as apply bounds them (SPEC "Budget")."""
        for change in plan.changes:
            exp = self.config.experiments.get(change.name)
            if change.intent is None or exp is None:
                continue
            try:
                limit = self.provider(exp.trial.provider).capacity()
            except (DiagnosticError, registry.ProviderLoadError):
                continue
            if limit is not None and limit < change.intent.max_concurrent:
                change.intent = dataclasses.replace(change.intent, max_concurrent=limit)

    def _estimate_costs(self, plan: Plan) -> None:
        """Where the provider knows prices: what the trials still to run may cost, at most.

        Each trial is priced for its longest possible run (`max_running_time` or the
        task's `timeout`); without either there is no estimate.
        """
        for change in plan.changes:
            exp = self.config.experiments.get(change.name)
            if change.intent is None or exp is None or not change.intent.to_run:
                continue
            try:
                cls = registry.load(exp.trial.provider)
            except (KeyError, registry.ProviderLoadError):
                continue
            if not cls.capabilities.price:
                continue
            provider = self.provider(exp.trial.provider)
            total = 0.0
            for task in exp.trial.tasks:
                settings = dict(task.settings)
                limit = settings.get("max_running_time") or task.timeout or exp.trial.timeout
                if isinstance(limit, str):
                    from tunectl.durations import parse_duration

                    limit = parse_duration(limit)
                price = provider.estimate_price(settings, float(limit)) if limit else None
                if price is None:
                    break
                total += price
            else:
                change.intent = dataclasses.replace(
                    change.intent,
                    estimated_cost=total * change.intent.to_run,
                    currency=str(provider.config.get("currency") or ""),
                )

    # -- carrying out experiment-level changes -----------------------------------------

    def apply_changes(self, state: State, plan: Plan, say: Any) -> list[Experiment]:
        """Destroy, replace, create and update experiments; return those that have work."""
        config = self.config
        models = self.models()
        salt = state.salt
        to_run: list[Experiment] = []
        for change in plan.changes:
            name = change.name
            if change.action in (Action.DESTROY, Action.REPLACE):
                self.destroy_experiment(state, models, name)
                replaced = change.action is Action.REPLACE
                done = "destroyed for replacement" if replaced else "destroyed"
                say(f"experiment.{name}: {done}")
            if change.action is Action.DESTROY:
                continue
            exp = config.experiments[name]
            record = state.get_experiment(name)
            if change.action in (Action.CREATE, Action.REPLACE) or record is None:
                # A new generation, drawn from the lineage's counter, so neither task keys
                # nor model paths meet those of an earlier experiment of this name.
                generation = state.new_generation()
                record = ExperimentRecord(
                    name=name,
                    generation=generation,
                    config=canonical(exp, salt),
                    config_hash=_hash(canonical(exp, salt)),
                    status=ExperimentStatus.PENDING,
                    created_at=time.time(),
                )
                state.put_experiment(record)
                say(f"experiment.{name}: created")
            elif change.action is Action.UPDATE:
                record.config = canonical(exp, salt)
                record.config_hash = _hash(record.config)
                state.put_experiment(record)
                say(f"experiment.{name}: updated in-place")
            if change.intent is not None and (
                change.intent.to_run > 0 or change.intent.running > 0
            ):
                to_run.append(exp)
        return to_run

    def destroy_experiment(self, state: State, models: ModelStore, name: str) -> None:
        here = self.state_path().parent
        foreign = [t for t in state.active_tasks(name) if elsewhere(t.host, here)]
        if foreign:
            hosts = ", ".join(sorted({str(t.host) for t in foreign}))
            trials = ", ".join(str(n) for n in sorted({t.trial_number for t in foreign}))
            raise DiagnosticError(
                error(
                    "Tasks run on another host",
                    f"experiment.{name}: trial(s) {trials} run on host {hosts}, and only "
                    "that host can stop them. Run this command there; or run `tunectl state "
                    f"rm experiment.{name}` to forget the experiment without stopping them. "
                    "Nothing was stopped or deleted.",
                )
            )
        # All of a provider's tasks at once, so their grace periods run side by side.
        by_provider: dict[str, list[Any]] = {}
        for task in state.active_tasks(name):
            by_provider.setdefault(task.provider, []).append(task)
        for provider_name, tasks in by_provider.items():
            handles = {task.handle_id or task.key: task for task in tasks}
            errors = self.provider(provider_name).cancel_all(
                [TaskHandle(task.key, handle_id) for handle_id, task in handles.items()]
            )
            for handle_id, task in handles.items():
                if handle_id not in errors:
                    state.update_task(task.key, status="cancelled", finished_at=time.time())
            if errors:
                handle_id, exc = next(iter(errors.items()))
                raise DiagnosticError(
                    error(
                        "Failed to stop a task",
                        f"Task {handles[handle_id].key} of experiment.{name} could not be "
                        f"stopped: {exc}. Nothing was deleted; run the command again.",
                    )
                ) from exc
        for task in state.all_tasks(name):
            with contextlib.suppress(Exception):
                self.provider(task.provider).cleanup(
                    TaskHandle(task.key, task.handle_id or task.key)
                )
        _storage_call(lambda: delete_stored(state, models, name))
        state.delete_experiment(name)

    # -- outputs ------------------------------------------------------------------------

    def exported(self, state: State) -> dict[str, Any]:
        """`experiment.NAME.*` as outputs see them."""
        out: dict[str, Any] = {}
        for record in state.list_experiments():
            counts = state.trial_counts(record.name)
            best = state.best_trial(record.name, _direction(record.config))
            out[record.name] = {
                "status": record.status.value,
                "stop_reason": record.stop_reason,
                "best": {
                    "value": best.value if best else None,
                    "params": best.params if best else {},
                    "number": best.number if best else None,
                    "model_uri": best.model_uri if best else None,
                },
                "trials": {
                    "complete": counts.get("complete", 0),
                    "pruned": counts.get("pruned", 0),
                    "failed": counts.get("failed", 0),
                    "running": counts.get("running", 0) + counts.get("pending", 0),
                },
            }
        return out

    def record_outputs(self, state: State) -> dict[str, tuple[Any, bool]]:
        """Evaluate the outputs and store them; sensitive values are not stored.

        A sensitive output (a token passed through a variable, say) must not land in the
        state (SPEC 5): `tunectl output NAME` evaluates it again from the configuration.
        """
        outputs = self.outputs(state)
        state.set_outputs({k: (None if s else v, s) for k, (v, s) in outputs.items()})
        return outputs

    def outputs(self, state: State) -> dict[str, tuple[Any, bool]]:
        config = self.config
        scope = Scope(
            variables=config.values,
            locals=config.locals,
            objects={"experiment": self.exported(state)},
        )
        values: dict[str, tuple[Any, bool]] = {}
        for name, output in config.outputs.items():
            try:
                values[name] = (evaluate(output.expr, scope), output.sensitive)
            except DiagnosticError:
                values[name] = (None, output.sensitive)  # not known yet (no trials)
        return values


def _storage_call(fn: Any) -> Any:
    """Run an S3 operation; a failure (after retries) becomes a diagnostic."""
    try:
        return fn()
    except Exception as exc:
        from tunectl.s3 import StorageError  # only imported when something failed

        if isinstance(exc, StorageError):
            raise DiagnosticError(
                error("Storage error", f"{exc}. Nothing was lost; run the command again.")
            ) from None
        raise


def _direction(config: Mapping[str, Any]) -> str:
    return str(config.get("objective", {}).get("direction", "maximize"))


def _hash(data: Mapping[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def debug() -> bool:
    return os.environ.get("TUNECTL_DEBUG", "") not in ("", "0")
