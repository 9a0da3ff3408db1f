"""The DLC emulator's records: jobs, their pods, fault rates, and a job's JSON."""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tunectl_dlc.emulator_logs import PodLog

TERMINAL = ("Succeeded", "Failed", "Stopped")


@dataclass
class Job:
    id: str
    spec: dict[str, Any]
    created: float
    status: str = "Creating"
    history: list[dict[str, str]] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log: PodLog = field(default_factory=lambda: PodLog(None))
    pods: list[dict[str, str]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    reason: str = ""
    stop_requested: bool = False

    @property
    def rank0(self) -> dict[str, str]:
        """The pod whose log is the job's output."""
        for role in ("Master", "Chief", "Worker"):
            for pod in self.pods:
                if pod["Type"] == role and pod["PodId"].endswith("-0"):
                    return pod
        return self.pods[0]


def pods_of(job_id: str, specs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The pods DLC makes for `JobSpecs`: `JOBID-ROLE-N`, one per `PodCount`."""
    return [
        {
            "PodId": f"{job_id}-{str(spec.get('Type')).lower()}-{n}",
            "Type": str(spec.get("Type")),
            "PodUid": str(uuid.uuid4()),
        }
        for spec in specs
        for n in range(int(spec.get("PodCount") or 1))
    ]


@dataclass
class Faults:
    throttle: float = 0.0  # share of API calls answered "Throttling.User" (429)
    error: float = 0.0  # share answered 500 InternalError
    slow: float = 0.0  # seconds added to every answer
    seed: int = 0


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def job_json(job: Job, detail: bool = False) -> dict[str, Any]:
    """A job as GetJob (`detail`) or a ListJobs item shows it."""
    spec = job.spec
    out: dict[str, Any] = {
        "JobId": job.id,
        "DisplayName": spec.get("DisplayName"),
        "JobType": spec.get("JobType"),
        "Status": job.status,
        "WorkspaceId": spec.get("WorkspaceId"),
        "ResourceId": spec.get("ResourceId"),
        "Priority": spec.get("Priority"),
        "GmtCreateTime": iso(job.created),
        "GmtRunningTime": iso(job.started) if job.started else None,
        "GmtFinishTime": iso(job.finished) if job.finished else None,
        "ReasonCode": job.status if job.status in TERMINAL else "",
        "ReasonMessage": job.reason,
        "Settings": spec.get("Settings") or {},
        "JobSpecs": spec.get("JobSpecs"),
    }
    if detail:
        out["UserCommand"] = spec.get("UserCommand")
        out["StatusHistory"] = [
            {k: v for k, v in h.items() if not k.startswith("_")} for h in job.history
        ]
        pod_status = {"Stopping": "Terminating"}.get(job.status, job.status)
        out["Pods"] = [{**pod, "Status": pod_status} for pod in job.pods] if job.started else []
    return out
