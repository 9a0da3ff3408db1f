"""Load a configuration directory into a `model.Config`, or fail with diagnostics.

Every `*.hcl` file in the directory is read, in name order. All problems found are
reported together (as Terraform does), not only the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl.config import variables as variables_mod
from tunectl.config.model import (
    ALGORITHMS,
    EARLY_STOPPING,
    PARAM_TYPES,
    Algorithm,
    BackendConfig,
    Config,
    EarlyStopping,
    Experiment,
    Lifecycle,
    MetricsSource,
    Objective,
    Output,
    ParamSpec,
    ProviderConfig,
    StorageConfig,
    TaskSpec,
    TrialSpec,
    Variable,
)
from tunectl.config.provider_checks import (
    body_problems,
    check_metric_sources,
    check_provider_block,
    check_task,
)
from tunectl.config.schema import (
    AttrSchema,
    BlockSchema,
    NestedBlock,
    Reader,
    block_context,
    check_body,
    convert,
)
from tunectl.config.sensitive import Redactor, object_keys, refers_to
from tunectl.diags import (
    DiagnosticError,
    Diagnostics,
    SourceFiles,
    SourceRange,
    did_you_mean,
    error,
)
from tunectl.durations import parse_duration
from tunectl.hcl.expr import Scope, Template, evaluate, references
from tunectl.hcl.syntax import Block, Body, check_size, parse
from tunectl.names import check_name, is_valid_name
from tunectl.providers import registry
from tunectl.providers.base import AttrSpec

TRIAL_PLACEHOLDERS = ("id", "number", "model_dir", "params_json")
DEFERRED = frozenset({"param", "trial", "experiment"})

_S = AttrSchema
_ANY_SETTINGS = BlockSchema(open_attrs=True)

METRICS_KINDS = ("stdout", "json", "tensorboard", "table")
# Kinds the language names (SPEC) that this version cannot read yet, and why.
UNSUPPORTED_METRICS = {
    "tensorboard": "reading TensorBoard event files is not implemented yet.",
    "table": "MaxCompute SQL metrics come with the MaxCompute provider, not built yet.",
}
METRICS_SCHEMA = BlockSchema(
    attrs={
        "pattern": _S("string"),
        "name": _S("string"),
        "path": _S("string", deferred=True),
        "logdir": _S("string", deferred=True),
        "sql": _S("string", deferred=True),
        "tag": _S("string"),
    }
)
_TASK_ATTRS = {
    "provider": _S("string"),
    "command": _S("command", deferred=True),
    "workdir": _S("string", deferred=True),
    "env": _S("map", deferred=True),
    "timeout": _S("duration"),
}
TASK_SCHEMA = BlockSchema(
    attrs=_TASK_ATTRS,
    blocks={"metrics": NestedBlock(METRICS_SCHEMA, labels=("kind",), label_choices=METRICS_KINDS)},
    open_attrs=True,  # provider-specific attributes, checked against the provider's schema
)
TRIAL_SCHEMA = BlockSchema(
    attrs={**_TASK_ATTRS, "retries": _S("int")},
    blocks={
        "metrics": NestedBlock(METRICS_SCHEMA, labels=("kind",), label_choices=METRICS_KINDS),
        "task": NestedBlock(TASK_SCHEMA, labels=("name",)),
    },
    open_attrs=True,
)
PARAM_SCHEMA = BlockSchema(
    attrs={
        "type": _S("string", required=True),
        "low": _S("number"),
        "high": _S("number"),
        "q": _S("number"),
        "mu": _S("number"),
        "sigma": _S("number"),
        "values": _S("list"),
        "step": _S("number"),
        "log": _S("bool"),
        "when": _S("map"),
    }
)
OBJECTIVE_SCHEMA = BlockSchema(
    attrs={
        "metric": _S("string"),
        "metrics": _S("map"),
        "direction": _S("string", required=True),
        "goal": _S("number"),
        "reduce": _S("string"),
    }
)
EXPERIMENT_SCHEMA = BlockSchema(
    attrs={
        "description": _S("string"),
        "max_trials": _S("int", required=True),
        "max_concurrent": _S("int"),
        "max_failed_trials": _S("int"),
        "max_duration": _S("duration"),
        "max_trials_without_improvement": _S("int"),
    },
    blocks={
        "algorithm": NestedBlock(_ANY_SETTINGS, ("name",), 1, True, ALGORITHMS),
        "objective": NestedBlock(OBJECTIVE_SCHEMA, (), 1, True),
        "early_stopping": NestedBlock(_ANY_SETTINGS, ("name",), 1, False, EARLY_STOPPING),
        "param": NestedBlock(PARAM_SCHEMA, ("name",)),
        "trial": NestedBlock(TRIAL_SCHEMA, (), 1, True),
        "lifecycle": NestedBlock(
            BlockSchema(attrs={"prevent_destroy": _S("bool"), "ignore_changes": _S("list")}),
            (),
            1,
        ),
    },
)
BACKEND_KINDS = ("local", "s3")
STORAGE_KINDS = ("local", "s3")
ROOT_SCHEMA = BlockSchema(
    blocks={
        "tunectl": NestedBlock(
            BlockSchema(
                attrs={"required_version": _S("string")},
                blocks={"backend": NestedBlock(_ANY_SETTINGS, ("kind",), 1, False, BACKEND_KINDS)},
            ),
            (),
            1,
        ),
        "variable": NestedBlock(_ANY_SETTINGS, ("name",)),
        "locals": NestedBlock(_ANY_SETTINGS),
        "provider": NestedBlock(_ANY_SETTINGS, ("name",)),
        "storage": NestedBlock(_ANY_SETTINGS, ("kind",), 1, False, STORAGE_KINDS),
        "experiment": NestedBlock(EXPERIMENT_SCHEMA, ("name",)),
        "output": NestedBlock(
            BlockSchema(
                attrs={
                    "value": _S(required=True),
                    "description": _S("string"),
                    "sensitive": _S("bool"),
                }
            ),
            ("name",),
        ),
    }
)
BACKEND_SCHEMAS = {
    "local": {"path": "string"},
    "s3": {
        "bucket": "string",
        "key": "string",
        "endpoint": "string",
        "region": "string",
        "profile": "string",
        "force_path_style": "bool",
        "retry_window": "string",
    },
}
STORAGE_SCHEMAS = {
    "local": {"path": "string", "keep": "any"},
    "s3": {
        "bucket": "string",
        "prefix": "string",
        "endpoint": "string",
        "region": "string",
        "profile": "string",
        "force_path_style": "bool",
        "keep": "any",
        "retry_window": "string",
    },
}
REQUIRED_SETTINGS = {("backend", "s3"): ("bucket", "key"), ("storage", "s3"): ("bucket",)}


def config_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.hcl") if p.is_file())


def load_config(
    directory: Path,
    cli_vars: Sequence[str] = (),
    var_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Parse, evaluate and check a configuration directory; DiagnosticError on any error."""
    environ = os.environ if environ is None else environ
    diags = Diagnostics()
    sources = SourceFiles()
    files = config_files(directory)
    if not directory.is_dir():
        raise DiagnosticError(
            error("No configuration directory", f"The directory {directory} does not exist.")
        )
    if not files:
        raise DiagnosticError(
            error(
                "No configuration files",
                f"The directory {directory} contains no *.hcl files. Write an experiment "
                "in a file such as main.hcl, or point --chdir at the right directory.",
            )
        )
    root = Body(range=SourceRange(files[0].name, 1))
    for path in files:
        name = path.name
        try:
            check_size(path.stat().st_size, name)  # before reading a huge file at all
            text = path.read_text(encoding="utf-8")
        except DiagnosticError as exc:
            diags.extend(exc.diags)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            diags.append(error("Failed to read file", f"{path}: {exc}."))
            continue
        sources.texts[name] = text
        try:
            body = parse(text, name)
        except DiagnosticError as exc:
            diags.extend(exc.diags)
            continue
        for attr in body.attributes.values():
            diags.append(
                error(
                    "Unsupported argument",
                    f'An argument named "{attr.name}" is not expected at the top level; '
                    "top-level content is blocks: experiment, variable, locals, provider, "
                    "storage, output, tunectl.",
                    attr.range,
                )
            )
        root.blocks.extend(body.blocks)
    if diags.has_errors():
        raise DiagnosticError(diags)
    check_body(root, ROOT_SCHEMA, None, diags)
    _check_names(root, diags)
    _check_unique(root, ("experiment", "provider", "output"), diags)

    var_blocks = root.blocks_of("variable")
    declared = variables_mod.declare(var_blocks, diags)
    values = variables_mod.resolve(declared, cli_vars, var_files, environ, diags)
    if diags.has_errors():
        raise DiagnosticError(diags)
    hidden = frozenset(("var", n) for n, v in declared.items() if v.sensitive)
    redactor = Redactor()
    for _, name in hidden:
        redactor.add(values.get(name))
    try:
        return _evaluated(
            directory, sources, root, declared, values, hidden, redactor, var_blocks, diags
        )
    except DiagnosticError as exc:
        # A message may quote the value it rejects; none may show a sensitive one.
        raise DiagnosticError(redactor.diagnostics(exc.diags)) from None


def _evaluated(
    directory: Path,
    sources: SourceFiles,
    root: Body,
    declared: dict[str, Variable],
    values: dict[str, Any],
    hidden: frozenset[tuple[str, str]],
    redactor: Redactor,
    var_blocks: Sequence[Block],
    diags: Diagnostics,
) -> Config:
    variables_mod.validate(var_blocks, values, diags, {n for _, n in hidden})
    local_values, tainted = _locals(root.blocks_of("locals"), values, hidden, diags)
    for name in tainted:
        redactor.add(local_values.get(name))
    hidden |= {("local", n) for n in tainted}
    scope = Scope(variables=values, locals=local_values, sensitive=hidden)

    providers = _providers(root, scope, diags)
    backend = BackendConfig(*_backend_or_storage(root, "backend", scope, diags))
    storage = StorageConfig(*_backend_or_storage(root, "storage", scope, diags))
    experiments: dict[str, Experiment] = {}
    for block in root.blocks_of("experiment"):
        if len(block.labels) == 1 and block.labels[0] not in experiments:
            exp = _experiment(block, scope, providers, diags)
            if exp is not None:
                experiments[exp.name] = exp
    declared_experiments = {b.labels[0] for b in root.blocks_of("experiment") if len(b.labels) == 1}
    outputs = _outputs(root, scope, declared_experiments, diags)
    if diags.has_errors():
        raise DiagnosticError(diags)
    digest = hashlib.sha256()
    for name in sorted(sources.texts):
        digest.update(name.encode() + b"\0" + sources.texts[name].encode() + b"\0")
    # Sensitive values stay out of this plain hash (a plan file records it): the workspace
    # adds an HMAC of them keyed by the state's salt.
    plain = {k: v for k, v in values.items() if not declared[k].sensitive}
    digest.update(json.dumps(plain, sort_keys=True, default=str).encode())
    return Config(
        directory=directory,
        sources=sources,
        variables=declared,
        values=values,
        locals=local_values,
        providers=providers,
        storage=storage,
        backend=backend,
        experiments=experiments,
        outputs=outputs,
        digest=digest.hexdigest(),
    )


def _check_names(root: Body, diags: Diagnostics) -> None:
    """Every name the user chose follows the one name rule (variables: variables.py).

    Provider, backend and storage labels are not checked here: they must name an installed
    plugin or a known kind, which their own checks say.
    """

    def check(block: Block, kind: str, context: str | None) -> None:
        if len(block.labels) == 1:
            diag = check_name(block.labels[0], kind, block.range, context)
            if diag is not None:
                diags.append(diag)

    for block in root.blocks_of("experiment"):
        check(block, "experiment", None)
        # A context line would repeat an invalid name, which may be thousands of characters.
        valid = len(block.labels) == 1 and is_valid_name(block.labels[0])
        context = block_context(block) if valid else None
        for param in block.body.blocks_of("param"):
            check(param, "parameter", context)
        for trial in block.body.blocks_of("trial"):
            for task in trial.body.blocks_of("task"):
                check(task, "task", context)
    for block in root.blocks_of("output"):
        check(block, "output", None)
    for block in root.blocks_of("locals"):
        for name, attr in block.body.attributes.items():
            diag = check_name(name, "local value", attr.range)
            if diag is not None:
                diags.append(diag)


def load_backend(
    directory: Path,
    cli_vars: Sequence[str] = (),
    var_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[BackendConfig, list[str]]:
    """What `init` needs when the configuration cannot be fully evaluated for want of
    variable values: the backend, and the providers the configuration names. Only the
    variables the backend uses need values (SPEC 6 "Terraform's lifecycle")."""
    environ = os.environ if environ is None else environ
    diags = Diagnostics()
    root = Body(range=SourceRange("main.hcl", 1))
    for path in config_files(directory):
        root.blocks.extend(parse(path.read_text(encoding="utf-8"), path.name).blocks)
    backends = [b for t in root.blocks_of("tunectl") for b in t.body.blocks_of("backend")]
    used = {
        str(ref[1])
        for block in backends
        for attr in block.body.attributes.values()
        for ref, _ in references(attr.expr)
        if ref[0] == "var" and len(ref) > 1
    }
    declared = variables_mod.declare(root.blocks_of("variable"), diags)
    found = Diagnostics()
    values = variables_mod.resolve(declared, cli_vars, var_files, environ, found)
    for diag in found:
        name = (diag.context or "").removeprefix('in variable "').removesuffix('"')
        if diag.summary != "No value for required variable":
            diags.append(diag)
        elif name in used:
            detail = diag.detail + " init needs it: the backend uses it."
            diags.append(dataclasses.replace(diag, detail=detail))
    diags.raise_if_errors()
    scope = Scope(variables=values, locals={})
    backend = BackendConfig(*_backend_or_storage(root, "backend", scope, diags))
    diags.raise_if_errors()
    names = {b.labels[0] for b in root.blocks_of("provider") if len(b.labels) == 1}
    for block in root.blocks_of("experiment"):
        for trial in block.body.blocks_of("trial"):
            attr = trial.body.attributes.get("provider")
            if attr is None:
                names.add("local")  # the trial's default provider
                continue
            with contextlib.suppress(DiagnosticError):
                names.add(str(evaluate(attr.expr, scope)))
    return backend, sorted(names)


def _check_unique(root: Body, types: Sequence[str], diags: Diagnostics) -> None:
    for type_ in types:
        seen: dict[str, SourceRange] = {}
        for block in root.blocks_of(type_):
            if len(block.labels) != 1:
                continue
            name = block.labels[0]
            if name in seen:
                diags.append(
                    error(
                        f"Duplicate {type_} block",
                        f'A {type_} named "{name}" was already declared at {seen[name]}. '
                        f"{type_.capitalize()} names must be unique within a configuration.",
                        block.range,
                    )
                )
            else:
                seen[name] = block.range


def _locals(
    blocks: Sequence[Block],
    values: Mapping[str, Any],
    hidden: frozenset[tuple[str, str]],
    diags: Diagnostics,
) -> tuple[dict[str, Any], set[str]]:
    """The local values, and the names of those that are sensitive (they refer to a
    sensitive variable or to a sensitive local)."""
    pending = {}
    for block in blocks:
        for name, attr in block.body.attributes.items():
            if name in pending:
                diags.append(
                    error(
                        "Duplicate local value definition",
                        f'A local value named "{name}" was already defined.',
                        attr.range,
                    )
                )
            pending[name] = attr
    # One topological pass (Kahn's algorithm): each local's references are read once and
    # each is evaluated once, so n chained locals cost O(n), whatever order they are
    # written in. What is never ready is in a cycle or depends on one.
    waiting_on: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    for name, attr in pending.items():
        deps = {
            str(path[1])
            for path, _ in references(attr.expr)
            if path[0] == "local" and len(path) > 1 and path[1] in pending
        }
        waiting_on[name] = len(deps)
        for dep in deps:
            dependents.setdefault(dep, []).append(name)
    ready = [name for name, count in waiting_on.items() if count == 0]
    out: dict[str, Any] = {}
    scope = Scope(variables=values, locals=out)  # `out` fills in as locals are evaluated
    tainted: set[str] = set()
    secret = set(hidden)  # references whose value is sensitive: grows with tainted locals
    while ready:
        name = ready.pop()
        if refers_to(pending[name].expr, secret):
            tainted.add(name)
            secret.add(("local", name))
        try:
            out[name] = _evaluate(pending[name].expr, scope)
        except DiagnosticError as exc:
            diags.extend(exc.diags)
        for dependent in dependents.get(name, ()):
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                ready.append(dependent)
        del waiting_on[name]
    for name in waiting_on:
        diags.append(
            error(
                "Cycle in local values",
                f"local.{name} depends on itself through other local values.",
                pending[name].range,
            )
        )
    return out, tainted


def _evaluate(expr, scope: Scope) -> Any:
    from tunectl.hcl.expr import evaluate

    return evaluate(expr, scope)


def _provider_class(name: str, where: SourceRange | None, context: str | None, diags: Diagnostics):
    try:
        return registry.load(name)
    except KeyError:
        installed = sorted(registry.entries())
        diags.append(
            error(
                "Unknown provider",
                f'No provider named "{name}" is installed.{did_you_mean(name, installed)} '
                f"Installed providers: {', '.join(installed) or 'none'}. Install the provider's "
                f"package (e.g. pip install tunectl-provider-{name}) and run tunectl init.",
                where,
                context,
            )
        )
    except registry.ProviderLoadError as exc:
        diags.append(error("Failed to load provider", f"{exc}.", where, context))
    return None


def _settings(
    body: Body,
    specs: Sequence[AttrSpec],
    reader: Reader,
    skip: Sequence[str],
    what: str,
    deferred: bool = False,
) -> dict[str, Any]:
    """Evaluate a body's provider-specific attributes against the provider's AttrSpecs."""
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for name, attr in body.attributes.items():
        if name in skip:
            continue
        spec = by_name.get(name)
        if spec is None:
            reader.fail(
                attr,
                "Unsupported argument",
                f'An argument named "{name}" is not expected in {what}.'
                f"{did_you_mean(name, list(by_name) + list(skip))}",
            )
            continue
        type_ = {"list(string)": "list", "map(string)": "map"}.get(spec.type, spec.type)
        value = reader.get(name, type_)
        if value is None:
            continue
        if isinstance(value, Template) and not deferred:
            reader.fail(
                attr,
                "Value not known until a trial is created",
                f'"{name}" cannot use placeholders.',
            )
            continue
        if spec.choices and value not in spec.choices:
            reader.fail(
                attr,
                "Invalid value",
                f'"{value}" is not a valid {name}.{did_you_mean(str(value), spec.choices)} '
                f"Choose one of: {', '.join(spec.choices)}.",
            )
            continue
        out[name] = value
    for spec in specs:
        if spec.required and spec.name not in body.attributes:
            reader.fail(
                None,
                "Missing required argument",
                f'The argument "{spec.name}" is required in {what}.',
            )
        elif spec.name not in out and spec.default is not None:
            out[spec.name] = spec.default
    return out


def _providers(root: Body, scope: Scope, diags: Diagnostics) -> dict[str, ProviderConfig]:
    out: dict[str, ProviderConfig] = {}
    for block in root.blocks_of("provider"):
        if len(block.labels) != 1 or block.labels[0] in out:
            continue
        name = block.labels[0]
        context = block_context(block)
        cls = _provider_class(name, block.range, context, diags)
        if cls is None:
            continue
        reader = Reader(block.body, scope, context, diags)
        settings = _settings(block.body, cls.config_schema, reader, (), f'provider "{name}"')
        for sub in block.body.blocks:
            diags.append(
                error(
                    "Unsupported block type",
                    f'Blocks of type "{sub.type}" are not expected here.',
                    sub.range,
                    context,
                )
            )
        out[name] = ProviderConfig(name, settings, block.range)
        diags.extend(check_provider_block(cls, settings, block.body, block.range, context))
    return out


def _backend_or_storage(
    root: Body, kind: str, scope: Scope, diags: Diagnostics
) -> tuple[str, dict[str, Any], SourceRange | None]:
    """The kind, settings and location of the backend or storage block (or the default)."""
    default: tuple[str, dict[str, Any], SourceRange | None]
    if kind == "backend":
        blocks = [b for t in root.blocks_of("tunectl") for b in t.body.blocks_of("backend")]
        default = ("local", {"path": "state/tunectl.db"}, None)
        schemas = BACKEND_SCHEMAS
    else:
        blocks = root.blocks_of("storage")
        default = ("local", {"path": "state/models", "keep": "all"}, None)
        schemas = STORAGE_SCHEMAS
    if not blocks or len(blocks[0].labels) != 1 or blocks[0].labels[0] not in schemas:
        return default
    block = blocks[0]
    label = block.labels[0]
    context = block_context(block)
    reader = Reader(block.body, scope, context, diags)
    specs = [AttrSpec(n, t) for n, t in schemas[label].items()]
    settings = _settings(block.body, specs, reader, (), f'{kind} "{label}"')
    for required in REQUIRED_SETTINGS.get((kind, label), ()):
        if required not in settings:
            reader.fail(
                None,
                "Missing required argument",
                f'The argument "{required}" is required in {kind} "{label}".',
            )
    for sensitive in ("access_key", "secret_key", "token"):
        if sensitive in block.body.attributes:
            reader.fail(
                block.body.attributes[sensitive],
                "Credentials in configuration",
                "Credentials never go in HCL: use the standard credential chain (environment "
                "or profile).",
            )
    if "keep" in settings:
        keep = settings["keep"]
        if not (
            keep in ("all", "best")
            or (isinstance(keep, int) and not isinstance(keep, bool) and keep > 0)
        ):
            reader.fail(
                block.body.attributes["keep"],
                "Invalid value",
                'keep must be "all", "best" or a positive number of best trials.',
            )
    _check_s3_settings(block, settings, reader)
    if kind == "storage":
        settings.setdefault("keep", "all")
    return label, settings, block.range


def _check_s3_settings(block: Block, settings: Mapping[str, Any], reader: Reader) -> None:
    """An endpoint must be an http(s) URL with a host (botocore's own check fails late,
    without a location); a retry window is a positive duration."""
    from urllib.parse import urlsplit

    endpoint = settings.get("endpoint")
    if isinstance(endpoint, str) and endpoint:
        try:
            parts = urlsplit(endpoint)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # e.g. a port that is not a number
            ok = False
        if not ok:
            reader.fail(
                block.body.attributes["endpoint"],
                "Invalid endpoint",
                f"{endpoint!r} is not an endpoint URL: write the scheme and host, such as "
                '"https://oss-cn-hangzhou.aliyuncs.com" or "http://127.0.0.1:9000".',
            )
    window = settings.get("retry_window")
    if isinstance(window, str):
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            reader.fail(block.body.attributes["retry_window"], "Invalid retry_window", str(exc))
            return
        if seconds <= 0:
            reader.fail(
                block.body.attributes["retry_window"],
                "Invalid retry_window",
                'retry_window must be longer than 0, such as "30s" or "10m" (the default).',
            )


def _experiment(
    block: Block, scope: Scope, providers: Mapping[str, ProviderConfig], diags: Diagnostics
) -> Experiment | None:
    from tunectl.search.space import validate_pruner, validate_space

    name = block.labels[0]
    context = block_context(block)
    start = len(diags)
    body = block.body
    reader = Reader(body, scope, context, diags)
    ranges = {n: a.range for n, a in body.attributes.items()}
    for sub in body.blocks:
        ranges.setdefault(sub.type, sub.range)

    params: list[ParamSpec] = []
    seen_params: set[str] = set()
    for pb in body.blocks_of("param"):
        if len(pb.labels) != 1:
            continue
        if pb.labels[0] in seen_params:
            diags.append(
                error(
                    "Duplicate param block",
                    f'A parameter named "{pb.labels[0]}" is already declared in this experiment.',
                    pb.range,
                    context,
                )
            )
            continue
        seen_params.add(pb.labels[0])
        p = _param(pb, scope, context, diags)
        if p is not None:
            params.append(p)
    if not body.blocks_of("param"):
        diags.append(
            error(
                "Missing required block",
                'An experiment needs at least one param "NAME" block.',
                block.range,
                context,
            )
        )

    algorithm = Algorithm("tpe")
    for ab in body.blocks_of("algorithm")[:1]:
        settings = _open_settings(ab, scope, context, diags)
        algorithm = Algorithm(ab.labels[0] if ab.labels else "tpe", tuple(sorted(settings.items())))
    early = EarlyStopping()
    for eb in body.blocks_of("early_stopping")[:1]:
        settings = _open_settings(eb, scope, context, diags)
        early = EarlyStopping(
            eb.labels[0] if eb.labels else "none", tuple(sorted(settings.items()))
        )
        for sentence in validate_pruner(early):
            diags.append(error("Invalid early stopping", sentence, eb.range, context))

    objective = None
    for ob in body.blocks_of("objective")[:1]:
        objective = _objective(ob, scope, context, diags)
    trial = None
    for tb in body.blocks_of("trial")[:1]:
        trial = _trial(tb, scope, providers, context, {p.name: p for p in params}, diags)

    lifecycle = Lifecycle()
    for lb in body.blocks_of("lifecycle")[:1]:
        lr = Reader(lb.body, scope, context, diags)
        ignore = lr.get("ignore_changes", "list", [])
        for item in ignore:
            if not isinstance(item, str):
                lr.fail(
                    lb.body.attributes.get("ignore_changes"),
                    "Invalid ignore_changes",
                    "ignore_changes lists attribute names as strings.",
                )
        lifecycle = Lifecycle(
            lr.get("prevent_destroy", "bool", False), tuple(str(i) for i in ignore)
        )

    max_trials = reader.get("max_trials", "int", 1)
    max_concurrent = reader.get("max_concurrent", "int", 1)
    max_failed = reader.get("max_failed_trials", "int")
    max_duration = reader.get("max_duration", "duration")
    without = reader.get("max_trials_without_improvement", "int")
    for attr_name, value, low in (
        ("max_trials", max_trials, 1),
        ("max_concurrent", max_concurrent, 1),
        ("max_failed_trials", max_failed, 0),
        ("max_trials_without_improvement", without, 1),
    ):
        if value is not None and value < low:
            reader.fail(
                body.attributes.get(attr_name),
                "Invalid value",
                f"{attr_name} must be at least {low}, got {value}.",
            )
    if max_duration is not None and max_duration <= 0:
        reader.fail(
            body.attributes.get("max_duration"),
            "Invalid value",
            "max_duration must be longer than zero.",
        )

    for pname, sentence in validate_space(algorithm, params):
        where = next((p.range for p in params if p.name == pname), None)
        where = where or ranges.get("algorithm") or block.range
        diags.append(error("Invalid search space", sentence, where, context))

    if len(diags) > start and Diagnostics(diags[start:]).has_errors():
        return None
    assert objective is not None and trial is not None
    return Experiment(
        name=name,
        algorithm=algorithm,
        objective=objective,
        params=tuple(params),
        trial=trial,
        description=reader.get("description", "string", ""),
        max_trials=max_trials,
        max_concurrent=max_concurrent,
        max_failed_trials=max_failed,
        max_duration=max_duration,
        max_trials_without_improvement=without,
        early_stopping=early,
        lifecycle=lifecycle,
        range=block.range,
        ranges=ranges,
        sensitive=_sensitive_paths(block, trial, scope.sensitive),
    )


def _sensitive_paths(
    block: Block, trial: TrialSpec, hidden: frozenset[tuple[str, str]]
) -> frozenset[str]:
    """The canonical paths (`tunectl.plans.differ.canonical`) of an experiment whose
    values derive from sensitive variables."""
    if not hidden:
        return frozenset()
    out: set[str] = set()
    for name, attr in block.body.attributes.items():
        if refers_to(attr.expr, hidden):
            out.add(name)
    for sub in block.body.blocks:
        if sub.type == "trial":
            for name in ("provider", "timeout", "retries"):
                found = sub.body.attributes.get(name)
                if found is not None and refers_to(found.expr, hidden):
                    out.add(f"trial.{name}")
            continue
        prefix = f"param.{sub.labels[0]}." if sub.type == "param" and sub.labels else sub.type + "."
        for name, attr in sub.body.attributes.items():
            if refers_to(attr.expr, hidden):
                out.add(prefix + name)
    for task in trial.tasks:
        out.update(f"trial.task.{task.name}.{path}" for path in task.sensitive)
    return frozenset(out)


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


def _open_settings(block: Block, scope: Scope, context: str, diags: Diagnostics) -> dict[str, Any]:
    reader = Reader(block.body, scope, context, diags)
    out = {}
    for name in block.body.attributes:
        value = reader.get(name)
        if isinstance(value, Template):
            reader.fail(
                block.body.attributes[name],
                "Value not known until a trial is created",
                "Settings cannot use placeholders.",
            )
        elif value is not None:
            out[name] = value
    for sub in block.body.blocks:
        diags.append(
            error(
                "Unsupported block type",
                f'Blocks of type "{sub.type}" are not expected here.',
                sub.range,
                context,
            )
        )
    return out


def _param(block: Block, scope: Scope, context: str, diags: Diagnostics) -> ParamSpec | None:
    from tunectl.search.space import validate_param

    reader = Reader(block.body, scope, context, diags)
    type_ = reader.get("type", "string")
    if type_ is None:
        return None
    if type_ not in PARAM_TYPES:
        reader.fail(
            block.body.attributes.get("type"),
            "Unknown parameter type",
            f'"{type_}" is not a parameter type.{did_you_mean(type_, PARAM_TYPES)} '
            f"Choose one of: {', '.join(PARAM_TYPES)}.",
        )
        return None
    values = reader.get("values", "list", [])
    when = reader.get("when", "map", {})
    spec = ParamSpec(
        name=block.labels[0],
        type=type_,
        low=reader.get("low", "number"),
        high=reader.get("high", "number"),
        q=reader.get("q", "number"),
        mu=reader.get("mu", "number"),
        sigma=reader.get("sigma", "number"),
        values=tuple(values),
        step=reader.get("step", "number"),
        log=reader.get("log", "bool", False),
        when=tuple(sorted(when.items())),
        range=block.range,
    )
    for sentence in validate_param(spec):
        diags.append(
            error("Invalid parameter", f'Parameter "{spec.name}": {sentence}', block.range, context)
        )
    return spec


def _objective(block: Block, scope: Scope, context: str, diags: Diagnostics) -> Objective | None:
    reader = Reader(block.body, scope, context, diags)
    direction = reader.get("direction", "string", "maximize")
    if direction not in ("maximize", "minimize"):
        reader.fail(
            block.body.attributes.get("direction"),
            "Invalid direction",
            'direction must be "maximize" or "minimize", got '
            f'"{direction}".{did_you_mean(str(direction), ("maximize", "minimize"))}',
        )
    metric = reader.get("metric", "string")
    metrics = reader.get("metrics", "map")
    if (metric is None) == (metrics is None):
        reader.fail(
            None,
            "Invalid objective",
            'Set exactly one of metric = "NAME" or metrics = { NAME = WEIGHT, ... }.',
        )
    weights: list[tuple[str, float]] = []
    for key, weight in (metrics or {}).items():
        try:
            weights.append((key, float(convert(weight, "number"))))
        except ValueError:
            reader.fail(
                block.body.attributes.get("metrics"),
                "Invalid objective",
                f'The weight of "{key}" must be a number.',
            )
    if metrics is not None and not metrics:
        reader.fail(
            block.body.attributes.get("metrics"),
            "Invalid objective",
            "metrics needs at least one NAME = WEIGHT entry.",
        )
    reduce = reader.get("reduce", "string", "final")
    if reduce not in ("final", "best", "avg"):
        reader.fail(
            block.body.attributes.get("reduce"),
            "Invalid reduce",
            f'reduce must be "final", "best" or "avg", got "{reduce}".',
        )
    return Objective(
        direction, metric, tuple(sorted(weights)), reader.get("goal", "number"), reduce
    )


def _check_placeholders(
    value: Any,
    params: Mapping[str, ParamSpec],
    attr,
    reader: Reader,
    position: str = "env",
    provider: Any = None,
) -> None:
    """Refuse placeholders that name nothing, and values that cannot be placed safely.

    `position` is "command" (the body's kind, declared by `provider`, says where a
    placeholder's value can be quoted: a string command runs through a shell), "workdir"
    (no value may add or climb a level: see `path_component_problem`) or "env" (any text
    without NUL).
    """
    from tunectl.engine.trials import format_value, path_component_problem

    items = (
        value
        if isinstance(value, list)
        else list(value.values())
        if isinstance(value, dict)
        else [value]
    )
    if position == "command":
        for summary, detail in body_problems(provider, "command", value):
            reader.fail(attr, summary, detail)
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


def _metrics(
    body: Body,
    scope: Scope,
    context: str,
    diags: Diagnostics,
    params: Mapping[str, ParamSpec],
    workdir: Any,
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
        need = {"json": "path", "tensorboard": "logdir", "table": "sql"}.get(kind)
        if need and need not in settings:
            reader.fail(None, "Missing required argument", f'metrics "{kind}" needs "{need}".')
        if kind == "json" and settings.get("path") is not None:
            where = mb.body.attributes["path"]
            _check_metrics_file(settings["path"], workdir, params, where, reader)
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


# Placeholders that differ between any two trials, of any experiment and generation.
_PER_TRIAL = (("trial", "id"), ("trial", "model_dir"))


def _per_trial(value: Any) -> bool:
    return isinstance(value, Template) and any(r in _PER_TRIAL for r in value.references())


def _check_metrics_file(
    path: Any, workdir: Any, params: Mapping[str, ParamSpec], attr, reader: Reader
) -> None:
    """A metrics file must be one trial's alone: a shared file holds other trials' lines."""
    _check_placeholders(path, params, attr, reader)
    relative = not str(path).startswith("/")
    if _per_trial(path) or (relative and _per_trial(workdir)):
        return
    reader.fail(
        attr,
        "Metrics file shared by trials",
        f'The metrics file "{path}" would be the same file for every trial, and a trial '
        "would read the lines of others. Make the path unique per trial with ${trial.id} "
        '(path = "metrics-${trial.id}.jsonl") or ${trial.model_dir}, or keep it relative '
        'and give the trial its own working directory (workdir = "${trial.model_dir}").',
    )


def _trial(
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
        cls = _provider_class(
            provider, (block.body.attributes.get("provider") or block).range, context, diags
        )
        if cls is None:
            return None
    else:
        cls = registry.load(provider)
    task_blocks = block.body.blocks_of("task")
    common = ("provider", "command", "workdir", "env", "timeout", "retries")
    if task_blocks and "command" in block.body.attributes:
        reader.fail(
            block.body.attributes["command"],
            "Conflicting task definitions",
            'Write either one command in trial, or task "NAME" blocks, not both.',
        )
        return None
    if not task_blocks and "command" not in block.body.attributes:
        reader.fail(
            None, "Missing required argument", 'The trial needs a command, or task "NAME" blocks.'
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
    shared_settings = _settings(
        block.body, cls.trial_schema, reader, common, f'a "{provider}" trial', True
    )
    shared_metrics = _metrics(block.body, trial_scope, context, diags, params, shared_workdir)
    shared_sensitive = _task_sensitive(block.body, scope.sensitive)
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
        command = tr.get("command", "command")
        if command is None:
            if "command" not in body.attributes:
                tr.fail(None, "Missing required argument", f'task "{tname}" needs a command.')
            continue
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
                _settings(body, cls.trial_schema, tr, common, f'a "{provider}" task', True)
            )
        workdir = tr.get("workdir", "string") if body is not block.body else None
        for attr_name, value in (
            ("command", command),
            ("env", env),
            ("workdir", workdir or shared_workdir),
        ):
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
            else _metrics(body, trial_scope, context, diags, params, workdir or shared_workdir)
        )
        task_timeout = tr.get("timeout", "duration") if body is not block.body else None
        tasks.append(
            TaskSpec(
                name=tname,
                provider=provider,
                command=command,
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
        diags.extend(check_task(cls, config, settings, tname, written, where, context))
    bodies = [block.body, *(b.body for b in task_blocks)]
    diags.extend(check_metric_sources(cls, bodies, context, skip=UNSUPPORTED_METRICS))
    return TrialSpec(provider, tuple(tasks), timeout, retries or 0, block.range)


def _outputs(
    root: Body, scope: Scope, experiments: set[str], diags: Diagnostics
) -> dict[str, Output]:
    out: dict[str, Output] = {}
    for block in root.blocks_of("output"):
        if len(block.labels) != 1 or block.labels[0] in out:
            continue
        name = block.labels[0]
        context = block_context(block)
        attr = block.body.attributes.get("value")
        if attr is None:
            continue
        for path, where in references(attr.expr):
            root_name = path[0]
            if root_name == "experiment":
                if len(path) < 2 or path[1] not in experiments:
                    got = str(path[1]) if len(path) > 1 else ""
                    diags.append(
                        error(
                            "Reference to undeclared experiment",
                            f'An experiment named "{got}" has not been declared in this '
                            f"configuration.{did_you_mean(got, experiments)}",
                            where,
                            context,
                        )
                    )
            elif root_name not in ("var", "local"):
                diags.append(
                    error(
                        "Invalid reference",
                        f'A reference to "{".".join(map(str, path))}" is not valid here: '
                        "outputs may use experiment.NAME.*, var.* and local.*.",
                        where,
                        context,
                    )
                )
        reader = Reader(block.body, scope, context, diags)
        sensitive = reader.get("sensitive", "bool", False)
        if not sensitive and refers_to(attr.expr, scope.sensitive):
            diags.append(
                error(
                    "Output refers to sensitive values",
                    "To reduce the risk of accidentally exporting sensitive data that was "
                    "intended to be only internal, tunectl requires that any output containing "
                    "sensitive data be explicitly marked as sensitive, to confirm your intent.\n\n"
                    "If you do intend to export this data, annotate the output value as "
                    "sensitive by adding the following argument:\n    sensitive = true",
                    block.range,
                    context,
                )
            )
        out[name] = Output(
            name=name,
            expr=attr.expr,
            description=reader.get("description", "string", ""),
            sensitive=sensitive,
            range=block.range,
        )
    return out
