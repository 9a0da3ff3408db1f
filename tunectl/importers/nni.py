"""`tunectl import nni`: an NNI experiment configuration (NNI 2.x / 3.x) as tunectl HCL.

The configuration is NNI's v2 format (`experimentName`, `searchSpaceFile` or
`searchSpace`, `trialCommand`, `trialCodeDirectory`, `trialConcurrency`,
`maxTrialNumber`, `maxExperimentDuration`, `maxTrialDuration`, `tuner`, `assessor`,
`trainingService`), in YAML or JSON. The trial runs on the local provider with its command
unchanged: its `import nni` is tunectl's compatibility module (`tunectl/trialpath/nni`),
which reads the parameters from `TUNECTL_PARAMS` and reports NNI's `default` metric,
which the objective optimises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunectl.hcl.values import Template
from tunectl.importers import tuners
from tunectl.importers.hclwriter import Block, render
from tunectl.importers.model import (
    Imported,
    Notes,
    duration,
    fail,
    load_json,
    load_mapping,
    read_text,
)
from tunectl.importers.space import SpaceReader, param_name

# What every imported NNI trial gets: the compatibility module's inputs and NNI's own
# environment variables, for trial code that reads them.
NNI_ENV = {
    "TUNECTL_PARAMS": Template([("trial", "params_json")]),
    "NNI_EXP_ID": Template([("experiment", "name")]),
    "NNI_TRIAL_JOB_ID": Template([("trial", "id")]),
    "NNI_TRIAL_SEQ_ID": Template([("trial", "number")]),
    "NNI_OUTPUT_DIR": Template([("trial", "model_dir")]),
}
METRIC = "default"  # NNI's name for the number report_final_result is given
DEFAULT_MAX_TRIALS = 100
IGNORED = {
    "experimentWorkingDirectory": "the state (backend) keeps the experiment",
    "logLevel": "apply prints its events; tunectl logs shows a trial's output",
    "debug": "apply prints its events; set TUNECTL_DEBUG=1 for tracebacks",
    "nniManagerIp": "there is no NNI manager",
    "tunerGpuIndices": "the sampler runs inside tunectl, on the CPU",
    "experimentType": "every tunectl experiment is a hyperparameter search",
    "trialGpuNumber": "",
}
# NNI v1 names (NNI 1.x, still read by NNI 2.x) -> v2 names
V1 = {
    "authorName": None,
    "maxTrialNum": "maxTrialNumber",
    "maxExecDuration": "maxExperimentDuration",
    "searchSpacePath": "searchSpaceFile",
    "trainingServicePlatform": None,
    "logDir": "experimentWorkingDirectory",
}


def _upgrade_v1(config: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """NNI's v1 layout (`trial: {command, codeDir, gpuNum}`, `maxTrialNum`, ...) as v2."""
    if not any(k in config for k in ("trial", "maxTrialNum", "trainingServicePlatform")):
        return config
    out = {V1.get(k) or k: v for k, v in config.items() if V1.get(k, k) is not None}
    trial = config.get("trial")
    if isinstance(trial, Mapping):
        out.pop("trial", None)
        out["trialCommand"] = trial.get("command")
        out["trialCodeDirectory"] = trial.get("codeDir", ".")
        if trial.get("gpuNum"):
            out["trialGpuNumber"] = trial["gpuNum"]
    platform = config.get("trainingServicePlatform")
    if platform:
        out["trainingService"] = {"platform": platform}
    for section in ("tuner", "assessor"):
        spec = out.get(section)
        if isinstance(spec, Mapping) and "builtinTunerName" in spec:
            out[section] = {**spec, "name": spec["builtinTunerName"]}
        if isinstance(spec, Mapping) and "builtinAssessorName" in spec:
            out[section] = {**spec, "name": spec["builtinAssessorName"]}
    if config.get("useAnnotation") is not None:
        out["useAnnotation"] = config["useAnnotation"]
    notes.add("(file)", "NNI's v1 format: read as its v2 equivalents.")
    return out


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _space(config: Mapping[str, Any], path: Path, notes: Notes) -> tuple[SpaceReader, Any]:
    reader = SpaceReader(path, notes, "searchSpace")
    if config.get("searchSpace") is not None:
        return reader, config["searchSpace"]
    file = config.get("searchSpaceFile")
    if not file:
        fail(
            "Missing search space",
            f"{path.name} has neither searchSpaceFile nor searchSpace.",
            path,
        )
    space_path = (path.parent / str(file)).resolve()
    reader.path = space_path
    text = read_text(space_path, "search space file")
    if space_path.suffix in (".yml", ".yaml"):
        from tunectl.importers.model import load_yaml

        return reader, load_yaml(text, space_path, "search space file")
    return reader, load_json(text, space_path, "search space file")


def import_nni(path: Path, out_dir: Path) -> Imported:
    """The HCL of the NNI experiment configured in `path`, to be written in `out_dir`."""
    notes = Notes()
    config = _upgrade_v1(load_mapping(path, "NNI configuration"), notes)
    command = config.get("trialCommand")
    if not isinstance(command, str) or not command.strip():
        fail(
            "Missing trialCommand", f"{path.name} needs trialCommand: the command of a trial.", path
        )
    reader, space = _space(config, path, notes)
    params = reader.read(space)

    if config.get("advisor") is not None:
        tuners.tuner(config["advisor"], "advisor", notes, "classArgs")  # always an error
    algorithm, direction = tuners.tuner(config.get("tuner"), "tuner", notes, "classArgs")
    stopping, assessor_mode = tuners.assessor(
        config.get("assessor"), "assessor", notes, "classArgs"
    )
    direction = direction or assessor_mode
    if direction is None:
        direction = tuners.default_direction(algorithm, "tuner.classArgs", notes)

    # NNI's examples keep each experiment in its own directory: name it after that.
    folder = path.resolve().parent.name
    name = param_name(str(config.get("experimentName") or folder or path.stem))
    exp = Block("experiment", (name,))
    if config.get("experimentName") and name != config["experimentName"]:
        notes.add("experimentName", f'"{config["experimentName"]}" is experiment "{name}".')
    exp.set("description", f"Imported from the NNI experiment {path.name}")
    exp.items.append(("block", algorithm))
    objective = exp.block("objective")
    objective.set("metric", METRIC)
    objective.set("direction", direction)
    objective.set("reduce", "final")
    _budget(exp, config, notes)
    if stopping is not None:
        exp.items.append(("block", stopping))
    for block in params:
        exp.items.append(("block", block))
    trial = exp.block("trial")
    trial.set("provider", "local")
    trial.set("command", command.strip())
    code_dir = (path.parent / str(config.get("trialCodeDirectory") or ".")).resolve()
    if code_dir != out_dir.resolve():
        trial.set("workdir", _relative(code_dir, out_dir))
    if config.get("maxTrialDuration"):
        trial.set("timeout", duration(config["maxTrialDuration"], "maxTrialDuration"))
    env: dict[str, Any] = dict(NNI_ENV)
    if reader.nested:
        env["TUNECTL_NNI_NESTED"] = json.dumps(reader.nested, sort_keys=True)
    trial.set("env", env)
    gpus = config.get("trialGpuNumber") or 0
    service = config.get("trainingService")
    provider: Block | None
    if isinstance(service, Mapping) and str(service.get("platform")) == "dlc":
        provider = _dlc(service, trial, notes)
    else:
        provider = _training_service(config, gpus, trial, notes)
    _other_fields(config, notes)
    header = [
        f"Imported from {path.name} by `tunectl import nni`. The trial code runs as it is: its",
        "`import nni` is tunectl's compatibility module (docs/import.md).",
    ]
    blocks = [provider, exp] if provider is not None else [exp]
    return Imported(render(blocks, header), list(notes))


def _budget(exp: Block, config: Mapping[str, Any], notes: Notes) -> None:
    count = config.get("maxTrialNumber")
    if count is None:
        count = DEFAULT_MAX_TRIALS
        notes.add(
            "maxTrialNumber",
            f"not given (NNI runs without a limit): max_trials = {count}, which tunectl needs.",
        )
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        fail("Invalid maxTrialNumber", f"maxTrialNumber is {count!r}: a whole number of 1 or more.")
    exp.set("max_trials", count)
    concurrency = config.get("trialConcurrency")
    if concurrency is not None:
        exp.set("max_concurrent", concurrency)
    if config.get("maxExperimentDuration"):
        exp.set("max_duration", duration(config["maxExperimentDuration"], "maxExperimentDuration"))


def _training_service(
    config: Mapping[str, Any], gpus: Any, trial: Block, notes: Notes
) -> Block | None:
    service = config.get("trainingService") or {"platform": "local"}
    if isinstance(service, list):
        notes.add("trainingService", "several training services: the trials run locally.")
        service = {"platform": "local"}
    platform = str(service.get("platform", "local")) if isinstance(service, Mapping) else "local"
    if platform != "local":
        notes.add(
            "trainingService.platform",
            f'"{platform}": the trials run on the local provider; for PAI-DLC write the '
            'trial for provider "dlc" (docs/import.md).',
        )
    provider: Block | None = None
    if isinstance(service, Mapping) and platform == "local":
        indices = service.get("gpuIndices")
        if indices is not None:
            provider = Block("provider", ("local",))
            items = indices if isinstance(indices, list) else str(indices).split(",")
            provider.set("gpus", [str(i).strip() for i in items])
        for key in ("useActiveGpu", "maxTrialNumberPerGpu", "reuseMode"):
            if key in service:
                notes.add(
                    f"trainingService.{key}", "the local provider gives each trial its own GPUs."
                )
    if isinstance(gpus, int) and gpus > 0:
        trial.set("gpus_per_task", gpus)
        if provider is None:
            notes.add(
                "trialGpuNumber",
                'list the machine\'s GPUs in provider "local" { gpus = [...] } for the '
                "provider to hand them out.",
            )
    return provider


def _dlc(service: Mapping[str, Any], trial: Block, notes: Notes) -> Block:
    """NNI's `dlc` training service: the trial as a DLC job on the DLC provider."""
    provider = Block("provider", ("dlc",))
    provider.set("region", str(service.get("region") or "cn-hangzhou"))
    if service.get("workspaceId"):
        provider.set("workspace_id", str(service["workspaceId"]))
    trial.items = [
        ("attr", ("provider", "dlc")) if kind == "attr" and item[0] == "provider" else (kind, item)
        for kind, item in trial.items
        if not (kind == "attr" and item[0] == "workdir")
    ]
    from tunectl.importers.commands import JOB_TYPES

    job_type = str(service.get("jobType") or "TFJob")
    trial.set("job_type", JOB_TYPES.get(job_type.lower(), job_type))
    trial.set("image", str(service.get("image") or ""))
    worker: dict[str, Any] = {"count": service.get("podCount") or 1}
    if service.get("ecsSpec"):
        worker["ecs_spec"] = str(service["ecsSpec"])
    trial.set("worker", worker)
    sources: list[dict[str, str]] = [
        {"id": str(service[key])}
        for key in ("nasDataSourceId", "ossDataSourceId")
        if service.get(key)
    ]
    if sources and service.get("nasDataSourceId") and service.get("containerStorageMountPoint"):
        sources[0]["mount_path"] = str(service["containerStorageMountPoint"])
    if sources:
        trial.set("data_sources", sources)
    for key in ("accessKeyId", "accessKeySecret"):
        if key in service:
            notes.add(
                f"trainingService.{key}",
                "credentials are never written to HCL: use Alibaba Cloud's credential chain.",
            )
    notes.add(
        "trainingService.localStorageMountPoint",
        "NNI copied the trial code to the NAS; tunectl does not: the job's command runs in "
        "the image, where the code (mounted from data_sources or built in) and tunectl "
        "(for `import nni`: tunectl/trialpath on PYTHONPATH) must be.",
    )
    return provider


def _other_fields(config: Mapping[str, Any], notes: Notes) -> None:
    if config.get("useAnnotation"):
        notes.add(
            "useAnnotation",
            "NNI annotations are not read: call nni.get_next_parameter() and "
            "nni.report_final_result() in the trial code.",
        )
    for key, why in IGNORED.items():
        if key in config and why:
            notes.add(key, f"none: {why}.")
    known = {
        "experimentName", "searchSpaceFile", "searchSpace", "trialCommand",
        "trialCodeDirectory", "trialConcurrency", "maxTrialNumber", "maxExperimentDuration",
        "maxTrialDuration", "tuner", "assessor", "advisor", "trainingService", "useAnnotation",
        *IGNORED,
    }  # fmt: skip
    for key in config:
        if key not in known:
            notes.add(str(key), "not an NNI setting tunectl knows: not imported.")
