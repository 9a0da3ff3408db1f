"""An emulator of the PAI-DLC API (2020-12-03) for tests and dry runs.

It speaks the paths and JSON of the real API, so the official SDK works against it with its
ordinary settings (`endpoint="127.0.0.1:PORT"`, `protocol="http"`):

    POST   /api/v1/jobs                          CreateJob
    GET    /api/v1/jobs                          ListJobs (DisplayName, JobIds, Status,
                                                 WorkspaceId, Tags, StartTime, EndTime —
                                                 by default the last 7 days —, PageSize,
                                                 PageNumber)
    GET    /api/v1/jobs/{id}                     GetJob (with Pods)
    POST   /api/v1/jobs/{id}/stop                StopJob
    DELETE /api/v1/jobs/{id}                     DeleteJob
    GET    /api/v1/jobs/{id}/pods/{pod}/logs     GetPodLogs (MaxLines, StartTime, EndTime,
                                                 PodUid; lines with their times, some
                                                 arriving late: `emulator_logs`)

Every request must carry a valid `ACS3-HMAC-SHA256` signature made with the configured test
key, so wrong credentials fail as in the cloud (`InvalidAccessKeyId.NotFound`,
`SignatureDoesNotMatch`).

Jobs walk DLC's status sequence — Creating, Queuing (while `capacity` jobs run),
EnvPreparing, Running, then Succeeded, Failed or Stopped (via Stopping) — and run their
`UserCommand` as a local process (`/bin/sh -c`, in its own session, with the job's `Envs`);
its output is the log of the job's rank-0 pod. Pods are named as DLC names them
(`JOBID-master-0`, `JOBID-worker-1`, ...: one per `PodCount` of each `JobSpecs` role), each
with a `PodUid`; the rank-0 pod is master-0, else chief-0, else worker-0 (else the first).

Faults on demand, through unauthenticated admin paths (also `Emulator.faults`):

    POST /_emulator/faults   {"throttle": 0.1, "error": 0.1, "slow": 0.0, "seed": 1}
    POST /_emulator/jobs/{id}/vanish        the job disappears (as if deleted elsewhere)
    POST /_emulator/jobs/{id}/stop-outside  the job is stopped by someone else
    GET  /_emulator/calls                   how many calls of each action were served
                                            (and `GetPodLogs:bytes`, the bytes of logs)

Run it by hand: `tunectl-dlc-emulator --port 8470` (test key `LTAI-test` / `test-secret`
unless --access-key-id / --access-key-secret say otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tunectl_dlc.emulator_checks import ApiError, Signatures, check_create
from tunectl_dlc.emulator_jobs import TERMINAL, Faults, Job, iso, job_json, pods_of
from tunectl_dlc.emulator_logs import DEFAULT_LINES, PodLog, parse_time

__all__ = ["TEST_KEY_ID", "TEST_KEY_SECRET", "ApiError", "Emulator", "Faults", "Server"]

TEST_KEY_ID = "LTAI-test"
TEST_KEY_SECRET = "test-secret"
_JOB = re.compile(r"^/api/v1/jobs/([A-Za-z0-9-]+)$")
_STOP = re.compile(r"^/api/v1/jobs/([A-Za-z0-9-]+)/stop$")
_LOGS = re.compile(r"^/api/v1/jobs/([A-Za-z0-9-]+)/pods/([A-Za-z0-9-]+)/logs$")
_ADMIN_JOB = re.compile(r"^/_emulator/jobs/([A-Za-z0-9-]+)/(vanish|stop-outside)$")


class Emulator:
    """The jobs and their lifecycle; `Server` puts HTTP in front of it."""

    def __init__(
        self,
        capacity: int = 8,
        phase_seconds: float = 0.05,
        workdir: Path | None = None,
        access_key_id: str = TEST_KEY_ID,
        access_key_secret: str = TEST_KEY_SECRET,
        log_delay: float = 0.0,
    ) -> None:
        self.capacity = capacity
        self.log_delay = log_delay  # how late a log line may become visible (seconds)
        self.phase = phase_seconds
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="dlc-emulator-"))
        self.keys = {access_key_id: access_key_secret}
        self.signatures = Signatures(self.keys)
        self.denied: set[str] = set()  # actions answered 403 (a RAM user without them)
        self.workspaces: set[str] | None = None  # the workspaces that exist (None: any)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.faults = Faults()
        self.random = random.Random(0)
        self.calls: Counter[str] = Counter()

    # -- lifecycle ----------------------------------------------------------------------

    def tick(self) -> None:
        """Move every job along its status sequence."""
        with self.lock:
            now = time.time()
            running = sum(1 for j in self.jobs.values() if j.status in ("EnvPreparing", "Running"))
            for job in sorted(self.jobs.values(), key=lambda j: j.created):
                if job.stop_requested and job.status not in TERMINAL:
                    self._stop(job)
                    continue
                if job.status == "Creating" and now - job.created >= self.phase:
                    self._set(job, "Queuing")
                if job.status == "Queuing" and running < self.capacity:
                    self._set(job, "EnvPreparing")
                    running += 1
                elif job.status == "EnvPreparing" and now - self._since(job) >= self.phase:
                    self._start(job)
                elif job.status == "Running" and job.proc is not None:
                    code = job.proc.poll()
                    if code is not None:
                        job.log.ingest(final=True)
                        job.finished = now
                        job.reason = (
                            f"Pod {job.rank0['PodId']} terminated: exitCode: {code}, reason: "
                            + ("Completed" if code == 0 else "Error")
                        )
                        self._set(job, "Succeeded" if code == 0 else "Failed")
                elif job.status == "Stopping":
                    if job.proc is None or job.proc.poll() is not None:
                        job.finished = now
                        self._set(job, "Stopped")

    def _since(self, job: Job) -> float:
        return float(job.history[-1]["_at"]) if job.history else job.created

    def _set(self, job: Job, status: str) -> None:
        job.status = status
        job.history.append({"Status": status, "Time": iso(time.time()), "_at": str(time.time())})

    def _start(self, job: Job) -> None:
        directory = self.workdir / job.id
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "rank0.log"
        job.log = PodLog(path, self.log_delay, seed=len(self.jobs))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "PYTHONUNBUFFERED": "1",
            **{str(k): str(v) for k, v in (job.spec.get("Envs") or {}).items()},
        }
        with path.open("wb") as out:
            job.proc = subprocess.Popen(
                ["/bin/sh", "-c", str(job.spec.get("UserCommand") or "true")],
                cwd=job.spec.get("_cwd") or directory,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        job.started = time.time()
        self._set(job, "Running")

    def _stop(self, job: Job) -> None:
        if job.proc is not None and job.proc.poll() is None:
            try:
                os.killpg(job.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            job.proc.wait()
        job.log.ingest(final=True)
        job.finished = time.time()
        job.reason = job.reason or "stopped by user"
        if job.status != "Stopping":
            self._set(job, "Stopping")
        self._set(job, "Stopped")

    def close(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                if job.proc is not None and job.proc.poll() is None:
                    try:
                        os.killpg(job.proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    job.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- API ----------------------------------------------------------------------------

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        check_create(body, self.workspaces)
        with self.lock:
            job = Job(id=f"dlc{uuid.uuid4().hex[:16]}", spec=body, created=time.time())
            job.pods = pods_of(job.id, list(body["JobSpecs"]))
            self._set(job, "Creating")
            self.jobs[job.id] = job
        return {"JobId": job.id}

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "100090005", f"Job {job_id} not found.")
            return job_json(job, detail=True)

    def list_jobs(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.created)
            # Jobs created in [StartTime, EndTime], by default the last 7 days.
            window = []
            for name in ("StartTime", "EndTime"):
                value = query.get(name)
                parsed = parse_time(value) if value else None
                if value and parsed is None:
                    raise ApiError(400, "InvalidParameter", f"{name} is not an ISO 8601 time.")
                window.append(None if parsed is None else parsed / 1e6)
            start = time.time() - 7 * 24 * 3600 if window[0] is None else window[0]
            end = time.time() if window[1] is None else window[1]
            jobs = [j for j in jobs if start <= j.created <= end + 1]
            if query.get("DisplayName"):  # a substring, in any case
                name = query["DisplayName"].lower()
                jobs = [j for j in jobs if name in str(j.spec.get("DisplayName", "")).lower()]
            if query.get("JobIds"):
                wanted = set(query["JobIds"].split(","))
                jobs = [j for j in jobs if j.id in wanted]
                self.calls["ListJobs:by-ids"] += 1  # status polls, for benchmarks
                self.calls["ListJobs:ids"] += len(wanted)
            if query.get("Status"):
                jobs = [j for j in jobs if j.status == query["Status"]]
            if query.get("WorkspaceId"):
                jobs = [j for j in jobs if j.spec.get("WorkspaceId") == query["WorkspaceId"]]
            if query.get("Tags"):
                try:
                    tags = json.loads(query["Tags"])
                except ValueError:
                    raise ApiError(400, "InvalidParameter", "Tags must be JSON.") from None
                jobs = [
                    j
                    for j in jobs
                    if all(
                        ((j.spec.get("Settings") or {}).get("Tags") or {}).get(k) == v
                        for k, v in tags.items()
                    )
                ]
            size = min(int(query.get("PageSize") or 50), 100)
            page = max(int(query.get("PageNumber") or 1), 1)
            chosen = jobs[(page - 1) * size : page * size]
            return {"Jobs": [job_json(j) for j in chosen], "TotalCount": len(jobs)}

    def stop_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "100090005", f"Job {job_id} not found.")
            if job.status in TERMINAL:
                raise ApiError(
                    400, "InvalidJobStatus", f"Job {job_id} is {job.status} and cannot be stopped."
                )
            job.stop_requested = True
            self._set(job, "Stopping")
        self.tick()
        return {"JobId": job_id}

    def delete_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "100090005", f"Job {job_id} not found.")
            if job.status not in TERMINAL:
                raise ApiError(400, "JobIsRunning", "Stop the job before deleting it.")
            del self.jobs[job_id]
        return {"JobId": job_id}

    def pod_logs(self, job_id: str, pod_id: str, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            pod = next((p for p in job.pods if p["PodId"] == pod_id), None) if job else None
            if job is None or pod is None:
                raise ApiError(404, "PodNotFound", f"Pod {pod_id} of job {job_id} not found.")
            if query.get("PodUid") and query["PodUid"] != pod["PodUid"]:
                raise ApiError(404, "PodNotFound", f"Pod {pod_id} has no uid {query['PodUid']}.")
            bounds = []
            for name in ("StartTime", "EndTime"):
                value = query.get(name)
                parsed = parse_time(value) if value else None
                if value and parsed is None:
                    raise ApiError(400, "InvalidParameter", f"{name} is not an ISO 8601 time.")
                bounds.append(parsed)
            try:
                limit = int(query.get("MaxLines") or DEFAULT_LINES)
            except ValueError:
                limit = 0
            if limit < 1:
                raise ApiError(400, "InvalidParameter", "MaxLines must be a positive integer.")
            if pod is not job.rank0:
                logs = []
            else:
                if job.status not in TERMINAL:
                    job.log.ingest()  # what the process wrote so far: taken in now
                logs = job.log.query(bounds[0], bounds[1], limit)
        return {"JobId": job_id, "PodId": pod_id, "PodUid": pod["PodUid"], "Logs": logs}

    # -- outside events -----------------------------------------------------------------

    def vanish(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs.pop(job_id, None)
        if job is not None and job.proc is not None and job.proc.poll() is None:
            os.killpg(job.proc.pid, signal.SIGKILL)
            job.proc.wait()

    def stop_outside(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs[job_id]
            job.reason = "stopped by another user"
            job.stop_requested = True
        self.tick()

    # -- JSON ---------------------------------------------------------------------------

    def inject(self) -> None:
        """Raise the fault the configured rates draw for this call, if any."""
        with self.lock:
            draw = self.random.random()
            throttle, error = self.faults.throttle, self.faults.error
        if self.faults.slow:
            time.sleep(self.faults.slow)
        if draw < throttle / 2:  # as the gateway answers: 429 with a retry header
            raise ApiError(
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
                {"x-acs-retry-after": "100"},
            )
        if draw < throttle:  # as a service answers: 400, no header
            raise ApiError(400, "Throttling.User", "Request was denied due to user flow control.")
        if draw < throttle + error:
            raise ApiError(500, "InternalError", "The request processing has failed.")


class Server:
    """The emulator over HTTP on 127.0.0.1. Use as a context manager."""

    def __init__(self, port: int = 0, **kwargs: Any) -> None:
        self.emulator = Emulator(**kwargs)
        self._port = port
        self._http: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        assert self._http is not None
        return int(self._http.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        emulator = self.emulator

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and delayed ACKs add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, data: dict[str, Any], headers: dict | None = None) -> int:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
                return len(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = parse_qsl(url.query, keep_blank_values=True)
                request_id = str(uuid.uuid4()).upper()
                try:
                    if url.path.startswith("/_emulator/"):
                        self._reply(200, self._admin(url.path, body))
                        return
                    action = emulator.signatures.verify(
                        self.command, url.path, query, self.headers, body
                    )
                    with emulator.lock:
                        emulator.calls[action] += 1
                        denied = action in emulator.denied
                    if denied:
                        raise ApiError(
                            403,
                            "Forbidden.RAM",
                            "User not authorized to operate on the specified resource.",
                        )
                    emulator.inject()
                    data = self._api(url.path, dict(query), body)
                    data["RequestId"] = request_id
                    sent = self._reply(200, data)
                    if action == "GetPodLogs":  # what log reads cost, for benchmarks
                        with emulator.lock:
                            emulator.calls["GetPodLogs:bytes"] += sent
                except ApiError as exc:
                    self._reply(
                        exc.status,
                        {"Code": exc.code, "Message": exc.message, "RequestId": request_id},
                        exc.headers,
                    )

            def _api(self, path: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
                method = self.command
                if path == "/api/v1/jobs" and method == "POST":
                    return emulator.create_job(json.loads(body or b"{}"))
                if path == "/api/v1/jobs" and method == "GET":
                    return emulator.list_jobs(query)
                if (m := _STOP.match(path)) and method == "POST":
                    return emulator.stop_job(m.group(1))
                if (m := _LOGS.match(path)) and method == "GET":
                    return emulator.pod_logs(m.group(1), m.group(2), query)
                if (m := _JOB.match(path)) and method == "GET":
                    return emulator.get_job(m.group(1))
                if (m := _JOB.match(path)) and method == "DELETE":
                    return emulator.delete_job(m.group(1))
                raise ApiError(404, "InvalidAction.NotFound", f"{method} {path} is not an API.")

            def _admin(self, path: str, body: bytes) -> dict[str, Any]:
                if path == "/_emulator/faults":
                    spec = json.loads(body or b"{}")
                    with emulator.lock:
                        emulator.faults = Faults(**spec)
                        emulator.random = random.Random(emulator.faults.seed)
                    return {"ok": True}
                if path == "/_emulator/calls":
                    with emulator.lock:
                        return dict(emulator.calls)
                if m := _ADMIN_JOB.match(path):
                    if m.group(2) == "vanish":
                        emulator.vanish(m.group(1))
                    else:
                        emulator.stop_outside(m.group(1))
                    return {"ok": True}
                raise ApiError(404, "NotFound", path)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._http = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        threading.Thread(target=self._ticker, daemon=True).start()
        return self

    def _ticker(self) -> None:
        while not self._stop.wait(0.05):
            self.emulator.tick()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.emulator.close()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="An emulator of the PAI-DLC API.")
    parser.add_argument("--port", type=int, default=8470)
    parser.add_argument("--capacity", type=int, default=8, help="jobs running at once")
    parser.add_argument("--access-key-id", default=TEST_KEY_ID)
    parser.add_argument("--access-key-secret", default=TEST_KEY_SECRET)
    parser.add_argument("--throttle", type=float, default=0.0, help="share of calls throttled")
    parser.add_argument("--error", type=float, default=0.0, help="share of calls failing (500)")
    parser.add_argument(
        "--log-delay", type=float, default=0.0, help="seconds a log line may arrive late"
    )
    args = parser.parse_args()
    server = Server(
        port=args.port,
        capacity=args.capacity,
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        log_delay=args.log_delay,
    )
    try:
        server.__enter__()
    except OSError as exc:
        server.emulator.close()
        raise SystemExit(
            f"tunectl-dlc-emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}. "
            "Another emulator may be running (stop it with Ctrl-C, or `kill PID`), or "
            "choose another port with --port."
        ) from None
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops it as Ctrl-C does
    server.emulator.faults = Faults(throttle=args.throttle, error=args.error)
    print(
        f"DLC emulator on http://{server.endpoint} (key {args.access_key_id}, pid "
        f'{os.getpid()}); point provider "dlc" at endpoint = "{server.endpoint}", '
        'protocol = "http". Ctrl-C stops it.',
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.__exit__(None, None, None)


if __name__ == "__main__":
    main()
