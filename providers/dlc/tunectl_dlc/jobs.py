"""The DLC job model as tunectl uses it: job types, roles, job states, prices, and the
SDK request and response shapes of one job (`JobSpec`, a job's status)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tunectl.providers.base import TaskState, TaskStatus
from tunectl_dlc.extras import check_spot, spot_spec

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
ROLES = {
    "master": "Master",
    "chief": "Chief",
    "head": "Head",
    "launcher": "Launcher",
    "ps": "PS",
    "worker": "Worker",
    "evaluator": "Evaluator",
}
# The roles each job type has, as CreateJob accepts them.
ROLES_BY_TYPE = {
    "PyTorchJob": ("master", "worker"),
    "TFJob": ("chief", "ps", "worker", "evaluator"),
    "MPIJob": ("launcher", "worker"),
    "XGBoostJob": ("master", "worker"),
    "OneFlowJob": ("master", "worker"),
    "ElasticBatchJob": ("worker",),
    "SlurmJob": ("master", "worker"),
    "RayJob": ("head", "worker"),
    "DataJuicerJob": ("head", "worker"),
}
SINGLE_ROLES = ("master", "chief", "head", "launcher")  # one pod at most
# Kubernetes quantities, as DLC's ResourceConfig takes memory: "16Gi", "512Mi".
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)")
# Minutes added to the cloud's own limit, so tunectl's timeout (exact) always fires first.
LIMIT_MARGIN_MINUTES = 5
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
    known = {
        *("count", "ecs_spec", "cpu", "gpu", "gpu_type", "memory", "shared_memory"),
        *("image", "spot"),
    }
    unknown = set(spec) - known
    if unknown:
        problems.append(f"{role}: unknown setting(s) {', '.join(sorted(unknown))}")
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.append(f"{role}.count must be a whole number of at least 1, got {count!r}")
    if spec.get("spot") is not None:
        problems += check_spot(role, spec["spot"])
    if isinstance(count, int) and role in SINGLE_ROLES and count > 1:
        problems.append(f"{role}.count must be 1: a job has one {role}, got {count}")
    for name in ("memory", "shared_memory"):
        value = spec.get(name)
        if value is not None and not _QUANTITY.fullmatch(str(value)):
            problems.append(
                f'{role}.{name} must be a size with its unit, such as "16Gi" or "512Mi", '
                f"got {value!r}"
            )
    cpu, gpu = spec.get("cpu"), spec.get("gpu")
    if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0):
        problems.append(f"{role}.cpu must be a number of cores above 0, got {cpu!r}")
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        problems.append(f"{role}.gpu must be a whole number of GPUs, 0 or more, got {gpu!r}")
    has_ecs = bool(spec.get("ecs_spec"))
    has_quota = any(spec.get(k) is not None for k in ("cpu", "gpu", "memory"))
    if has_ecs == has_quota:
        problems.append(
            f"{role} needs either ecs_spec (public resources) or cpu/gpu/memory (a resource "
            "quota), not both"
        )
    if has_ecs and spec.get("shared_memory") is not None:
        problems.append(
            f"{role}.shared_memory needs cpu/gpu/memory (a resource quota): an ecs_spec "
            "has its own"
        )
    if has_quota and not resource_id:
        problems.append(f"{role}: cpu/gpu/memory need a resource quota: set resource_id")
    return problems


def check_roles(job_type: str, counts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Roles the job type does not have: (role, sentence) each."""
    allowed = ROLES_BY_TYPE.get(job_type, tuple(ROLES))
    return [
        (role, f"a {job_type} has no {role} (its roles: {', '.join(allowed)})")
        for role in counts
        if role not in allowed
    ]


def max_running_minutes(seconds: float, margin: bool) -> int:
    """`JobMaxRunningTimeMinutes` for a limit in seconds: rounded up, never down (DLC counts
    whole minutes), with a margin when tunectl enforces the exact limit itself."""
    return max(1, math.ceil(seconds / 60)) + (LIMIT_MARGIN_MINUTES if margin else 0)


def job_spec(
    m: Any, role: str, spec: Mapping[str, Any], image: str, image_config: Any = None
) -> Any:
    """The SDK's `JobSpec` (`m` is the SDK's models module) of one role."""
    resources = None
    if spec.get("ecs_spec") is None:
        resources = m.ResourceConfig(
            cpu=str(spec.get("cpu")) if spec.get("cpu") is not None else None,
            gpu=str(spec.get("gpu")) if spec.get("gpu") is not None else None,
            gputype=spec.get("gpu_type"),
            memory=str(spec.get("memory")) if spec.get("memory") is not None else None,
            shared_memory=str(spec["shared_memory"]) if spec.get("shared_memory") else None,
        )
    return m.JobSpec(
        type=role,
        image=str(spec.get("image") or image),
        pod_count=int(spec.get("count", 1)),
        ecs_spec=spec.get("ecs_spec"),
        resource_config=resources,
        image_config=image_config,
        spot_spec=spot_spec(m, spec.get("spot")),
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
