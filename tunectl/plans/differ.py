"""The differ: configuration + state (+ refresh) -> `Plan`.

Each experiment is compared through its canonical dict (`canonical`), flattened to dotted
paths. Which paths update in place and which force replacement is SPEC section 3's table:
limits and stop conditions update in place (they only change how far the same study goes),
and so does `enqueue` (sets added later run next; sets that ran are not run again);
anything that changes what a trial computes or how it is judged forces replacement. That
table is written out row by row in tests/plans/test_differ_table.py.

A new generation (created, or replaced) may start with complete trials (`warm_start`):
the differ counts the replaced generation's trials that fit the new space, or picks the
best of the experiment it is seeded from, as `Change.carry`, and starts the plan's trial
intent from them; apply writes the same ones (`tunectl.operations.warm`).

Problems found while planning (prevent_destroy, `--target`/`--replace` naming no
experiment) are `Diagnostic`s in `Plan.errors`, pointing at the configuration where they
can; the views render them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.addrs import Address, parse_address
from tunectl.config.model import Config, Experiment
from tunectl.config.sensitive import hide_paths, is_marker
from tunectl.config.templates import template_entry
from tunectl.diags import Diagnostic, DiagnosticError, error
from tunectl.durations import format_duration
from tunectl.plans.change import (
    MISSING,
    Action,
    AttrChange,
    Carry,
    Change,
    Drift,
    Plan,
    TrialIntent,
)
from tunectl.search.pbt import plan_sentence
from tunectl.search.stopping import Progress, launchable, stop_reason
from tunectl.status import ExperimentStatus

UPDATE_IN_PLACE = (
    "description",
    "max_trials",
    "max_concurrent",
    "max_failed_trials",
    "max_duration",
    "max_cost",
    "max_trials_without_improvement",
    "objective.goal",
    "trial.timeout",
    "trial.retries",
    "early_stopping",
    "lifecycle",
    "enqueue",
    "schedule",
    "notify",
    "warm_start",
)
# Inside trial.task.NAME: these change what a trial computes; other (provider-specific)
# keys force replacement only when the provider lists them in `replace_on_change`.
TASK_REPLACE_KEYS = ("command", "workdir", "env", "metrics", "provider")


def _value(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_value(i) for i in v]
    if isinstance(v, dict):
        return {str(k): _value(i) for k, i in v.items()}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)  # Template -> its source form


def canonical(exp: Experiment, salt: bytes = b"") -> dict[str, Any]:
    """The experiment as plain JSON data: what the state stores and the plan compares.

    Values that derive from sensitive variables (`exp.sensitive`) are markers keyed by
    `salt` (`tunectl.config.sensitive`), never the values themselves."""
    objective: dict[str, Any] = {
        "direction": exp.objective.direction,
        "reduce": exp.objective.reduce,
    }
    if exp.objective.multi:  # several objectives: names and directions, in order
        del objective["direction"]
        objective["metrics"] = exp.objective.metric_names
        objective["directions"] = exp.objective.directions
    elif exp.objective.metric:
        objective["metric"] = exp.objective.metric
    else:
        objective["metrics"] = dict(exp.objective.metrics)
    if exp.objective.goal is not None:
        objective["goal"] = exp.objective.goal
    if exp.objective.sources_reduce is not None:
        objective["sources_reduce"] = exp.objective.sources_reduce
    tasks: dict[str, Any] = {}
    for task in exp.trial.tasks:
        entry: dict[str, Any] = {} if task.command is None else {"command": _value(task.command)}
        entry.update(_value(dict(task.bodies)))
        if task.workdir is not None:
            entry["workdir"] = _value(task.workdir)
        if task.env:
            entry["env"] = _value(dict(task.env))
        if task.timeout is not None and task.timeout != exp.trial.timeout:
            entry["timeout"] = format_duration(task.timeout)
        if task.metrics:
            entry["metrics"] = [{"kind": m.kind, **dict(m.settings)} for m in task.metrics]
        entry.update(_value(dict(task.settings)))
        tasks[task.name] = entry
    trial: dict[str, Any] = {
        "provider": exp.trial.provider,
        "retries": exp.trial.retries,
        "task": tasks,
    }
    if exp.trial.timeout is not None:
        trial["timeout"] = format_duration(exp.trial.timeout)
    if exp.trial.templates:
        trial["template"] = [template_entry(t) for t in exp.trial.templates]
    out: dict[str, Any] = {
        "algorithm": {"name": exp.algorithm.name, **_value(dict(exp.algorithm.settings))},
        "objective": objective,
        "max_trials": exp.max_trials,
        "max_concurrent": exp.max_concurrent,
        "param": {p.name: _value(p.to_dict()) for p in exp.params},
        "trial": trial,
        "early_stopping": {
            "name": exp.early_stopping.name,
            **_value(dict(exp.early_stopping.settings)),
        },
        "lifecycle": {
            "prevent_destroy": exp.lifecycle.prevent_destroy,
            "ignore_changes": list(exp.lifecycle.ignore_changes),
        },
    }
    if exp.description:
        out["description"] = exp.description
    for key in ("max_failed_trials", "max_trials_without_improvement", "max_cost"):
        if getattr(exp, key) is not None:
            out[key] = getattr(exp, key)
    if exp.max_duration is not None:
        out["max_duration"] = format_duration(exp.max_duration)
    if exp.enqueue:
        out["enqueue"] = _value(list(exp.enqueue))
    if exp.schedule is not None:
        out["schedule"] = exp.schedule.to_dict()
    if exp.notify is not None:
        out["notify"] = {exp.notify.kind: exp.notify.to_dict()}
    if exp.warm_start is not None:
        ws = exp.warm_start
        out["warm_start"] = (
            {"carry": True}
            if ws.carry
            else {"from": str(Address(ws.source or "")), **({"top": ws.top} if ws.top else {})}
        )
    if exp.sensitive:
        hide_paths(out, exp.sensitive, salt)
    return out


MAP_LEAVES = ("env", "when", "tags")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; lists, empty maps and user maps (env, when) are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in MAP_LEAVES:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def forces_replacement(
    path: str, replace_keys: Callable[[str], Iterable[str]], provider: str
) -> bool:
    if any(path == p or path.startswith(p + ".") for p in UPDATE_IN_PLACE):
        return False
    parts = path.split(".")
    if parts[:2] == ["trial", "task"] and len(parts) >= 4:
        key = parts[3]
        if key == "timeout":
            return False
        if key not in TASK_REPLACE_KEYS:
            # A listed key forces replacement also where a provider setting nests it (a
            # DLC role's own `image` in `worker = { image = ... }`), as SPEC's "image" says.
            listed = set(replace_keys(provider))
            return key in listed or parts[-1] in listed
    return True


def ignored(path: str, ignore: Sequence[str]) -> bool:
    return any(path == i or path.startswith(i + ".") for i in ignore)


def diff_attrs(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    replace_keys: Callable[[str], Iterable[str]],
    ignore: Sequence[str] = (),
) -> list[AttrChange]:
    fb, fa = flatten(before), flatten(after)
    provider = str(after.get("trial", {}).get("provider", ""))
    changes = []
    for path in sorted(set(fb) | set(fa)):
        b, a = fb.get(path, MISSING), fa.get(path, MISSING)
        if b == a or ignored(path, ignore):
            continue
        forces = forces_replacement(path, replace_keys, provider)
        if forces and _is_env(path) and _only_sensitive_changed(b, a):
            # A sensitive env value is a credential far more often than an input of the
            # computation: rotating it must not throw away the experiment's trials.
            forces = False
        changes.append(AttrChange(path, b, a, forces))
    return changes


def _is_env(path: str) -> bool:
    parts = path.split(".")
    return parts[:2] == ["trial", "task"] and len(parts) >= 4 and parts[3] == "env"


def _only_sensitive_changed(before: Any, after: Any) -> bool:
    """True when two env maps differ only in values that are sensitive on both sides."""
    if is_marker(before) and is_marker(after):
        return True
    if isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys():
        return all(
            before[k] == after[k] or (is_marker(before[k]) and is_marker(after[k])) for k in before
        )
    return False


@dataclass
class StateView:
    """What the differ needs to know about one experiment in the state."""

    name: str
    config: dict[str, Any]
    status: ExperimentStatus
    progress: Progress
    models: int = 0  # stored model objects (files)
    model_bytes: int = 0
    running_trials: int = 0
    stop_reason: str = ""  # why a finished experiment stopped (search/stopping.py)


@dataclass
class DiffOptions:
    destroy: bool = False
    targets: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)


def _address(text: str, *, trials: bool = True) -> Address | None:
    """`text` as an address; None when it is not one (the CLI refuses those first)."""
    try:
        return parse_address(text, trials=trials)
    except DiagnosticError:
        return None


def _targeted(name: str, targets: Sequence[str]) -> bool:
    """Whether `--target`s select experiment `name` (a trial's address selects its experiment)."""
    if not targets:
        return True
    return any((a := _address(t)) is not None and a.experiment == name for t in targets)


def _consequences(view: StateView, storage: str) -> list[str]:
    out = []
    if view.running_trials:
        out.append(f"This stops {view.running_trials} running trial(s).")
    if view.models:
        size = f" ({_bytes(view.model_bytes)})" if view.model_bytes else ""
        out.append(f"This deletes {view.models} stored model object(s){size} from {storage}.")
    done = view.progress.done
    if done:
        out.append(f"The results of {done} finished trial(s) are removed from the state.")
    return out


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def intent(
    exp: Experiment, progress: Progress, status: ExperimentStatus, space_size: int | None
) -> TrialIntent:
    to_run = launchable(exp.stop_rules, progress, space_size)
    reason = stop_reason(exp.stop_rules, progress, space_size)
    if reason is None:
        status = ExperimentStatus.RUNNING if progress.asked else ExperimentStatus.PENDING
    return TrialIntent(
        max_trials=exp.max_trials,
        max_concurrent=exp.max_concurrent,
        done=progress.done,
        complete=progress.complete,
        pruned=progress.pruned,
        failed=progress.failed,
        running=progress.running,
        to_run=to_run,
        status=status,
        space_size=space_size,
        schedule=_schedule_sentence(exp) if to_run else "",
        search=plan_sentence(exp.algorithm, exp.max_trials),
    )


def _schedule_sentence(exp: Experiment) -> str:
    """When the schedule lets apply launch trials, seen from now."""
    if exp.schedule is None:
        return ""
    now = time.time()
    opens = exp.schedule.next_open(now)
    if opens is None:
        closes = exp.schedule.closes(now)
        assert closes is not None
        return f"its schedule window is open until {exp.schedule.describe(closes)}"
    return f"outside its schedule: the next window opens {exp.schedule.describe(opens)}"


def make_plan(
    config: Config | None,
    state: Mapping[str, StateView],
    options: DiffOptions,
    *,
    replace_keys: Callable[[str], Iterable[str]],
    space_size: Callable[[Experiment], int | None],
    drift: Sequence[Drift] = (),
    storage_name: str = "the model storage",
    salt: bytes = b"",
    finished: Callable[[str], Sequence[Finished]] = lambda name: (),
) -> Plan:
    """`salt` keys the markers of sensitive values; it must be the state's (`State.salt`),
    or a sensitive value would always look changed. `finished(name)`: the complete trials
    of experiment `name`'s current generation in the state, in number order, which a
    warm start carries (`Change.carry`)."""
    plan = Plan(
        destroy=options.destroy,
        targets=list(options.targets),
        replace=list(options.replace),
        drift=list(drift),
    )
    experiments = {} if (config is None or options.destroy) else config.experiments
    configured = {} if config is None else config.experiments
    replace: set[str] = set()
    for text in options.replace:
        found = _address(text)
        if found is None or found.experiment not in experiments:
            plan.errors.append(_unknown_address("--replace", text, "is in the configuration"))
        elif found.trial is None:  # a trial's: `operations.plan` (it reads the trials)
            replace.add(found.experiment)
    names = sorted(set(experiments) | set(state))
    for name in names:
        address = str(Address(name))
        if not _targeted(name, options.targets):
            continue
        exp = experiments.get(name)
        view = state.get(name)
        if exp is None and view is not None:
            change = Change(
                address,
                Action.DESTROY,
                before=view.config,
                consequences=_consequences(view, storage_name),
            )
            # Read from the configuration, as Terraform does: removing prevent_destroy
            # (or the whole block) is how a user allows the destroy.
            if name in configured and configured[name].lifecycle.prevent_destroy:
                plan.errors.append(_prevent_destroy(configured[name], Action.DESTROY))
            plan.changes.append(change)
            continue
        assert exp is not None
        after = canonical(exp, salt)
        size = space_size(exp)
        if view is None:
            carry, start = _seeded(exp, finished)
            plan.changes.append(
                Change(
                    address,
                    Action.CREATE,
                    after=after,
                    intent=intent(exp, start, ExperimentStatus.PENDING, size),
                    carry=carry,
                )
            )
            continue
        attrs = diff_attrs(view.config, after, replace_keys, exp.lifecycle.ignore_changes)
        forced = name in replace
        if forced or any(a.forces_replacement for a in attrs):
            # --replace starts over: what the user discards is not carried.
            carry, start = (None, Progress()) if forced else _carried_over(exp, finished)
            if carry is None:
                carry, start = _seeded(exp, finished)
            change = Change(
                address,
                Action.REPLACE,
                before=view.config,
                after=after,
                attrs=attrs,
                consequences=_consequences(view, storage_name),
                intent=intent(exp, start, ExperimentStatus.PENDING, size),
                carry=carry,
            )
            if forced:
                change.reasons.append("replacement requested with --replace")
            if exp.lifecycle.prevent_destroy:
                plan.errors.append(_prevent_destroy(exp, Action.REPLACE))
            plan.changes.append(change)
            continue
        action = Action.UPDATE if attrs else Action.NOOP
        # A generation not yet seeded (its apply stopped before its source finished).
        carry, start = _seeded(exp, finished) if not view.progress.asked else (None, Progress())
        if carry is None:
            start = view.progress
        change = Change(
            address,
            action,
            before=view.config,
            after=after,
            attrs=attrs,
            intent=intent(exp, start, view.status, size),
            carry=carry,
        )
        if action is Action.UPDATE and change.intent and change.intent.to_run:
            change.reasons.extend(_resumes(exp, view))
        plan.changes.append(change)
    _waiting_sources(plan)
    for text in options.targets:
        found = _address(text)
        if found is None or (found.experiment not in configured and found.experiment not in state):
            plan.errors.append(
                _unknown_address("--target", text, "in the configuration or the state")
            )
    return plan


Finished = tuple[Mapping[str, Any], float]
"""A complete trial as a warm start sees it: its parameter values and objective value."""


def _start(exp: Experiment, chosen: Sequence[Finished]) -> Progress:
    """The progress a new generation starts with: its carried trials, all complete."""
    best: float | None = None
    since = 0
    for _, value in chosen:
        better = best is None or (
            value > best if exp.objective.direction == "maximize" else value < best
        )
        best, since = (value, 0) if better else (best, since + 1)
    return Progress(complete=len(chosen), best_value=best, since_best=since, asked=len(chosen))


def _carried_over(
    exp: Experiment, finished: Callable[[str], Sequence[Finished]]
) -> tuple[Carry | None, Progress]:
    """What a replacement carries of the experiment's own complete trials: with
    `warm_start = true`, every one that fits the new space; without, none (the plan still
    says how many would)."""
    from tunectl.search.enqueue import carried
    from tunectl.search.space import is_discrete

    trials = finished(exp.name)
    if exp.warm_start is not None and exp.warm_start.source is not None:
        return None, Progress()
    if not trials:
        return None, Progress()
    chosen = carried(exp.params, trials, discrete=is_discrete(exp.algorithm))
    warm = exp.warm_start is not None and exp.warm_start.carry
    carry = Carry(str(Address(exp.name)), len(trials), len(chosen), len(chosen) if warm else 0)
    return carry, _start(exp, [trials[i] for i in chosen] if warm else [])


def _seeded(
    exp: Experiment, finished: Callable[[str], Sequence[Finished]]
) -> tuple[Carry | None, Progress]:
    """What `warm_start { from = experiment.X, top = N }` seeds a new generation with, as
    of now: X's best N complete trials that fit this experiment's space."""
    from tunectl.search.enqueue import carried
    from tunectl.search.space import is_discrete

    ws = exp.warm_start
    if ws is None or ws.source is None:
        return None, Progress()
    trials = finished(ws.source)
    fitting = carried(exp.params, trials, discrete=is_discrete(exp.algorithm))
    chosen = carried(
        exp.params,
        trials,
        discrete=is_discrete(exp.algorithm),
        direction=exp.objective.direction,
        top=ws.top,
    )
    carry = Carry(str(Address(ws.source)), len(trials), len(fitting), len(chosen), ws.top)
    return carry, _start(exp, [trials[i] for i in chosen])


def _waiting_sources(plan: Plan) -> None:
    """A seeding whose source runs trials in this apply happens after the source finishes:
    its figures are as of now, and the new generation's trial budget is not reduced yet."""
    pending = {
        c.address
        for c in plan.changes
        if c.action is not Action.DESTROY
        and c.intent is not None
        and (c.intent.to_run > 0 or c.intent.running > 0)
    }
    for change in plan.changes:
        carry = change.carry
        if carry is None or carry.source == change.address or carry.source not in pending:
            continue
        change.carry = Carry(carry.source, carry.total, carry.fit, 0, carry.top, waits=True)
        if change.intent is not None:
            change.intent = dataclasses.replace(
                change.intent,
                to_run=change.intent.to_run + change.intent.complete,
                done=change.intent.done - change.intent.complete,
                complete=0,
            )


def _resumes(exp: Experiment, view: StateView) -> list[str]:
    """Why an update continues a finished experiment, in the user's terms."""
    if view.status not in _FINISHED:
        return []
    if view.stop_reason == "max_duration" and exp.max_duration is not None:
        seconds = round(view.progress.elapsed)
        used = format_duration(seconds) if seconds else "0s"
        return [
            f"max_duration is now {format_duration(exp.max_duration)} and {used} of it is "
            f"used: the {view.status.value} experiment continues"
        ]
    return [f"the new settings let the {view.status.value} experiment continue"]


_FINISHED = (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.STOPPED)

PREVENT_DESTROY = "Experiment cannot be destroyed"


def _prevent_destroy(exp: Experiment, action: Action) -> Diagnostic:
    """The error for a plan that destroys or replaces an experiment with prevent_destroy,
    pointing at its lifecycle block (or the experiment block) as Terraform does."""
    address = Address(exp.name)
    if action is Action.DESTROY:
        detail = (
            f"{address} has lifecycle.prevent_destroy set, but the plan calls for it to be "
            "destroyed. Remove prevent_destroy to allow it, or leave the experiment out "
            "of this plan with --target."
        )
    else:
        detail = (
            f"{address} has lifecycle.prevent_destroy set, but the plan calls for it to be "
            "replaced, which destroys its trials and models. Remove prevent_destroy to "
            "allow it, or undo the change that forces replacement."
        )
    subject = exp.ranges.get("lifecycle") or exp.range
    return error(PREVENT_DESTROY, detail, subject, f'in experiment "{exp.name}"')


def _unknown_address(flag: str, text: str, where: str) -> Diagnostic:
    """An address given with `flag` that names no experiment (no source range: a flag)."""
    return error(
        f"Invalid {flag} address", f"{flag} {text}: no experiment with that address {where}."
    )
