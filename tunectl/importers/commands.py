"""PAI AutoML's trial command lines: placeholders, `dlc submit` and `PAI -name` lines.

PAI substitutes search-space keys and its built-ins as plain text (`cmd.replace(key,
value)`); tunectl fills typed placeholders quoted for where they sit. `placeholders`
rewrites `${lr}` to `${param.lr}` and PAI's built-ins to tunectl's, and keeps any other
`${...}` as text (noted). `dlc_submit` reads a `dlc submit JOBTYPE --flag=value ...` line
into the DLC provider's trial settings.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunectl.hcl.values import Template
from tunectl.importers.model import Notes
from tunectl.importers.space import PLACEHOLDER

BUILTINS: dict[str, tuple[str, ...]] = {
    "exp_id": ("experiment", "name"),
    "trial_id": ("trial", "id"),
    "NNI_OUTPUT_DIR": ("trial", "model_dir"),
    "tuner_params_json": ("trial", "params_json"),
}
NO_BUILTIN = {
    "tuner_params_list": "write the flags (--lr ${param.lr}) or read ${trial.params_json}",
    "tuner_params_dict": "write the flags (--lr ${param.lr}) or read ${trial.params_json}",
    "params": "use ${trial.id} for a name unique to the trial",
}


def placeholders(text: str, params: Mapping[str, str], where: str, notes: Notes) -> Template:
    """`text` with PAI's placeholders as tunectl's; `params` maps a search-space key
    (`${lr}`, or a bare `lr`) to its param name."""
    parts: list[Any] = []
    last = 0
    for match in PLACEHOLDER.finditer(text):
        parts.append(text[last : match.start()])
        last = match.end()
        inner = match.group(1)
        name = params.get(match.group(0)) or params.get(inner)
        if name is not None:
            parts.append(("param", name))
        elif inner in BUILTINS:
            parts.append(BUILTINS[inner])
        else:
            why = NO_BUILTIN.get(inner, "not a search-space key or a PAI built-in")
            notes.add(where, f"{match.group(0)} is kept as text: {why}.")
            parts.append(match.group(0))
    parts.append(text[last:])
    return Template(parts)


JOB_TYPES = {
    "pytorch": "PyTorchJob",
    "pytorchjob": "PyTorchJob",
    "tf": "TFJob",
    "tfjob": "TFJob",
    "tensorflow": "TFJob",
    "mpi": "MPIJob",
    "mpijob": "MPIJob",
    "xgboost": "XGBoostJob",
    "xgboostjob": "XGBoostJob",
    "oneflow": "OneFlowJob",
    "oneflowjob": "OneFlowJob",
    "elasticbatch": "ElasticBatchJob",
    "elasticbatchjob": "ElasticBatchJob",
    "ray": "RayJob",
    "rayjob": "RayJob",
    "slurm": "SlurmJob",
    "slurmjob": "SlurmJob",
}
ROLES = {"worker": "worker", "ps": "ps", "chief": "chief", "master": "master"}
ROLE_FIELDS = {"spec": "ecs_spec", "cpu": "cpu", "gpu": "gpu", "memory": "memory", "image": "image"}
NOT_MAPPED = {
    "name": "tunectl names each job after its trial",
    "thirdparty_libs": "install them in the image or from the command",
    "thirdparty_lib_dir": "install them in the image or from the command",
    "vpc_id": "not a setting of the DLC provider",
    "switch_id": "not a setting of the DLC provider",
    "security_group_id": "not a setting of the DLC provider",
    "worker_shared_memory": "not a setting of the DLC provider",
    "workspace_id": "",  # provider "dlc" { workspace_id }
}


@dataclass
class DlcJob:
    """One `dlc submit` line: the trial settings, its command, and the workspace it names."""

    command: Template | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    workspace_id: str | None = None


@functools.cache
def _dlc_settings() -> frozenset[str]:
    """The trial settings of the installed DLC provider (newer ones take more flags)."""
    from tunectl.providers import registry

    try:
        return frozenset(a.name for a in registry.load("dlc").trial_schema)
    except (KeyError, registry.ProviderLoadError):  # not installed, or broken
        return frozenset()


def _flags(tokens: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            out.append((name, value))
        i += 1
    return out


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def dlc_submit(line: str, params: Mapping[str, str], where: str, notes: Notes) -> DlcJob | None:
    """The DLC job of a `dlc submit ...` line; None (noted) when the line is not one."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        notes.add(where, f"cannot be read as a dlc command line ({exc}): not imported.")
        return None
    if tokens[:2] != ["dlc", "submit"]:
        return None
    job = DlcJob()
    kind = tokens[2] if len(tokens) > 2 and not tokens[2].startswith("--") else "pytorch"
    job_type = JOB_TYPES.get(kind.lower())
    if job_type is None:
        notes.add(where, f'job type "{kind}" is not one tunectl knows: PyTorchJob is used.')
        job_type = "PyTorchJob"
    job.settings["job_type"] = job_type
    roles: dict[str, dict[str, Any]] = {}
    code: dict[str, Any] = {}
    for flag, value in _flags(tokens[2:]):
        source = f"{where} --{flag}"
        role, _, rest = flag.partition("_")
        if flag == "command":
            job.command = placeholders(value, params, source, notes)
        elif flag in ("image", "worker_image") and "image" not in job.settings:
            job.settings["image"] = value
        elif flag in ("workers", "ps", "chief", "masters") and _number(value) != value:
            roles.setdefault(ROLES.get(flag.rstrip("s"), flag), {})["count"] = _number(value)
        elif role in ROLES and rest in ROLE_FIELDS:
            roles.setdefault(role, {})[ROLE_FIELDS[rest]] = (
                _number(value)
                if rest
                in (
                    "cpu",
                    "gpu",
                )
                else value
            )
        elif flag == "data_sources":
            job.settings["data_sources"] = [{"id": v.strip()} for v in value.split(",") if v]
        elif flag in ("code_source", "code_branch", "code_commit"):
            code[{"code_source": "id"}.get(flag, flag[5:])] = value
        elif flag == "priority":
            job.settings["priority"] = _number(value)
        elif flag == "job_max_running_time_minutes":
            job.settings["max_running_time"] = f"{value}m"
        elif flag == "resource_id":
            job.settings["resource_id"] = value
        elif flag == "workspace_id":
            job.workspace_id = value
        elif flag in ("envs", "Envs", "env"):
            notes.add(source, "environment variables go in the trial's env map.")
        elif flag == "thirdparty_libs" and "thirdparty_libs" in _dlc_settings():
            job.settings["thirdparty_libs"] = [v for v in re.split(r"[,\s]+", value) if v]
        elif flag in ("vpc_id", "switch_id", "security_group_id") and "user_vpc" in _dlc_settings():
            job.settings.setdefault("user_vpc", {})[flag] = value
        elif flag in NOT_MAPPED:
            notes.add(source, f"none: {NOT_MAPPED[flag]}.")
        else:
            notes.add(source, "not a dlc submit flag tunectl knows: not imported.")
    for role, spec in roles.items():
        if "image" in spec and spec["image"] == job.settings.get("image"):
            del spec["image"]
        quota = [k for k in ("cpu", "gpu", "memory") if k in spec]
        if "ecs_spec" in spec and quota:
            # DLC takes an ECS type (public resources) or quota resources, not both.
            for k in quota:
                del spec[k]
            notes.add(
                f"{where} --{role}_cpu/gpu/memory",
                f"{role} runs on its ECS type {spec['ecs_spec']}, which fixes its CPU, GPU and "
                "memory: those flags are dropped (a resource quota takes them, with "
                "resource_id, instead of an ECS type).",
            )
        job.settings[role] = spec
    if code:
        job.settings["code_source"] = code
    if job.command is None:
        notes.add(where, "has no --command: the trial has nothing to run.")
    return job


def pai_command(line: str) -> str | None:
    """The body of a `PAI -name ...` line (one line, without the leading `PAI`), else None."""
    words = " ".join(line.split())
    found = re.match(r"(?i)pai\s+(-name\b.*)$", words)
    if not found:
        return None
    return found.group(1).rstrip(";").rstrip()


def unquote_pai(body: str) -> str:
    """`-Dk='v'` as `-Dk=v` where the value has no space or quote (tunectl's PAI bodies
    take placeholders only in unquoted `-D` values), and `-name=x` as `-name x`."""
    body = re.sub(r"(-name|-project)=", r"\1 ", body)
    return re.sub(r"(-D[A-Za-z0-9_.]+=)'([^'\s\"]*)'", r"\1\2", body)
