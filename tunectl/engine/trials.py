"""How one trial's tasks are described to a provider: keys, placeholders, requests.

Everything here is a pure function of the experiment, the trial's number and parameters,
and the state's lineage — so a restarted apply rebuilds exactly the request (and key) it
submitted before, which is what makes submission idempotent.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

from tunectl.config.expr import Template
from tunectl.config.model import Experiment, TaskSpec
from tunectl.providers.base import TaskRequest


def trial_id(experiment: str, generation: int, number: int) -> str:
    return f"{experiment}-g{generation}-t{number}"


def task_key(
    lineage: str, experiment: str, generation: int, number: int, task_index: int, attempt: int
) -> str:
    """A provider-safe unique key: `[a-z0-9-]+`, at most 64 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", experiment.lower()).strip("-") or "x"
    if len(slug) > 24:
        slug = slug[:17] + "-" + hashlib.sha256(experiment.encode()).hexdigest()[:6]
    return f"tc-{lineage[:8]}-{slug}-g{generation}-t{number}-k{task_index}-a{attempt}"


def format_value(value: Any) -> str:
    """A parameter value as text in a command: ints plain, floats shortest, JSON else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True)


class Placeholders:
    """Values for `${param.*}`, `${trial.*}` and `${experiment.name}` of one trial."""

    def __init__(
        self, exp: Experiment, generation: int, number: int, params: dict[str, Any], model_dir: str
    ):
        self.values: dict[tuple[str | int, ...], Any] = {
            ("trial", "id"): trial_id(exp.name, generation, number),
            ("trial", "number"): number,
            ("trial", "model_dir"): model_dir,
            ("trial", "params_json"): json.dumps(params, sort_keys=True),
            ("experiment", "name"): exp.name,
        }
        for name, value in params.items():
            self.values[("param", name)] = value

    def resolve(self, path: tuple[str | int, ...]) -> str:
        if path not in self.values:
            # An inactive conditional parameter renders empty, as NNI leaves it out.
            return ""
        return format_value(self.values[path])

    def render(self, value: Any, quote: bool = False) -> str:
        if isinstance(value, Template):
            return value.render(self.resolve, shlex.quote if quote else None)
        return str(value)


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
) -> TaskRequest:
    """The request for one task. A relative `workdir` is relative to the configuration
    directory; without one, a task that sees this machine's files (`local_files`) runs in
    the configuration directory, as NNI's trialCodeDirectory defaults to `.`."""
    command: str | list[str]
    if isinstance(task.command, list):
        command = [placeholders.render(part) for part in task.command]
    else:
        command = placeholders.render(task.command, quote=True)
    workdir = None
    if task.workdir is not None:
        path = Path(placeholders.render(task.workdir))
        workdir = str(path if path.is_absolute() else (config_dir / path).resolve())
    elif local_files:
        workdir = str(config_dir.resolve())
    env = {name: placeholders.render(value) for name, value in task.env}
    settings = {
        k: placeholders.render(v) if isinstance(v, Template) else v for k, v in task.settings
    }
    return TaskRequest(
        key=key,
        experiment=exp.name,
        trial_number=trial_number,
        task_name=task.name,
        command=command,
        workdir=workdir,
        env=env,
        timeout=task.timeout,
        model_dir=model_dir,
        settings=settings,
        tags={
            "tunectl-experiment": exp.name,
            "tunectl-trial": str(trial_number),
            "tunectl-key": key,
        },
    )
