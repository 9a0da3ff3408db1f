"""Load a configuration directory into a `model.Config`, or fail with diagnostics.

Every `*.hcl` file in the directory is read, in name order, and checked against
`schema.ROOT_SCHEMA`; then variables (`variables.py`) and locals are evaluated, and the
blocks decoded: providers, backend and storage (`providers.py`), experiments
(`experiment.py`, whose trials are `trial.py`'s) and outputs (here). All problems found
are reported together (as Terraform does), not only the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl.config import variables as variables_mod
from tunectl.config.experiment import decode_experiment
from tunectl.config.model import (
    BackendConfig,
    Config,
    Experiment,
    Output,
    StorageConfig,
    Variable,
)
from tunectl.config.providers import backend_or_storage, decode_providers
from tunectl.config.schema import ROOT_SCHEMA, Reader
from tunectl.config.sensitive import Redactor, refers_to
from tunectl.config.templates import read_templates
from tunectl.config.warm_start import check_warm_start_sources
from tunectl.diags import (
    DiagnosticError,
    Diagnostics,
    SourceFiles,
    SourceRange,
    did_you_mean,
    error,
)
from tunectl.hcl.expr import Scope, evaluate
from tunectl.hcl.schema import block_context, check_body
from tunectl.hcl.syntax import Block, Body, check_size, parse
from tunectl.hcl.traversals import references
from tunectl.names import check_name, is_valid_name
from tunectl.s3 import is_object_uri


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

    providers = decode_providers(root, scope, diags)
    backend = BackendConfig(*backend_or_storage(root, "backend", scope, diags))
    storage = StorageConfig(*backend_or_storage(root, "storage", scope, diags))
    experiments: dict[str, Experiment] = {}
    for block in root.blocks_of("experiment"):
        if len(block.labels) == 1 and block.labels[0] not in experiments:
            exp = decode_experiment(block, scope, providers, diags)
            if exp is not None:
                read_templates(exp, directory, diags, sources)
                experiments[exp.name] = exp
    if storage.kind != "s3":
        _stored_metrics_need_storage(experiments.values(), diags)
    declared_experiments = {b.labels[0] for b in root.blocks_of("experiment") if len(b.labels) == 1}
    check_warm_start_sources(experiments, declared_experiments, diags)
    multi = {name for name, e in experiments.items() if e.objective.multi}
    outputs = _outputs(root, scope, declared_experiments, diags, multi)
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
        warnings=tuple(redactor.diagnostics(d for d in diags if d.severity == "warning")),
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
    backend = BackendConfig(*backend_or_storage(root, "backend", scope, diags))
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
            out[name] = evaluate(pending[name].expr, scope)
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


def _stored_metrics_need_storage(experiments: Iterable[Experiment], diags: Diagnostics) -> None:
    """`metrics "json" { path = "oss://..." }` is read through the `storage "s3"` client."""
    for exp in experiments:
        for task in exp.trial.tasks:
            for source in task.metrics:
                path = str(source.get("path") or source.get("logdir") or "")
                if source.kind in ("json", "tensorboard") and is_object_uri(path):
                    diags.append(
                        error(
                            "Metrics in storage need a storage block",
                            f'The metrics file "{path}" is an object in storage, which tunectl '
                            'reads with the storage "s3" block\'s endpoint and credentials; '
                            'add one (storage "s3" { bucket, endpoint }: docs/storage.md), or '
                            "give a path the provider can read.",
                            task.range,
                            f'in experiment "{exp.name}"',
                        )
                    )


def _outputs(
    root: Body, scope: Scope, experiments: set[str], diags: Diagnostics, multi: set[str]
) -> dict[str, Output]:
    """The output blocks; `multi` names the experiments with several objectives, which
    have a Pareto front and no `best`."""
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
                elif path[1] in multi and len(path) > 2 and path[2] == "best":
                    diags.append(
                        error(
                            "No single best trial",
                            f"experiment.{path[1]} has several objectives, so no best trial: "
                            f"use experiment.{path[1]}.pareto, the Pareto-optimal trials (a "
                            "list of { trial, values, params, model_uri }).",
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
