"""`FakeProvider` keeps the provider contract, and plays its scripts and faults."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tunectl.providers import registry
from tunectl.providers.base import (
    MetricSource,
    MetricsRef,
    Provider,
    ProviderError,
    TaskRequest,
    TaskState,
)
from tunectl.testing.conformance import ProviderConformance
from tunectl.testing.fake import FakeProvider, Script

POLLS_PER_SECOND = 20


def request(key: str, command: str | list[str] = "", **fields: Any) -> TaskRequest:
    return TaskRequest(key, "exp", 1, "main", {"command": command}, **fields)


class TestFakeConformance(ProviderConformance):
    def make_provider(self, tmp_path: Path) -> Provider:
        return FakeProvider({}, tmp_path / "state")

    def make_request(self, key: str, command: str | list[str], **fields: Any) -> TaskRequest:
        return request(key, command, **fields)

    def scripted(
        self,
        key: str,
        output: Sequence[bytes] = (),
        exit_code: int = 0,
        seconds: float = 0.0,
        files: dict[str, bytes] | None = None,
        **fields: Any,
    ) -> TaskRequest:
        script = Script(
            output=list(output),
            exit_code=exit_code,
            polls=len(output) + int(seconds * POLLS_PER_SECOND),
            files={path: [data] for path, data in (files or {}).items()},
        )
        FakeProvider.world(self.tmp_path / "state").script(key, script)
        return request(key, "scripted", **fields)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    provider = FakeProvider({}, tmp_path / "state")
    yield provider
    provider.close()


def test_without_a_script_a_task_prints_its_command(fake: FakeProvider) -> None:
    handle = fake.submit(request("k1", "acc=0.5\nloss=1"))
    assert fake.poll([handle])[handle.id].state is TaskState.SUCCEEDED
    assert fake.read_log(handle, 0).lines == ["acc=0.5", "loss=1"]


def test_a_script_runs_for_its_polls(fake: FakeProvider, tmp_path: Path) -> None:
    world = FakeProvider.world(tmp_path / "state")
    world.script("k1", Script(output=["a\n", "b\n"], exit_code=2, polls=4, pending_polls=1))
    handle = fake.submit(request("k1"))
    states = [fake.poll([handle])[handle.id].state for _ in range(6)]
    assert states == [TaskState.PENDING] + [TaskState.RUNNING] * 3 + [TaskState.FAILED] * 2
    status = fake.poll([handle])[handle.id]
    assert status.exit_code == 2 and status.started_at and status.finished_at
    assert fake.read_log(handle, 0).lines == ["a", "b"]


def test_faults_on_demand(fake: FakeProvider, tmp_path: Path) -> None:
    world = FakeProvider.world(tmp_path / "state")
    world.fail("submit", times=2)
    for _ in range(2):
        with pytest.raises(ProviderError, match="503"):
            fake.submit(request("k1"))
    assert "k1" not in world.tasks
    world.fail("submit", after=True, message="connection reset", permanent=True)
    with pytest.raises(ProviderError) as caught:
        fake.submit(request("k2"))
    assert caught.value.permanent
    handle = fake.submit(request("k2"))  # the lost answer's task is adopted, not re-run
    assert world.started["k2"] == 1
    world.fail("poll")
    with pytest.raises(ProviderError):
        fake.poll([handle])
    world.lose("k2")
    assert fake.poll([handle])[handle.id].state is TaskState.LOST
    assert world.calls["submit"] == 4


def test_read_metrics_serves_files(fake: FakeProvider, tmp_path: Path) -> None:
    world = FakeProvider.world(tmp_path / "state")
    world.script("k1", Script(files={"m.jsonl": ['{"acc": 1}\n', '{"acc": 2}\n']}))
    handle = fake.submit(request("k1", metrics_files=("m.jsonl",)))
    fake.poll([handle])
    ref = MetricsRef(MetricSource.FILE, "m.jsonl")
    assert fake.read_metrics(handle, ref, 0).lines == ['{"acc": 1}']
    fake.poll([handle])
    assert fake.read_metrics(handle, ref, 0).lines == ['{"acc": 1}', '{"acc": 2}']
    with pytest.raises(ProviderError, match="cannot read events"):
        fake.read_metrics(handle, MetricsRef(MetricSource.EVENTS, "logs"), 0)


def test_read_metrics_serves_table_rows(fake: FakeProvider, tmp_path: Path) -> None:
    world = FakeProvider.world(tmp_path / "state")
    world.script("k1", Script(rows=["acc=1 step=0\n", '{"acc": 2}\n'], polls=3))
    handle = fake.submit(request("k1"))
    ref = MetricsRef(MetricSource.TABLE, "select acc from eval_1")
    fake.poll([handle])
    first = fake.read_metrics(handle, ref, 0)
    assert first.lines == ["acc=1 step=0"]
    fake.poll([handle])
    assert fake.read_metrics(handle, ref, first.cursor).lines == ['{"acc": 2}']
    assert world.queries == [ref.location, ref.location]


def test_install_registers_it_for_configurations() -> None:
    with pytest.raises(KeyError):
        registry.load("fake")
    undo = FakeProvider.install()
    try:
        assert registry.load("fake") is FakeProvider
        assert "fake" in registry.entries()
    finally:
        undo()
    assert "fake" not in registry.entries()
