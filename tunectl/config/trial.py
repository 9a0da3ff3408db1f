"""The trial decoder: a `trial` block and its `task "NAME"` blocks into a `TrialSpec`.

Each task gets the trial's shared settings (workdir, env, timeout, the provider's own
attributes, metrics) merged with its own, and its bodies: `command`, or whichever the
trial's provider declares (`Provider.task_bodies`: `pai`, `sql`, ...). Placeholders are
checked where they are written: each must name something (`${param.NAME}` a declared
parameter), and a value must be placeable safely (by the rules of the body's kind: quoted
in a shell command, inside a SQL literal or a number; one path component in a workdir). A
metrics file must be the trial's alone; a `metrics "table"` query follows the provider's
SQL rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tunectl.config.model import MetricsSource, ProviderConfig, TaskSpec, TrialSpec
from tunectl.config.provider_checks import (
    body_problems,
    check_metric_sources,
    check_task,
    number_slots,
)
from tunectl.config.providers import provider_class, read_settings
from tunectl.config.schema import METRICS_KINDS, METRICS_READS, TRIAL_SCHEMA, Reader
from tunectl.config.sensitive import object_keys, refers_to
from tunectl.config.templates import TRIAL_NAMES as TRIAL_PLACEHOLDERS
from tunectl.config.templates import decode_templates
from tunectl.diags import Diagnostics, did_you_mean, error, warning
from tunectl.hcl.expr import Scope
from tunectl.hcl.syntax import Block, Body
from tunectl.hcl.values import Template
from tunectl.names import path_component_problem
from tunectl.providers import registry
from tunectl.providers.bodies import SQL, query_kind
from tunectl.s3 import is_object_uri
from tunectl.search.model import ParamSpec

DEFERRED = frozenset({"param", "trial", "experiment"})

# Kinds the language names (SPEC) that this version cannot read yet, and why.
UNSUPPORTED_METRICS: dict[str, str] = {}


def _task_sensitive(body: Body, hidden: frozenset[tuple[str, str]]) -> set[str]:
    """A task's (or the trial's shared) attributes that derive from sensitive variables."""
    out: set[str] = set()
    if not hidden:
        return out
    for name, attr in body.attributes.items():
        if name in ("provider", "retries"):
            continue
        if name == "env":
            keys, whole = object_keys(attr.expr, hidden)
            out.update(f"env.{k}" for k in keys)
            if whole:
                out.add("env")
        elif refers_to(attr.expr, hidden):
            out.add(name)
    for metrics in body.blocks_of("metrics"):
        if any(refers_to(a.expr, hidden) for a in metrics.body.attributes.values()):
            out.add("metrics")
    return out


def _check_placeholders(
    value: Any,
    params: Mapping[str, ParamSpec],
    attr,
    reader: Reader,
    position: str = "env",
    provider: Any = None,
    body: str = "command",
) -> None:
    """Refuse placeholders that name nothing, and values that cannot be placed safely.

    `position` is "command" (a task body, named `body`: its kind, declared by `provider`,
    says where a placeholder's value can be quoted: a string command runs through a
    shell, a SQL placeholder outside a literal must be a number), "workdir"
    (no value may add or climb a level: see `path_component_problem`) or "env" (any text
    without NUL).
    """
    from tunectl.hcl.values import format_value

    items = (
        value
        if isinstance(value, list)
        else list(value.values())
        if isinstance(value, dict)
        else [value]
    )
    query = query_kind(provider.task_bodies) if provider is not None else SQL
    if position == "sql":
        for refusal in query.refusals(value):
            reader.fail(attr, "Placeholder in an unsafe position", refusal)
        for wrong in query.problems(value):
            reader.fail(attr, "Invalid query", wrong)
    checks = query.number_slots(value) if position == "sql" else []
    if position == "command":
        checks = number_slots(provider, body, value)
        for summary, detail in body_problems(provider, body, value):
            reader.fail(attr, summary, detail)
    for path in checks:
        spec = params.get(str(path[1])) if path[0] == "param" and len(path) == 2 else None
        if spec is not None and not _number_typed(spec):
            reader.fail(
                attr,
                "Placeholder in an unsafe position",
                f"${{param.{path[1]}}} is outside a string literal, where only a number "
                f'is safe, and param "{path[1]}" can take a value that is not a number. '
                "Put it in a string literal, or make the parameter number-typed.",
            )
    for item in items:
        if not isinstance(item, Template):
            continue
        for ref in item.references():
            root, rest = ref[0], ref[1:]
            if root == "param" and (len(rest) != 1 or rest[0] not in params):
                got = str(rest[0]) if rest else ""
                reader.fail(
                    attr,
                    "Reference to undeclared parameter",
                    f'"param.{got}" is not a param of this experiment.{did_you_mean(got, params)}',
                )
            elif root == "trial" and (len(rest) != 1 or rest[0] not in TRIAL_PLACEHOLDERS):
                got = str(rest[0]) if rest else ""
                reader.fail(
                    attr,
                    "Unsupported attribute",
                    f'"trial.{got}" is not a trial '
                    f"placeholder.{did_you_mean(got, TRIAL_PLACEHOLDERS)} "
                    f"Use one of: {', '.join(TRIAL_PLACEHOLDERS)}.",
                )
            elif root == "experiment" and rest != ("name",):
                reader.fail(
                    attr,
                    "Unsupported attribute",
                    'In a trial, only "experiment.name" is available.',
                )
            elif root == "param":
                # A choice's values are known now: refuse the ones that cannot be placed.
                for choice in params[str(rest[0])].values:
                    text = format_value(choice)
                    problem = (
                        "contains a NUL byte, which no argument or variable can hold"
                        if "\0" in text
                        else f"cannot be part of a path: {why}"
                        if position == "workdir" and (why := path_component_problem(text))
                        else None
                    )
                    if problem:
                        reader.fail(
                            attr,
                            "Parameter value cannot be placed here",
                            f"The value {json.dumps(text)} of param.{rest[0]} {problem}. Change "
                            "the parameter's values, or pass the value through env.",
                        )
            elif position == "workdir" and ref == ("trial", "params_json"):
                reader.fail(
                    attr,
                    "Parameter value cannot be placed here",
                    "trial.params_json is JSON text, which cannot be part of a path. Use "
                    "trial.id or trial.number to name a per-trial directory.",
                )


def _number_typed(spec: ParamSpec) -> bool:
    """Every value the parameter can take is a number."""
    if spec.type != "choice":
        return True
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec.values)


def _metrics(
    body: Body,
    scope: Scope,
    context: str,
    diags: Diagnostics,
    params: Mapping[str, ParamSpec],
    workdir: Any,
    provider: Any = None,
) -> tuple[MetricsSource, ...]:
    out = []
    for mb in body.blocks_of("metrics"):
        if len(mb.labels) != 1 or mb.labels[0] not in METRICS_KINDS:
            continue
        kind = mb.labels[0]
        if kind in UNSUPPORTED_METRICS:
            # Accepting them and reading nothing would fail every trial later, silently.
            diags.append(
                error(
                    "Unsupported metrics source",
                    f'metrics "{kind}" is not available in this version of tunectl: '
                    f'{UNSUPPORTED_METRICS[kind]} Use metrics "stdout" (a NAME=VALUE line) '
                    'or metrics "json" (a JSON-lines file), or tunectl.report() in the trial.',
                    mb.range,
                    context,
                )
            )
            continue
        reader = Reader(mb.body, scope, context, diags)
        settings = {n: reader.get(n, "string") for n in mb.body.attributes}
        _warn_unread(kind, mb.body, context, diags)
        need = {"json": "path", "tensorboard": "logdir", "table": "sql"}.get(kind)
        if need and need not in settings:
            reader.fail(None, "Missing required argument", f'metrics "{kind}" needs "{need}".')
        if kind == "table" and settings.get("sql") is not None:
            where = mb.body.attributes["sql"]
            _check_placeholders(settings["sql"], params, where, reader, "sql", provider)
        if kind == "json" and settings.get("path") is not None:
            where = mb.body.attributes["path"]
            _check_metrics_file(settings["path"], workdir, params, where, reader)
        if kind == "tensorboard":
            _check_event_dir(mb, settings.get("logdir"), workdir, params, reader)
        pattern = settings.get("pattern")
        if isinstance(pattern, Template):
            # A value would be read as regular-expression syntax, and matched nowhere.
            reader.fail(
                mb.body.attributes["pattern"],
                "Placeholder in a metrics pattern",
                "A pattern is the same for every trial: write it without ${...}, and have "
                "the trial print NAME=VALUE or call tunectl.report().",
            )
        elif pattern is not None:
            import re

            try:
                groups = re.compile(str(pattern)).groups
            except re.error as exc:
                reader.fail(
                    mb.body.attributes["pattern"],
                    "Invalid pattern",
                    f"The pattern is not a valid regular expression: {exc}.",
                )
            else:
                if (
                    groups > 1
                    and "name" not in settings
                    and not re.compile(str(pattern)).groupindex
                ):
                    reader.fail(
                        mb.body.attributes["pattern"],
                        "Invalid pattern",
                        "With more than one group, name the groups: (?P<val_acc>...).",
                    )
        out.append(
            MetricsSource(
                kind,
                tuple(sorted((k, str(v)) for k, v in settings.items() if v is not None)),
                tuple(sorted((k, v) for k, v in settings.items() if isinstance(v, Template))),
            )
        )
    return tuple(out)


def _warn_unread(kind: str, body: Body, context: str, diags: Diagnostics) -> None:
    """A setting the metrics source never reads is accepted, and said to have no effect."""
    reads = METRICS_READS[kind]
    for name, attr in body.attributes.items():
        if name not in reads:
            diags.append(
                warning(
                    "Argument has no effect",
                    f'metrics "{kind}" reads only {", ".join(reads)}; "{name}" is ignored.',
                    attr.range,
                    context,
                )
            )
    if kind == "stdout" and "name" in body.attributes and "pattern" not in body.attributes:
        diags.append(
            warning(
                "Argument has no effect",
                '"name" is the metric a pattern\'s one unnamed group reports. Without a '
                "pattern, stdout is read for NAME=VALUE lines of the objective's metrics "
                'and "name" is ignored.',
                body.attributes["name"].range,
                context,
            )
        )


# Placeholders that differ between any two trials, of any experiment and generation.
_PER_TRIAL = (("trial", "id"), ("trial", "model_dir"))


def _per_trial(value: Any) -> bool:
    return isinstance(value, Template) and any(r in _PER_TRIAL for r in value.references())


def _check_metrics_file(
    path: Any,
    workdir: Any,
    params: Mapping[str, ParamSpec],
    attr,
    reader: Reader,
    events: bool = False,
) -> None:
    """A metrics file (or event directory) must be one trial's alone: a shared one holds
    other trials' values."""
    _check_placeholders(path, params, attr, reader)
    head = path.parts[0] if isinstance(path, Template) and path.parts else path
    relative = isinstance(head, str) and not head.startswith("/") and not is_object_uri(head)
    if _per_trial(path) or (relative and _per_trial(workdir)):
        return
    what = ("Event directory", "directory", "events", "logdir", "tb-${trial.id}")
    if not events:
        what = ("Metrics file", "file", "lines", "path", "metrics-${trial.id}.jsonl")
    reader.fail(
        attr,
        f"{what[0]} shared by trials",
        f'The {what[0].lower()} "{path}" would be the same {what[1]} for every trial, and a '
        f"trial would read the {what[2]} of others. Make the {what[3]} unique per trial with "
        f'${{trial.id}} ({what[3]} = "{what[4]}") or ${{trial.model_dir}}, or keep it '
        "relative and give the trial its own working directory "
        '(workdir = "${trial.model_dir}").',
    )


def _check_event_dir(
    block: Block, logdir: Any, workdir: Any, params: Mapping[str, ParamSpec], reader: Reader
) -> None:
    """An event directory is read with the tensorboard extra, and must be the trial's own."""
    from tunectl.providers.events import missing_extra

    problem = missing_extra()
    if problem:
        reader.diags.append(error("Missing package", problem, block.range, reader.context))
    if logdir is not None:
        where = block.body.attributes["logdir"]
        _check_metrics_file(logdir, workdir, params, where, reader, events=True)


def decode_trial(
    block: Block,
    scope: Scope,
    providers: Mapping[str, ProviderConfig],
    context: str,
    params: Mapping[str, ParamSpec],
    diags: Diagnostics,
) -> TrialSpec | None:
    trial_scope = Scope(
        variables=scope.variables,
        locals=scope.locals,
        deferred=DEFERRED,
        sensitive=scope.sensitive,
    )
    reader = Reader(block.body, trial_scope, context, diags)
    provider = reader.get("provider", "string", "local")
    if provider not in providers:
        cls = provider_class(
            provider, (block.body.attributes.get("provider") or block).range, context, diags
        )
        if cls is None:
            return None
    else:
        cls = registry.load(provider)
    task_blocks = block.body.blocks_of("task")
    # The bodies the provider's tasks take: `command`, or others (`pai`, `sql`).
    body_names = tuple(dict.fromkeys(("command", *(s.name for s in cls.task_bodies))))
    declared = tuple(s.name for s in cls.task_bodies) or ("command",)
    needs = "a command" if "command" in declared else "one of " + ", ".join(declared)
    # Read here; any other attribute is the provider's.
    common = tuple(dict.fromkeys((*TRIAL_SCHEMA.attrs, *body_names)))
    given = [n for n in body_names if n in block.body.attributes]
    if task_blocks and given:
        reader.fail(
            block.body.attributes[given[0]],
            "Conflicting task definitions",
            f'Write either one {given[0]} in trial, or task "NAME" blocks, not both.',
        )
        return None
    if not task_blocks and not given:
        reader.fail(
            None, "Missing required argument", f'The trial needs {needs}, or task "NAME" blocks.'
        )
        return None
    timeout = reader.get("timeout", "duration")
    retries = reader.get("retries", "int", 0)
    if retries is not None and retries < 0:
        reader.fail(
            block.body.attributes.get("retries"), "Invalid value", "retries must be 0 or more."
        )
    shared_env = reader.get("env", "map", {})
    shared_workdir = reader.get("workdir", "string")
    shared_settings = read_settings(
        block.body, cls.trial_schema, reader, common, f'a "{provider}" trial', True
    )
    shared_metrics = _metrics(block.body, trial_scope, context, diags, params, shared_workdir, cls)
    shared_sensitive = _task_sensitive(block.body, scope.sensitive)
    templates = decode_templates(
        block.body,
        trial_scope,
        context,
        diags,
        cls,
        lambda dest: (
            _per_trial(dest) or (not str(dest).startswith("/") and _per_trial(shared_workdir))
        ),
        params,
    )
    tasks: list[TaskSpec] = []
    sources = [(b.labels[0] if b.labels else "main", b.body, b.range) for b in task_blocks] or [
        ("main", block.body, block.range)
    ]
    names: set[str] = set()
    for tname, body, where in sources:
        if tname in names:
            diags.append(
                error(
                    "Duplicate task block",
                    f'A task named "{tname}" is already declared in this trial.',
                    where,
                    context,
                )
            )
            continue
        names.add(tname)
        tr = Reader(body, trial_scope, context, diags) if body is not block.body else reader
        if (
            body is not block.body
            and "provider" in body.attributes
            and tr.get("provider", "string") != provider
        ):
            tr.fail(
                body.attributes["provider"],
                "Unsupported argument",
                "Every task of a trial runs on the trial's provider; set provider in the trial "
                "block.",
            )
        values = {n: tr.get(n, "command") for n in body_names if n in body.attributes}
        if not values or any(v is None for v in values.values()):
            if not values:
                tr.fail(None, "Missing required argument", f'task "{tname}" needs {needs}.')
            continue
        for name in values:
            if name not in declared:
                tr.fail(
                    body.attributes[name],
                    "Unsupported argument",
                    f'The {provider} provider\'s tasks take {needs}, not "{name}".',
                )
        command = values.pop("command", None)
        env = {**shared_env, **(tr.get("env", "map", {}) if body is not block.body else {})}
        for key, value in env.items():
            if not isinstance(value, str | Template | int | float) or isinstance(value, bool):
                tr.fail(
                    body.attributes.get("env"),
                    "Incorrect attribute value type",
                    f'env "{key}" must be a string.',
                )
        env = {k: v if isinstance(v, str | Template) else str(v) for k, v in env.items()}
        settings = dict(shared_settings)
        if body is not block.body:
            settings.update(
                read_settings(body, cls.trial_schema, tr, common, f'a "{provider}" task', True)
            )
        workdir = tr.get("workdir", "string") if body is not block.body else None
        for name, value in (
            *(("command", v) for v in [command] if v is not None),
            *values.items(),
        ):
            _check_placeholders(value, params, body.attributes[name], tr, "command", cls, name)
        for attr_name, value in (("env", env), ("workdir", workdir or shared_workdir)):
            _check_placeholders(
                value,
                params,
                body.attributes.get(attr_name) or block.body.attributes.get(attr_name),
                tr,
                attr_name,
                cls,
            )
        metrics = (
            shared_metrics
            if body is block.body
            else _metrics(body, trial_scope, context, diags, params, workdir or shared_workdir, cls)
        )
        task_timeout = tr.get("timeout", "duration") if body is not block.body else None
        tasks.append(
            TaskSpec(
                name=tname,
                provider=provider,
                command=command,
                bodies=tuple(values.items()),
                workdir=workdir or shared_workdir,
                env=tuple(sorted(env.items())),
                timeout=task_timeout or timeout,
                settings=tuple(sorted(settings.items(), key=lambda kv: kv[0])),
                metrics=metrics if body is block.body else metrics + shared_metrics,
                range=where,
                sensitive=frozenset(
                    shared_sensitive
                    | (_task_sensitive(body, scope.sensitive) if body is not block.body else set())
                ),
            )
        )
        config = providers[provider].settings if provider in providers else {}
        written = [body] if body is block.body else [body, block.body]
        diags.extend(
            check_task(cls, config, settings, tname, written, where, context, body_names=values)
        )
    bodies = [block.body, *(b.body for b in task_blocks)]
    diags.extend(check_metric_sources(cls, bodies, context, skip=UNSUPPORTED_METRICS))
    return TrialSpec(provider, tuple(tasks), timeout, retries or 0, block.range, templates)
