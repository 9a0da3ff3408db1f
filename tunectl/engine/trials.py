"""How one trial's tasks are described to a provider: keys, placeholders, requests.

Everything here is a pure function of the experiment, the trial's number and parameters,
and the state's lineage — so a restarted apply rebuilds exactly the request (and key) it
submitted before, which is what makes submission idempotent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunectl.config.model import Experiment, TaskSpec
from tunectl.diags import DiagnosticError, error
from tunectl.hcl.values import Template, format_path, format_value
from tunectl.names import path_component_problem
from tunectl.providers.base import TaskRequest
from tunectl.providers.bodies import COMMAND, SQL, BodyKind, BodySpec, UnsafePlaceholder
from tunectl.s3 import is_object_uri


def trial_id(experiment: str, generation: int, number: int) -> str:
    """`${trial.id}`: `NAME-gG-tN`, unique within a state's lineage, since a generation is
    never drawn twice there (and the exact name and decimal numbers read back one way)."""
    return f"{experiment}-g{generation}-t{number}"


KEY_LIMIT = 64


def task_key(
    lineage: str, experiment: str, generation: int, number: int, task_index: int, attempt: int
) -> str:
    """A provider-safe unique key: `[a-z0-9-]+`, at most 64 characters.

    `tk-LLLLLLLL-SLUG-DDDDDDDDDD-gG-tN-kI-aA`: the lineage's first 8 characters and a
    readable slug of the name, for people; a digest of the full lineage and the *exact*
    name, so `a_b` and `a-b` (or two non-ASCII names with one slug) differ; and the numbers
    in decimal. Keys are recorded in the state when their task is, and never recomputed:
    tasks recorded by an older tunectl keep their `tc-` keys, which no `tk-` key equals.
    """
    digest = hashlib.sha256(f"{lineage}\0{experiment}".encode()).hexdigest()[:10]
    lin = re.sub(r"[^a-z0-9]", "", lineage.lower())[:8] or "0"
    tail = f"-{digest}-g{generation}-t{number}-k{task_index}-a{attempt}"
    head = f"tk-{lin}"
    room = KEY_LIMIT - len(head) - len(tail) - 1
    slug = re.sub(r"[^a-z0-9]+", "-", experiment.lower()).strip("-")[: max(room, 0)].strip("-")
    key = f"{head}-{slug}{tail}" if slug else head + tail
    if len(key) > KEY_LIMIT:
        raise ValueError(f"A task key cannot hold generation {generation}, trial {number}.")
    return key


class Placeholders:
    """Values for `${param.*}`, `${trial.*}` and `${experiment.name}` of one trial.

    Each `render_*` method substitutes for one kind of position; none ever lets a value
    become code or climb out of a path. A value that cannot be placed safely (the
    configuration's `validate` refuses those first) stops the apply with a diagnostic.
    """

    def __init__(
        self,
        exp: Experiment,
        generation: int,
        number: int,
        params: dict[str, Any],
        model_dir: str,
        parent_model_dir: str | None = None,
    ):
        self.number = number
        # PBT's parent checkpoint (tunectl.engine.pbt); None for other algorithms.
        self.parent_model_dir = parent_model_dir
        self.values: dict[tuple[str | int, ...], Any] = {
            ("trial", "id"): trial_id(exp.name, generation, number),
            ("trial", "number"): number,
            ("trial", "model_dir"): model_dir,
            ("trial", "params_json"): json.dumps(params, sort_keys=True),
            ("trial", "parent_model_dir"): parent_model_dir or "",
            ("experiment", "name"): exp.name,
        }
        for name, value in params.items():
            self.values[("param", name)] = value

    def resolve(self, path: tuple[str | int, ...]) -> str:
        if path not in self.values:
            # An inactive conditional parameter renders empty, as NNI leaves it out.
            return ""
        text = format_value(self.values[path])
        if "\0" in text:
            self._refuse(path, "contains a NUL byte, which no argument or variable can hold")
        return text

    def render(self, value: Any) -> str:
        """A value for an argument of a list command, an env value or a setting."""
        if isinstance(value, Template):
            return value.render(self.resolve)
        return str(value)

    def render_body(self, body: BodySpec, value: Any) -> str | list[str]:
        """A task body, each value quoted by the rules of the body's kind (a string
        `command` for `/bin/sh -c`: quoted for where it sits; an argv list: as it is)."""
        try:
            return body.render(value, self.resolve)
        except UnsafePlaceholder as exc:
            noun = body.noun or f'"{body.name}"'
            raise DiagnosticError(
                error(f"Unsafe placeholder in {noun}", f"Trial {self.number}: {exc}")
            ) from None

    def render_path(self, value: Any) -> str:
        """A path (`workdir`, a metrics `path`) that no value makes climb out.

        Each value must pass `path_component_problem`; `${trial.model_dir}` and
        `${trial.parent_model_dir}` are the exceptions: whole paths, chosen by tunectl.
        """
        if not isinstance(value, Template):
            return str(value)

        def component(path: tuple[str | int, ...]) -> str:
            text = self.resolve(path)
            whole = path in (("trial", "model_dir"), ("trial", "parent_model_dir"))
            problem = None if whole else path_component_problem(text)
            if problem:
                self._refuse(path, f"cannot be part of a path: {problem}")
            return text

        return value.render(component)

    def _refuse(self, path: tuple[str | int, ...], why: str) -> None:
        raise DiagnosticError(
            error(
                "Unsafe placeholder value",
                f"Trial {self.number}: the value of {format_path(path)} {why}. Change the "
                "parameter's values, or move the placeholder (see docs/security.md).",
            )
        )


def metrics_files(task: TaskSpec, placeholders: Placeholders) -> tuple[str, ...]:
    """The paths of a task's `metrics "json"` files for one trial, as written (a relative
    path is relative to the task's working directory)."""
    return tuple(
        placeholders.render(src.deferred_get("path"))
        for src in task.metrics
        if src.kind == "json" and src.get("path")
    )


def metrics_logdirs(task: TaskSpec, placeholders: Placeholders) -> dict[str, tuple[str, ...]]:
    """A task's `metrics "tensorboard"` directories for one trial, each with the tags read
    from it (none: every scalar tag)."""
    out: dict[str, tuple[str, ...]] = {}
    for src in task.metrics:
        if src.kind == "tensorboard" and src.get("logdir"):
            logdir = placeholders.render_path(src.deferred_get("logdir"))
            tag = src.get("tag")
            known = out.get(logdir)
            if known == () or (known is not None and tag is None):
                out[logdir] = ()  # one block reads every tag
            else:
                out[logdir] = (*(known or ()), *([tag] if tag else []))
    return out


def metrics_queries(
    task: TaskSpec, placeholders: Placeholders, kind: BodyKind = SQL
) -> tuple[str, ...]:
    """A task's `metrics "table"` queries for one trial, rendered by SQL rules (`kind`:
    the provider's dialect, `tunectl.providers.bodies.query_kind`)."""
    query = BodySpec("sql", (kind,), noun="a metrics query")
    return tuple(
        str(placeholders.render_body(query, src.deferred_get("sql")))
        for src in task.metrics
        if src.kind == "table" and src.get("sql")
    )


def task_bodies(task: TaskSpec) -> dict[str, Any]:
    """The body attributes the configuration gives a task, unrendered, by name: `command`
    and the other bodies its provider declares."""
    given = {"command": task.command} if task.command is not None else {}
    given.update(task.bodies)
    return given


def build_request(
    exp: Experiment,
    task: TaskSpec,
    *,
    key: str,
    placeholders: Placeholders,
    config_dir: Path,
    model_dir: str,
    trial_number: int,
    local_files: bool = True,
    bodies: Sequence[BodySpec] = (COMMAND,),
    recorded_at: float | None = None,
) -> TaskRequest:
    """The request for one task, its bodies rendered by the kinds the provider declares
    (`bodies`). A relative `workdir` is relative to the configuration directory; without
    one, a task that sees this machine's files (`local_files`) runs in the configuration
    directory, as NNI's trialCodeDirectory defaults to `.`."""
    given = task_bodies(task)
    rendered = {
        body.name: placeholders.render_body(body, given[body.name])
        for body in bodies
        if body.name in given
    }
    workdir = None
    if task.workdir is not None:
        path = Path(placeholders.render_path(task.workdir))
        workdir = str(path if path.is_absolute() else (config_dir / path).resolve())
    elif local_files:
        workdir = str(config_dir.resolve())
    env = {name: placeholders.render(value) for name, value in task.env}
    if placeholders.parent_model_dir is not None:
        env.setdefault("TUNECTL_PARENT_MODEL_DIR", placeholders.parent_model_dir)
    settings = {
        k: placeholders.render(v) if isinstance(v, Template) else v for k, v in task.settings
    }
    return TaskRequest(
        key=key,
        experiment=exp.name,
        trial_number=trial_number,
        task_name=task.name,
        bodies=rendered,
        workdir=workdir,
        env=env,
        timeout=task.timeout,
        model_dir=model_dir,
        settings=settings,
        # Objects in storage are read by tunectl, not by the provider.
        metrics_files=tuple(p for p in metrics_files(task, placeholders) if not is_object_uri(p)),
        metrics_dirs=tuple(d for d in metrics_logdirs(task, placeholders) if not is_object_uri(d)),
        tags={
            "tunectl-experiment": exp.name,
            "tunectl-trial": str(trial_number),
            "tunectl-key": key,
        },
        sensitive=frozenset(
            name if name in rendered or name == "workdir" else f"settings.{name}"
            for name in task.sensitive
            if name in rendered or name == "workdir" or name in settings
        ),
        recorded_at=recorded_at,
    )
