"""The MaxCompute provider's own calls, through pyodps against the emulator over HTTP:
adoption by key, batched status, settings, metrics tables, validation."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tunectl_maxcompute import MaxComputeProvider
from tunectl_maxcompute.emulator import Server

from tunectl.providers.base import (
    MetricSource,
    MetricsRef,
    TaskHandle,
    TaskRequest,
    TaskState,
    ValidateConfigRequest,
    ValidateTaskRequest,
)

pytestmark = pytest.mark.usefixtures("credentials")


def provider(server: Server, tmp_path: Path, **config: object) -> MaxComputeProvider:
    settings = {"project": "prov_p", "endpoint": server.endpoint, "metrics_interval": 0}
    return MaxComputeProvider({**settings, **config}, tmp_path / "state")


def echo(key: str, seconds: float = 0.0, **fields: object) -> TaskRequest:
    pai = f"-name echo -project algo_public -Doutput=hi -Dseconds={seconds:g}"
    return TaskRequest(key, "exp", 0, "main", {"pai": pai}, **fields)  # type: ignore[arg-type]


def run_to_end(p: MaxComputeProvider, handle: TaskHandle, within: float = 20.0):
    deadline = time.monotonic() + within
    while True:
        status = p.poll([handle])[handle.id]
        if status.state.terminal:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def instances_for(server: Server, key: str) -> list:
    with server.emulator.lock:
        return [
            i for i in server.emulator.instances.values() if i.settings.get("EXT_TASK_ID") == key
        ]


def test_a_key_an_earlier_process_recorded_is_found_not_created_again(
    server: Server, tmp_path: Path
) -> None:
    server.emulator.guid_dedup = False  # only the provider's lookup stands in the way
    recorded = time.time()
    first = provider(server, tmp_path).submit(echo("k-dead", 5, recorded_at=recorded))
    # The process that submitted it died; a later one submits the recorded key again.
    later = provider(server, tmp_path)
    assert later.submit(echo("k-dead", 5, recorded_at=recorded)) == first
    assert len(instances_for(server, "k-dead")) == 1
    # A key recorded in this process is new: created without a lookup.
    before = later.calls
    fresh = later.submit(echo("k-new", recorded_at=time.time()))
    assert later.calls - before == 1 and fresh.id != first.id


def test_a_create_whose_answer_was_lost_is_looked_up_before_retrying(
    server: Server, tmp_path: Path
) -> None:
    server.emulator.guid_dedup = False
    server.emulator.lose_answers = 1  # the instance is created; the client gets a 502
    p = provider(server, tmp_path)
    handle = p.submit(echo("k-lost", recorded_at=time.time()))
    assert [i.id for i in instances_for(server, "k-lost")] == [handle.id]
    assert run_to_end(p, handle).state is TaskState.SUCCEEDED


def test_status_of_many_instances_is_one_list_call(server: Server, tmp_path: Path) -> None:
    p = provider(server, tmp_path)
    handles = [p.submit(echo(f"k-many-{i}", 30, recorded_at=time.time())) for i in range(30)]
    p.poll(handles)  # each new instance may be asked for once, until it is listed
    before = dict(server.emulator.calls)
    statuses = p.poll(handles)
    after = dict(server.emulator.calls)
    assert {s.state for s in statuses.values()} == {TaskState.RUNNING}
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {
        "GET instances": 1
    }
    for handle in handles:
        p.cancel(handle)


def test_jobs_carry_their_key_priority_quota_and_hints(server: Server, tmp_path: Path) -> None:
    p = provider(
        server, tmp_path, priority=3, quota="q_small", hints={"odps.sql.mapper.split.size": 256}
    )
    request = TaskRequest(
        "k-settings",
        "exp",
        4,
        "score",
        {"sql": ["create table if not exists t4 (a double)", "insert into t4 values (1)"]},
        settings={"priority": 1, "hints": {"odps.sql.type.system.odps2": True}},
        timeout=600,
    )
    handle = p.submit(request)
    assert run_to_end(p, handle).state is TaskState.SUCCEEDED
    (instance,) = instances_for(server, "k-settings")
    assert instance.priority == 1  # the trial's over the provider's
    expected = {
        "EXT_PLATFORM_ID": "tunectl",
        "EXT_TASK_ID": "k-settings",
        "EXT_NODE_NAME": "exp/trial-4/score",
        "TUNECTL_TIMEOUT": "600",
        "odps.task.wlm.quota": "q_small",
        "odps.sql.mapper.split.size": "256",
        "odps.sql.type.system.odps2": "true",
        "odps.sql.submit.mode": "script",
    }
    assert {k: instance.settings.get(k) for k in expected} == expected  # pyodps adds its own
    assert instance.guid  # the key's Guid: the service deduplicates by it too
    query = ET.fromstring(instance.source).findtext(".//Query") or ""
    assert "create table if not exists t4" in query and "insert into t4" in query


def test_a_timeout_stops_an_adopted_instance_too(server: Server, tmp_path: Path) -> None:
    recorded = time.time()
    handle = provider(server, tmp_path).submit(echo("k-slow", 60, recorded_at=recorded, timeout=1))
    later = provider(server, tmp_path)  # knows the limit only from the job's settings
    assert later.submit(echo("k-slow", 60, recorded_at=recorded, timeout=1)) == handle
    status = run_to_end(later, handle, within=15)
    assert status.state is TaskState.FAILED and status.message == "timed out"
    (instance,) = instances_for(server, "k-slow")
    assert instance.task_status == "Cancelled"


def test_a_failed_task_reports_the_service_error(server: Server, tmp_path: Path) -> None:
    p = provider(server, tmp_path)
    request = TaskRequest("k-fail", "exp", 0, "t", {"sql": "select * from no_such_table"})
    status = run_to_end(p, p.submit(request))
    assert status.state is TaskState.FAILED and status.exit_code == 1
    assert status.message.startswith("ODPS-0130131:")
    # A body made from a sensitive value: the error's text may quote it, so only its code.
    quiet = TaskRequest(
        "k-fail-q",
        "exp",
        0,
        "t",
        {"sql": "select 'sekrit' from nope"},
        sensitive=frozenset({"sql"}),
    )
    status = run_to_end(p, p.submit(quiet))
    assert status.message == "ODPS-0130131"


def test_metrics_table_while_running_and_at_the_end(server: Server, tmp_path: Path) -> None:
    p = provider(server, tmp_path)
    o = server.emulator.database("prov_p")
    o.write("curve", [("step", "bigint"), ("acc", "double")], [(1, 0.5)])
    handle = p.submit(echo("k-curve", 2))
    ref = MetricsRef(MetricSource.TABLE, "select step, acc from curve order by step")
    p.poll([handle])
    lines: list[str] = []
    deadline = time.monotonic() + 10
    while not lines:  # the query runs in the background; a later read takes its rows
        lines = p.read_metrics(handle, ref, 0).lines
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [json.loads(line) for line in lines] == [{"step": 1, "acc": 0.5}]
    o.write("curve", [("step", "bigint"), ("acc", "double")], [(1, 0.5), (2, 0.75)])
    assert run_to_end(p, handle).state is TaskState.SUCCEEDED
    final = p.read_metrics(handle, ref, 1)  # after the end: one last query, waited for
    assert [json.loads(line) for line in final.lines] == [{"step": 2, "acc": 0.75}]
    assert p.read_metrics(handle, ref, final.cursor).lines == []
    missing = MetricsRef(MetricSource.TABLE, "select acc from not_written_yet")
    assert p.read_metrics(handle, missing, 0).lines == []  # no table yet: no rows


def test_validation_of_the_provider_block_and_tasks() -> None:
    def config_errors(**config: object) -> list[tuple[tuple, str]]:
        base = {
            "project": "my_proj",
            "endpoint": "http://service.cn-hangzhou.maxcompute.aliyun.com/api",
        }
        found = MaxComputeProvider.validate_config(ValidateConfigRequest({**base, **config}))
        return [(d.path, d.summary) for d in found.diagnostics]

    assert config_errors() == []
    assert config_errors(project="a b") == [(("project",), "Invalid project")]
    assert config_errors(endpoint="service.maxcompute") == [(("endpoint",), "Invalid endpoint")]
    assert config_errors(priority=10) == [(("priority",), "Invalid priority")]
    assert config_errors(hints={"EXT_TASK_ID": "x"}) == [(("hints",), "Invalid hints")]
    assert config_errors(hints={"a": {"b": 1}}) == [(("hints",), "Invalid hints")]
    assert config_errors(metrics_interval=-1) == [
        (("metrics_interval",), "Invalid metrics_interval")
    ]
    both = MaxComputeProvider.validate_task(
        ValidateTaskRequest({}, {}, "t", frozenset({"pai", "sql"}))
    )
    assert [d.path for d in both.diagnostics] == [("sql",)]
    assert "two tasks" in both.diagnostics[0].detail


def test_by_default_a_metrics_table_is_queried_once_the_task_has_ended(
    server: Server, tmp_path: Path
) -> None:
    p = MaxComputeProvider({"project": "prov_p", "endpoint": server.endpoint}, tmp_path)
    server.emulator.database("prov_p").write("final", [("acc", "double")], [(0.9,)])
    handle = p.submit(echo("k-final", 1))
    ref = MetricsRef(MetricSource.TABLE, "select acc from final")
    for _ in range(5):  # while it runs: no query (each would be a billed job)
        p.poll([handle])
        assert p.read_metrics(handle, ref, 0).lines == []
    assert run_to_end(p, handle).state is TaskState.SUCCEEDED
    assert [json.loads(x) for x in p.read_metrics(handle, ref, 0).lines] == [{"acc": 0.9}]
    with server.emulator.lock:
        queries = [i for i in server.emulator.instances.values() if i.task_type == "SQL"]
    assert len(queries) == 1
