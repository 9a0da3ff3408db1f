"""The emulator's signature check and its faults, seen through real pyodps; its command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import requests
from odps import ODPS, errors
from odps.accounts import AliyunAccount
from odps.models import Instance
from tunectl_maxcompute.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Faults, Server


def admin(server: Server, path: str, spec: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/_emulator/{path}",
        data=None if spec is None else json.dumps(spec).encode(),
        method="GET" if spec is None else "POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_wrong_secret_or_key_is_refused(server: Server) -> None:
    wrong = ODPS(TEST_KEY_ID, "not-the-secret", project="p", endpoint=server.endpoint)
    with pytest.raises(errors.SignatureNotMatch, match="ODPS-0410042") as caught:
        wrong.run_sql("SELECT 1")
    assert caught.value.code == "SignatureNotMatch" and caught.value.request_id
    stranger = ODPS("LTAI-nobody", TEST_KEY_SECRET, project="p", endpoint=server.endpoint)
    with pytest.raises(errors.Unauthorized, match="ODPS-0410051"):
        stranger.run_sql("SELECT 1")
    assert not server.emulator.instances


def signed(server: Server, method: str, path: str, secret: str = TEST_KEY_SECRET):
    request = requests.Request(
        method, server.endpoint + path, headers={"x-odps-user-agent": "test"}
    ).prepare()
    AliyunAccount(TEST_KEY_ID, secret).sign_request(request, server.endpoint)
    return request


def test_the_signature_covers_method_path_query_and_headers(server: Server) -> None:
    session = requests.Session()
    session.trust_env = False
    good = signed(server, "GET", "/projects/p/instances?curr_project=p&status=Running")
    assert session.send(good).status_code == 200
    for tamper in (
        lambda r: setattr(r, "url", r.url.replace("status=Running", "status=Terminated")),
        lambda r: setattr(r, "url", r.url.replace("/projects/p/", "/projects/q/")),
        lambda r: r.headers.update({"x-odps-user-agent": "other"}),
        lambda r: r.headers.update({"Date": "Thu, 01 Jan 1970 00:00:00 GMT"}),
        lambda r: setattr(r, "method", "DELETE"),
    ):
        request = signed(server, "GET", "/projects/p/instances?curr_project=p&status=Running")
        tamper(request)
        answer = session.send(request)
        assert answer.status_code == 401, answer.text
        assert "<Code>SignatureNotMatch</Code>" in answer.text
        assert "<RequestId>" in answer.text and "<HostId>" in answer.text
    unsigned = requests.Request("GET", server.endpoint + "/projects/p").prepare()
    assert session.send(unsigned).status_code == 401


def test_v4_signatures_are_checked_too(server: Server) -> None:
    odps = ODPS(TEST_KEY_ID, TEST_KEY_SECRET, "p", endpoint=server.endpoint, region_name="cn-test")
    assert odps.execute_sql("SELECT 1").is_successful()
    wrong = ODPS(TEST_KEY_ID, "nope", "p", endpoint=server.endpoint, region_name="cn-test")
    with pytest.raises(errors.ODPSError):
        wrong.run_sql("SELECT 1")


def test_throttling_is_a_429_that_pyodps_does_not_retry(server: Server, odps: ODPS) -> None:
    server.emulator.faults = Faults(throttle=1.0)
    with pytest.raises(errors.RequestQuotaExceeded, match="ODPS-0420095"):
        odps.run_sql("SELECT 1")
    assert server.emulator.calls["POST instances"] == 1
    assert not server.emulator.instances


def test_unavailable_is_a_503_retried_on_reads(server: Server, odps: ODPS) -> None:
    instance = odps.run_sql("SELECT 1")
    admin(server, "faults", {"unavailable": 1.0})
    with pytest.raises(errors.ServiceUnavailable):
        odps.get_instance(instance.id).reload()
    assert server.emulator.calls["GET instance"] > 1  # RestClient retried it
    with pytest.raises(errors.ServiceUnavailable):
        odps.run_sql("SELECT 1")  # a create is never retried once sent
    admin(server, "faults", {})
    instance.wait_for_success()


def test_errors_are_500s(server: Server, odps: ODPS) -> None:
    instance = odps.run_sql("SELECT 1")
    admin(server, "faults", {"error": 1.0})
    with pytest.raises(errors.InternalServerError, match="ODPS-0010000"):
        odps.run_sql("SELECT 1")
    # Half the calls fail, drawn from the seed: the same seed, the same failures.
    outcomes = []
    for _ in range(2):
        admin(server, "faults", {"error": 0.5, "seed": 7})
        outcome = []
        for _ in range(8):
            try:
                odps.get_instance(instance.id).reload()
                outcome.append(True)
            except errors.InternalServerError:
                outcome.append(False)
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1] and True in outcomes[0] and False in outcomes[0]


def test_slow_answers(server: Server, odps: ODPS) -> None:
    instance = odps.run_sql("SELECT 1")
    server.emulator.faults = Faults(slow=0.3)
    started = time.monotonic()
    odps.get_instance(instance.id).reload()
    assert time.monotonic() - started >= 0.3


def test_an_instance_that_vanishes_is_not_found(server: Server, odps: ODPS) -> None:
    server.emulator.sql_seconds = 30
    instance = odps.run_sql("SELECT 1")
    admin(server, f"instances/{instance.id}/vanish", {})
    with pytest.raises(errors.NoSuchObject):
        odps.get_instance(instance.id).reload()
    assert not odps.exist_instance(instance.id)
    server.emulator.vanish("no-such-instance")  # the Python API, and nothing to do


def test_an_instance_stopped_from_outside(server: Server, odps: ODPS) -> None:
    server.emulator.sql_seconds = 30
    first, second = odps.run_sql("SELECT 1"), odps.run_sql("SELECT 2")
    admin(server, f"instances/{first.id}/stop-outside", {})
    server.emulator.stop_outside(second.id)
    for instance in (first, second):
        instance.wait_for_completion(interval=0.05)
        status = instance.get_task_statuses()["AnonymousSQLTask"].status
        assert status == Instance.Task.TaskStatus.CANCELLED
    calls = admin(server, "calls")
    assert calls["POST instances"] == 2


def test_the_command_starts_the_emulator(tmp_path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tunectl_maxcompute.emulator import main; main()",
            "--port",
            "0",
            "--sql-seconds",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("MaxCompute emulator on http://127.0.0.1:"), line
        endpoint = line.split()[3]
        odps = ODPS(TEST_KEY_ID, TEST_KEY_SECRET, project="p", endpoint=endpoint)
        assert odps.execute_sql("SELECT 1").is_successful()
    finally:
        process.terminate()
        process.wait(timeout=10)
