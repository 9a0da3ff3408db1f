"""The DLC job model as tunectl uses it: job types, roles, job states, prices, and the
SDK request and response shapes of one job (`JobSpec`, a job's status)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunectl.providers.base import TaskState, TaskStatus

JOB_TYPES = (
    "PyTorchJob",
    "TFJob",
    "MPIJob",
    "XGBoostJob",
    "OneFlowJob",
    "ElasticBatchJob",
    "SlurmJob",
    "RayJob",
    "DataJuicerJob",
)
ROLES = {"worker": "Worker", "ps": "PS", "chief": "Chief", "master": "Master"}
STATES = {
    "Creating": TaskState.PENDING,
    "Queuing": TaskState.PENDING,
    "Bidding": TaskState.PENDING,
    "EnvPreparing": TaskState.PENDING,
    "SanityChecking": TaskState.PENDING,
    "Running": TaskState.RUNNING,
    "Restarting": TaskState.RUNNING,
    "Stopping": TaskState.RUNNING,
    "SucceededReserving": TaskState.SUCCEEDED,
    "Succeeded": TaskState.SUCCEEDED,
    "FailedReserving": TaskState.FAILED,
    "Failed": TaskState.FAILED,
    "Stopped": TaskState.CANCELLED,
}
# Indicative pay-as-you-go prices (CNY per hour) of common DLC instance types; a `prices`
# map in the provider block overrides or extends them.
PRICES = {
    "ecs.g6.xlarge": 1.85,
    "ecs.g6.2xlarge": 3.70,
    "ecs.c6.large": 0.78,
    "ecs.gn6i-c4g1.xlarge": 11.50,
    "ecs.gn6i-c8g1.2xlarge": 14.70,
    "ecs.gn6v-c8g1.2xlarge": 26.40,
    "ecs.gn7i-c8g1.2xlarge": 18.20,
    "ecs.gn7-c12g1.3xlarge": 33.80,
}


def check_role(role: str, spec: Any, resource_id: Any) -> list[str]:
    """Problems with one role's settings (`worker = { count, ecs_spec, ... }`)."""
    if not isinstance(spec, Mapping):
        return [f'{role} must be a map such as {{ count = 1, ecs_spec = "ecs.gn6i-c4g1.xlarge" }}']
    problems = []
    unknown = set(spec) - {"count", "ecs_spec", "cpu", "gpu", "gpu_type", "memory", "image"}
    if unknown:
        problems.append(f"{role}: unknown setting(s) {', '.join(sorted(unknown))}")
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.append(f"{role}.count must be a whole number of at least 1, got {count!r}")
    has_ecs = bool(spec.get("ecs_spec"))
    has_quota = any(spec.get(k) is not None for k in ("cpu", "gpu", "memory"))
    if has_ecs == has_quota:
        problems.append(
            f"{role} needs either ecs_spec (public resources) or cpu/gpu/memory (a resource "
            "quota), not both"
        )
    if has_quota and not resource_id:
        problems.append(f"{role}: cpu/gpu/memory need a resource quota: set resource_id")
    return problems


def job_spec(m: Any, role: str, spec: Mapping[str, Any], image: str) -> Any:
    """The SDK's `JobSpec` (`m` is the SDK's models module) of one role."""
    resources = None
    if spec.get("ecs_spec") is None:
        resources = m.ResourceConfig(
            cpu=str(spec.get("cpu")) if spec.get("cpu") is not None else None,
            gpu=str(spec.get("gpu")) if spec.get("gpu") is not None else None,
            gputype=spec.get("gpu_type"),
            memory=str(spec.get("memory")) if spec.get("memory") is not None else None,
        )
    return m.JobSpec(
        type=role,
        image=str(spec.get("image") or image),
        pod_count=int(spec.get("count", 1)),
        ecs_spec=spec.get("ecs_spec"),
        resource_config=resources,
    )


# "exit code 3", "exitCode: 3", "ExitCode=3", "exited with code 3"
_EXIT = re.compile(r"exit(?:ed with)?[ _]?code\W{0,3}(\d+)", re.IGNORECASE)


def _reasons(job: Any) -> str:
    """Where DLC says why a job ended: its reason, the last status change's, its pods'."""
    texts = [str(job.reason_message or "")]
    history = getattr(job, "status_history", None) or []
    texts += [str(getattr(h, "reason_message", "") or "") for h in reversed(history)]
    texts += [str(getattr(p, "sub_status", "") or "") for p in getattr(job, "pods", None) or []]
    return "\n".join(texts)


def job_status(job: Any) -> TaskStatus:
    """A DLC job (`GetJob`/`ListJobs` item) as a task status."""
    status = str(job.status or "")
    state = STATES.get(status, TaskState.PENDING)
    message = ""
    exit_code = None
    found = _EXIT.search(_reasons(job))
    if found:
        exit_code = int(found.group(1))
    elif state is TaskState.SUCCEEDED:
        exit_code = 0
    if state is TaskState.FAILED:
        message = f"DLC job {job.job_id} failed: {job.reason_message or job.reason_code or ''}"
    elif state is TaskState.CANCELLED:
        message = f"DLC job {job.job_id} was stopped ({job.reason_message or 'StopJob'})"
    return TaskStatus(state, exit_code=exit_code, message=message.strip(": "))
