"""The DLC emulator says no where the service does: signatures, dates, nonces, actions,
CreateJob's rules, ListJobs' default window, GetPodLogs' parameters, throttling."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Faults, Server

JOB = {
    "DisplayName": "t-emu",
    "JobType": "PyTorchJob",
    "JobSpecs": [{"Type": "Worker", "PodCount": 1, "EcsSpec": "ecs.g6.xlarge", "Image": "i"}],
    "UserCommand": "echo acc=1",
    "WorkspaceId": "ws-emu",
}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(capacity=4, phase_seconds=0.02) as s:
        yield s


def call(
    server: Server,
    method: str,
    path: str,
    action: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    *,
    date: float | None = None,
    nonce: str | None = None,
    version: str = "2020-12-03",
    unsigned: tuple[str, ...] = (),
    token: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One ACS3-HMAC-SHA256 signed request, made by hand."""
    data = json.dumps(body).encode() if body is not None else b""
    items = sorted((query or {}).items())
    headers = {
        "host": server.endpoint,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(date or time.time())),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(data).hexdigest(),
    }
    if token is not None:
        headers["x-acs-security-token"] = token
    signed = sorted(h for h in headers if h not in unsigned)
    canonical = "\n".join(
        [
            method,
            path,
            "&".join(f"{k}={quote(v, safe='~')}" for k, v in items),
            "".join(f"{h}:{headers[h]}\n" for h in signed),
            ";".join(signed),
            headers["x-acs-content-sha256"],
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(
        TEST_KEY_SECRET.encode(), f"ACS3-HMAC-SHA256\n{digest}".encode(), hashlib.sha256
    ).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={TEST_KEY_ID},SignedHeaders={';'.join(signed)},"
        f"Signature={signature}"
    )
    url = f"http://{server.endpoint}{path}" + (f"?{urlencode(items)}" if items else "")
    request = urllib.request.Request(url, data=data or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def code(answer: tuple[int, dict[str, Any], dict[str, str]]) -> tuple[int, str]:
    return answer[0], str(answer[1].get("Code", ""))


def test_a_signed_request_is_served(server: Server) -> None:
    status, body, _ = call(server, "GET", "/api/v1/jobs", "ListJobs")
    assert status == 200 and "Jobs" in body


def test_stale_dates_reused_nonces_and_unsigned_headers_are_refused(server: Server) -> None:
    stale = call(server, "GET", "/api/v1/jobs", "ListJobs", date=time.time() - 3600)
    assert code(stale) == (400, "InvalidTimeStamp.Expired")
    nonce = uuid.uuid4().hex
    assert call(server, "GET", "/api/v1/jobs", "ListJobs", nonce=nonce)[0] == 200
    assert code(call(server, "GET", "/api/v1/jobs", "ListJobs", nonce=nonce)) == (
        400,
        "SignatureNonceUsed",
    )
    for header in ("host", "x-acs-date", "x-acs-action"):
        answer = call(server, "GET", "/api/v1/jobs", "ListJobs", unsigned=(header,))
        assert code(answer) == (400, "IncompleteSignature"), header


def test_unknown_versions_and_actions_are_refused(server: Server) -> None:
    old = call(server, "GET", "/api/v1/jobs", "ListJobs", version="2019-01-01")
    assert code(old) == (400, "InvalidVersion")
    assert code(call(server, "GET", "/api/v1/jobs", "GetJob")) == (404, "InvalidAction.NotFound")
    assert code(call(server, "GET", "/api/v1/nothing", "ListJobs")) == (
        404,
        "InvalidAction.NotFound",
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"JobSpecs": [{"Type": "Chief", "PodCount": 1, "EcsSpec": "ecs.g6.xlarge"}]}, "Chief"),
        ({"JobSpecs": [{"Type": "Worker", "PodCount": 0, "EcsSpec": "ecs.g6.xlarge"}]}, "PodCount"),
        ({"JobSpecs": [{"Type": "Master", "PodCount": 2, "EcsSpec": "ecs.g6.xlarge"}]}, "one"),
        ({"Priority": 12}, "Priority"),
        ({"DisplayName": "bad name!"}, "DisplayName"),
        ({"JobType": "SparkJob"}, "JobType"),
        ({"UserCommand": ""}, "UserCommand"),
    ],
)
def test_create_job_is_validated(server: Server, change: dict[str, Any], words: str) -> None:
    status, body, _ = call(server, "POST", "/api/v1/jobs", "CreateJob", body={**JOB, **change})
    assert status == 400 and words in body["Message"], body


def test_unknown_workspaces_are_refused(server: Server) -> None:
    server.emulator.workspaces = {"ws-known"}
    try:
        answer = call(server, "POST", "/api/v1/jobs", "CreateJob", body=JOB)
    finally:
        server.emulator.workspaces = None
    assert code(answer) == (400, "InvalidWorkspaceId")


def test_list_jobs_window_and_names(server: Server) -> None:
    status, created, _ = call(
        server, "POST", "/api/v1/jobs", "CreateJob", body={**JOB, "DisplayName": "Old-Job"}
    )
    assert status == 200
    job_id = created["JobId"]
    with server.emulator.lock:
        server.emulator.jobs[job_id].created -= 8 * 24 * 3600
    listed = call(server, "GET", "/api/v1/jobs", "ListJobs", {"DisplayName": "old-job"})[1]
    assert listed["TotalCount"] == 0  # older than the default 7 days
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 9 * 24 * 3600))
    query = {"DisplayName": "old-job", "StartTime": since}
    listed = call(server, "GET", "/api/v1/jobs", "ListJobs", query)[1]
    assert [j["JobId"] for j in listed["Jobs"]] == [job_id]  # in any case, with a window


def test_pod_logs_parameters(server: Server) -> None:
    body = {**JOB, "DisplayName": "t-logs", "UserCommand": "for i in 1 2 3 4 5; do echo l$i; done"}
    job_id = call(server, "POST", "/api/v1/jobs", "CreateJob", body=body)[1]["JobId"]
    give_up = time.monotonic() + 30
    while server.emulator.jobs[job_id].status != "Succeeded":
        assert time.monotonic() < give_up
        time.sleep(0.05)
    job = call(server, "GET", f"/api/v1/jobs/{job_id}", "GetJob")[1]
    (pod,) = job["Pods"]
    assert pod["PodId"] == f"{job_id}-worker-0"
    path = f"/api/v1/jobs/{job_id}/pods/{pod['PodId']}/logs"
    logs = call(server, "GET", path, "GetPodLogs", {"MaxLines": "2"})[1]["Logs"]
    assert [line.split(" ", 1)[1] for line in logs] == ["l1", "l2"]
    after = {"StartTime": logs[1].split(" ", 1)[0], "PodUid": pod["PodUid"]}
    rest = call(server, "GET", path, "GetPodLogs", after)[1]["Logs"]
    assert [line.split(" ", 1)[1] for line in rest] == ["l2", "l3", "l4", "l5"]  # inclusive
    wrong = call(server, "GET", path, "GetPodLogs", {"PodUid": "not-the-uid"})
    assert code(wrong) == (404, "PodNotFound")
    assert code(call(server, "GET", path, "GetPodLogs", {"MaxLines": "0"}))[0] == 400
    stop = call(server, "POST", f"/api/v1/jobs/{job_id}/stop", "StopJob")
    assert code(stop) == (400, "InvalidJobStatus")  # it has ended


def test_throttling_comes_as_429_with_a_header_and_as_400_without(server: Server) -> None:
    server.emulator.faults = Faults(throttle=1.0, seed=5)
    try:
        answers = [call(server, "GET", "/api/v1/jobs", "ListJobs") for _ in range(12)]
    finally:
        server.emulator.faults = Faults()
    kinds = {(status, "x-acs-retry-after" in headers) for status, _, headers in answers}
    assert kinds == {(429, True), (400, False)}
    assert all(body["Code"] == "Throttling.User" for _, body, _ in answers)


def test_a_port_in_use_is_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tunectl_dlc.emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr


def test_an_sts_key_needs_its_token(server: Server) -> None:
    server.emulator.signatures.tokens[TEST_KEY_ID] = "sts-token-1"
    try:
        without = call(server, "GET", "/api/v1/jobs", "ListJobs")
        wrong = call(server, "GET", "/api/v1/jobs", "ListJobs", token="sts-token-2")
        right = call(server, "GET", "/api/v1/jobs", "ListJobs", token="sts-token-1")
    finally:
        del server.emulator.signatures.tokens[TEST_KEY_ID]
    assert code(without) == code(wrong) == (400, "InvalidSecurityToken.Mismatch")
    assert right[0] == 200
