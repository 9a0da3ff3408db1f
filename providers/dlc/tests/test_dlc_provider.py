"""The dlc provider through the official SDK against the shipped DLC API emulator.

Real HTTP on 127.0.0.1, real ACS3-HMAC-SHA256 signatures; jobs run as local processes.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tunectl_dlc import DlcProvider
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server

from tunectl.providers.base import (
    AttributeDiagnostic,
    MetricSource,
    TaskRequest,
    TaskState,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
)
from tunectl.providers.bodies import COMMAND
from tunectl.testing.conformance import ProviderConformance

SETTINGS = {
    "job_type": "PyTorchJob",
    "image": "registry.cn-hangzhou.aliyuncs.com/pai-dlc/pytorch-training:2.1-cpu",
    "worker": {"count": 1, "ecs_spec": "ecs.g6.xlarge"},
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)  # the SDK ignores NO_PROXY
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = TEST_KEY_ID
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = TEST_KEY_SECRET
    with Server(capacity=16, phase_seconds=0.02) as server:
        yield server


def provider_for(server: Server, tmp_path: Path, **extra: Any) -> DlcProvider:
    config = {
        "region": "cn-hangzhou",
        "workspace_id": "ws-1",
        "endpoint": server.endpoint,
        "protocol": "http",
        "log_interval": 0,
        "log_delay": 0,
        **extra,
    }
    return DlcProvider(config, tmp_path)


def admin(server: Server, path: str, body: dict | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        f"http://{server.endpoint}{path}", data=data, method="POST" if body is not None else "GET"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class TestDlcConformance(ProviderConformance):
    finish_within = 30.0
    cursor_is_bytes = False  # GetPodLogs serves lines: the cursor counts them

    @pytest.fixture(autouse=True)
    def _server(self, emulator: Server) -> None:
        self.server = emulator

    def make_provider(self, tmp_path: Path) -> DlcProvider:
        return provider_for(self.server, tmp_path)

    def make_request(self, key: str, command: str | list[str], **fields: Any) -> TaskRequest:
        settings = {**SETTINGS, **fields.pop("settings", {})}
        return TaskRequest(
            key=key,
            experiment="conf",
            trial_number=0,
            task_name="main",
            bodies={"command": command},
            settings=settings,
            **fields,
        )


def test_validate_task_in_pai_terms() -> None:
    def validate(settings: dict[str, Any]) -> tuple[AttributeDiagnostic, ...]:
        config = {"region": "cn-hangzhou"}
        return DlcProvider.validate_task(ValidateTaskRequest(settings, config)).diagnostics

    assert validate(SETTINGS) == ()
    problems = validate(
        {
            "image": "",
            "worker": {"count": 0, "ecs_spec": "ecs.g6.xlarge", "cpu": 4},
            "ps": "two",
            "priority": 12,
            "max_running_time": "soon",
            "data_sources": [{"mount_path": "/mnt"}],
        }
    )
    assert {d.path[0] for d in problems} == {
        "image",
        "worker",
        "ps",
        "priority",
        "max_running_time",
        "data_sources",
    }
    text = "\n".join(d.detail for d in problems)
    for expected in (
        "needs image",
        "worker.count",
        "either ecs_spec",
        "resource quota",
        "ps must be a map",
        "priority must be between 1 and 9",
        "max_running_time",
        "data_sources[0]",
    ):
        assert expected in text, (expected, text)


def test_validate_config_names_the_attribute() -> None:
    bad = {"region": "Hangzhou", "endpoint": "a b", "log_interval": -1, "prices": {"x": "1"}}
    found = DlcProvider.validate_config(ValidateConfigRequest(bad)).diagnostics
    assert [d.path for d in found] == [("region",), ("endpoint",), ("log_interval",), ("prices",)]
    assert DlcProvider.validate_config(ValidateConfigRequest({"region": "cn-hangzhou"})) == (
        ValidateResponse()
    )


def test_declares_commands_and_stdout_metrics() -> None:
    assert DlcProvider.task_bodies == (COMMAND,)
    assert DlcProvider.capabilities.metric_sources == {MetricSource.STDOUT}


def test_price_estimate(emulator: Server, tmp_path: Path) -> None:
    provider = provider_for(emulator, tmp_path, prices={"ecs.custom": 10.0})
    two = {**SETTINGS, "worker": {"count": 2, "ecs_spec": "ecs.custom"}}
    assert provider.estimate_price(two, 1800) == pytest.approx(10.0)
    unknown = {**SETTINGS, "worker": {"count": 1, "ecs_spec": "ecs.unknown"}}
    assert provider.estimate_price(unknown, 3600) is None


# Wrong credentials are tested from the CLI (test_dlc_cli.py): the credentials SDK reads
# the environment once per process, so only a new process can show a changed key.


def test_status_calls_grow_with_pages_not_jobs(emulator: Server, tmp_path: Path) -> None:
    provider = provider_for(emulator, tmp_path)
    handles = [
        provider.submit(
            TaskRequest(
                f"t-page-{i}", "pages", i, "main", {"command": "sleep 5"}, settings=SETTINGS
            )
        )
        for i in range(150)
    ]
    try:
        before = provider.calls
        statuses = provider.poll(handles)
        assert len(statuses) == 150
        assert provider.calls - before == 2  # two pages of 100, not 150 calls
    finally:
        for handle in handles:
            provider.cancel(handle)


def test_faults_are_retried(emulator: Server, tmp_path: Path) -> None:
    provider = provider_for(emulator, tmp_path)
    admin(emulator, "/_emulator/faults", {"throttle": 0.2, "error": 0.2, "seed": 3})
    try:
        request = TaskRequest(
            "t-faulty", "faults", 0, "main", {"command": "echo acc=1"}, settings=SETTINGS
        )
        handle = provider.submit(request)
        for _ in range(200):
            status = provider.poll([handle])[handle.id]
            if status.state.terminal:
                break
        assert status.state is TaskState.SUCCEEDED
        assert provider.read_log(handle, 0).lines == ["acc=1"]
        # The job was created once, even though calls failed around its creation: another
        # tunectl process submitting the key adopts it.
        assert provider_for(emulator, tmp_path).submit(request) == handle
    finally:
        admin(emulator, "/_emulator/faults", {})


def test_exit_codes_from_any_reason_dlc_gives() -> None:
    from types import SimpleNamespace as Job

    from tunectl_dlc.jobs import job_status

    def code(**fields: Any) -> int | None:
        base = {"job_id": "dlc1", "status": "Failed", "reason_message": "", "reason_code": ""}
        return job_status(Job(**{**base, **fields})).exit_code

    assert code(reason_message="Pod dlc1-master-0 terminated: exitCode: 3, reason: Error") == 3
    assert code(reason_message="worker exited with code 7") == 7
    history = [Job(reason_message="ExitCode=2"), Job(reason_message="")]
    assert code(status_history=history) == 2
    assert code(pods=[Job(sub_status="OOMKilled exit code 137")]) == 137
    assert code(reason_message="JobFailed") is None
    assert code(status="Succeeded") == 0


def test_jobs_older_than_a_week_are_listed(
    emulator: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries: list[dict[str, str]] = []
    listed = emulator.emulator.list_jobs

    def recording(query: dict[str, str]) -> dict[str, Any]:
        queries.append(query)
        return listed(query)

    monkeypatch.setattr(emulator.emulator, "list_jobs", recording)
    request = TaskRequest(
        "t-old-week", "weeks", 0, "main", {"command": "sleep 30"}, settings=SETTINGS
    )
    handle = provider_for(emulator, tmp_path).submit(request)
    # The experiment and its job were made eight days ago (as the state records it).
    eight_days = 8 * 24 * 3600
    with emulator.emulator.lock:
        emulator.emulator.jobs[handle.id].created -= eight_days
    since = tmp_path / "dlc-since.json"
    times = json.loads(since.read_text())
    since.write_text(json.dumps({k: v - eight_days for k, v in times.items()}))
    try:
        restarted = provider_for(emulator, tmp_path)
        assert restarted.submit(request) == handle  # adopted, not created again
        gets = emulator.emulator.calls["GetJob"]
        assert restarted.poll([handle])[handle.id].state is not TaskState.LOST
        assert emulator.emulator.calls["GetJob"] == gets  # found by the listing itself
        assert queries and all(q.get("StartTime") and q.get("WorkspaceId") for q in queries)
        # Without StartTime, the listing would not see it (7-day default window).
        assert listed({"JobIds": handle.id})["TotalCount"] == 0
    finally:
        restarted.cancel(handle)


def test_validate_task_as_strict_as_the_api() -> None:
    def details(settings: dict[str, Any]) -> str:
        config = {"region": "cn-hangzhou", "resource_id": "quota-1"}
        found = DlcProvider.validate_task(ValidateTaskRequest(settings, config)).diagnostics
        return "\n".join(d.detail for d in found)

    ecs = {"count": 1, "ecs_spec": "ecs.g6.xlarge"}
    assert "a PyTorchJob has no chief (its roles: master, worker)" in details(
        {**SETTINGS, "chief": ecs}
    )
    assert "a RayJob has no ps" in details({**SETTINGS, "job_type": "RayJob", "ps": ecs})
    assert details({**SETTINGS, "job_type": "RayJob", "head": ecs}) == ""
    assert details({**SETTINGS, "job_type": "TFJob", "chief": ecs, "evaluator": ecs}) == ""
    assert "chief.count must be 1" in details(
        {**SETTINGS, "job_type": "TFJob", "chief": {**ecs, "count": 2}}
    )
    quota = {"count": 1, "cpu": 4, "memory": "16G", "shared_memory": "2Gi"}
    assert 'worker.memory must be a size with its unit, such as "16Gi"' in details(
        {**SETTINGS, "worker": quota}
    )
    assert details({**SETTINGS, "worker": {**quota, "memory": "16Gi"}}) == ""
    assert "worker.cpu must be a number of cores above 0" in details(
        {**SETTINGS, "worker": {**quota, "memory": "1Gi", "cpu": 0}}
    )
    assert "priority must be between 1 and 9" in details({**SETTINGS, "priority": 0})


def test_timeout_rounds_up_into_the_cloud_limit_with_a_margin(
    emulator: Server, tmp_path: Path
) -> None:
    from tunectl_dlc.jobs import LIMIT_MARGIN_MINUTES

    provider = provider_for(emulator, tmp_path)
    handle = provider.submit(
        TaskRequest(
            "t-limit", "limits", 0, "main", {"command": "true"}, timeout=61, settings=SETTINGS
        )
    )
    explicit = provider.submit(
        TaskRequest(
            "t-limit-explicit",
            "limits",
            1,
            "main",
            {"command": "true"},
            settings={**SETTINGS, "max_running_time": "90s"},
        )
    )
    with emulator.emulator.lock:
        spec = emulator.emulator.jobs[handle.id].spec
        explicit_spec = emulator.emulator.jobs[explicit.id].spec
    assert spec["JobMaxRunningTimeMinutes"] == 2 + LIMIT_MARGIN_MINUTES  # 61 s: up, never down
    assert explicit_spec["JobMaxRunningTimeMinutes"] == 2  # the user's own limit, rounded up


def test_pai_settings_reach_create_job(
    emulator: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_USER", "robot")
    monkeypatch.setenv("REGISTRY_PASSWORD", "s3cret-registry")
    settings = {
        **SETTINGS,
        "job_type": "TFJob",
        "worker": {"count": 2, "ecs_spec": "ecs.g6.xlarge", "spot": {"price_limit": 0.5}},
        "chief": {"count": 1, "ecs_spec": "ecs.g6.xlarge"},
        "user_vpc": {"vpc_id": "vpc-1", "security_group_id": "sg-1", "switch_id": "vsw-1"},
        "thirdparty_libs": ["numpy==1.26.4"],
        "image_config": {
            "registry": "registry.example.com",
            "username_env": "REGISTRY_USER",
            "password_env": "REGISTRY_PASSWORD",
        },
        "success_policy": "ChiefWorker",
    }
    found = DlcProvider.validate_task(ValidateTaskRequest(settings, {"region": "cn-hangzhou"}))
    assert found.diagnostics == ()
    provider = provider_for(emulator, tmp_path)
    handle = provider.submit(
        TaskRequest("t-pai", "pai", 0, "main", {"command": "true"}, settings=settings)
    )
    with emulator.emulator.lock:
        spec = emulator.emulator.jobs[handle.id].spec
    assert spec["UserVpc"] == {"VpcId": "vpc-1", "SecurityGroupId": "sg-1", "SwitchId": "vsw-1"}
    assert spec["ThirdpartyLibs"] == ["numpy==1.26.4"] and spec["SuccessPolicy"] == "ChiefWorker"
    worker = next(s for s in spec["JobSpecs"] if s["Type"] == "Worker")
    assert worker["SpotSpec"] == {"SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": 0.5}
    assert worker["ImageConfig"]["Password"] == "s3cret-registry"  # from the environment
    assert "s3cret-registry" not in "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file()
    )


def test_pai_settings_are_checked() -> None:
    def details(settings: dict[str, Any]) -> str:
        request = ValidateTaskRequest({**SETTINGS, **settings}, {"region": "cn-hangzhou"})
        return "\n".join(d.detail for d in DlcProvider.validate_task(request).diagnostics)

    assert "needs security_group_id" in details({"user_vpc": {"vpc_id": "vpc-1"}})
    assert "list of pip requirements" in details({"thirdparty_libs": "numpy"})
    assert "never the credentials" in details(
        {"image_config": {"registry": "r", "username": "u", "password": "p"}}
    )
    assert "TFJob only" in details({"success_policy": "ChiefWorker"})
    spot = {
        "count": 1,
        "ecs_spec": "ecs.g6.xlarge",
        "spot": {"price_limit": 1, "discount_limit": 0.2},
    }
    assert "one of price_limit or discount_limit" in details({"worker": spot})
