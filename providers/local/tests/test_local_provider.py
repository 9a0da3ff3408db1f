"""Tests of the `local` provider: the shared conformance cases plus local specifics."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import tunectl_local.spawn as spawn_module
import tunectl_local.stop as stop_module
from tunectl_local import LocalProvider

from tunectl.providers.base import (
    LogChunk,
    MetricSource,
    Provider,
    ProviderError,
    TaskHandle,
    TaskRequest,
    TaskState,
    TaskStatus,
    ValidateConfigRequest,
    ValidateTaskRequest,
)
from tunectl.providers.bodies import COMMAND
from tunectl.testing.conformance import ProviderConformance


def request(key: str, command: str | list[str], **fields: Any) -> TaskRequest:
    return TaskRequest(
        key=key,
        experiment="exp",
        trial_number=1,
        task_name="main",
        bodies={"command": command},
        **fields,
    )


class TestLocalConformance(ProviderConformance):
    def make_provider(self, tmp_path: Path) -> Provider:
        return LocalProvider({"slots": 4}, tmp_path / "state")

    def make_request(self, key: str, command: str | list[str], **fields: Any) -> TaskRequest:
        return request(key, command, **fields)


# -- local specifics ---------------------------------------------------------------------


class Harness:
    """Providers and tasks of one test; whatever still runs is cancelled at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "state"
        self.providers: list[LocalProvider] = []
        self.handles: list[TaskHandle] = []

    def provider(self, **config: Any) -> LocalProvider:
        provider = LocalProvider(config or {"slots": 4}, self.state_dir)
        self.providers.append(provider)
        return provider

    def submit(self, provider: LocalProvider, key: str, command: str | list[str], **fields: Any):
        handle = provider.submit(request(key, command, **fields))
        self.handles.append(handle)
        return handle

    def run_to_end(self, provider: Provider, handle: TaskHandle, within: float = 30) -> TaskStatus:
        give_up = time.monotonic() + within
        while True:
            status = provider.poll([handle])[handle.id]
            if status.state.terminal:
                return status
            assert time.monotonic() < give_up, f"task still {status.state.value}"
            provider.wait([handle], 1.0)

    def wait_until(self, provider: Provider, handle: TaskHandle, state: TaskState, within=10.0):
        give_up = time.monotonic() + within
        while True:
            status = provider.poll([handle])[handle.id]
            if status.state is state:
                return status
            assert time.monotonic() < give_up, f"task still {status.state.value}: {status}"
            time.sleep(0.02)

    def close(self) -> None:
        if self.providers:
            for handle in self.handles:
                try:
                    self.providers[0].cancel(handle)
                except ProviderError:
                    pass
        for provider in self.providers:
            provider.close()


@pytest.fixture
def h(tmp_path: Path):
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def lines(provider: Provider, handle: TaskHandle) -> list[str]:
    return provider.read_log(handle, 0).lines


def key() -> str:
    return "k-" + uuid.uuid4().hex[:12]


def process_running(pattern: str) -> bool:
    return bool(subprocess.run(["pgrep", "-f", pattern], capture_output=True).stdout.strip())


def zombie_children() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(name))
    return found


def test_registered_as_entry_point() -> None:
    (entry,) = [e for e in metadata.entry_points(group="tunectl.providers") if e.name == "local"]
    assert entry.value == "tunectl_local:LocalProvider"
    assert entry.load() is LocalProvider
    assert entry.dist is not None and entry.dist.name == "tunectl-provider-local"


def test_schema_and_capacity(tmp_path: Path) -> None:
    caps = LocalProvider.capabilities
    assert LocalProvider.name == "local"
    assert caps.events and caps.host_local and caps.local_files
    assert caps.metric_sources == {MetricSource.STDOUT, MetricSource.FILE, MetricSource.EVENTS}
    assert caps.local_model_dir and not caps.price
    assert LocalProvider.task_bodies == (COMMAND,)
    config = {s.name: s for s in LocalProvider.config_schema}
    assert config["slots"].type == "int" and config["slots"].default == os.cpu_count()
    assert config["gpus"].type == "list(string)" and not config["gpus"].required
    assert config["python"].type == "string" and not config["python"].required
    (trial,) = LocalProvider.trial_schema
    assert (trial.name, trial.type, trial.default) == ("gpus_per_task", "int", 0)
    assert LocalProvider({"slots": 3}, tmp_path).capacity() == 3
    assert LocalProvider({}, tmp_path).capacity() == (os.cpu_count() or 1)


def test_validation() -> None:
    def task(settings: dict[str, Any], gpus: list[str]) -> list[str]:
        found = LocalProvider.validate_task(ValidateTaskRequest(settings, {"gpus": gpus}))
        assert all(d.path == ("gpus_per_task",) for d in found.diagnostics)
        return [d.detail for d in found.diagnostics]

    two = ["0", "1"]
    assert task({"gpus_per_task": 2}, two) == []
    assert task({}, two) == []
    assert "only 2 GPUs" in task({"gpus_per_task": 3}, two)[0]
    assert "no GPUs" in task({"gpus_per_task": 1}, [])[0]
    assert "negative" in task({"gpus_per_task": -1}, two)[0]
    assert "integer" in task({"gpus_per_task": "many"}, two)[0]
    assert LocalProvider.validate_config(ValidateConfigRequest({"gpus": two})).diagnostics == ()
    bad = {"slots": 0, "gpus": ["0", "0"], "python": "/no/such/python"}
    found = LocalProvider.validate_config(ValidateConfigRequest(bad))
    diags = found.diagnostics
    assert found.has_errors
    assert [d.severity for d in diags] == ["error", "error", "warning"]
    assert [d.path for d in diags] == [("slots",), ("gpus",), ("python",)]
    assert "more than once" in diags[1].detail


def test_task_files_and_no_secrets(h: Harness) -> None:
    p = h.provider()
    k = key()
    handle = h.submit(p, k, "echo out; echo err >&2", env={"API_TOKEN": "s3cret-value"})
    assert handle == TaskHandle(k, k)
    assert h.run_to_end(p, handle).state is TaskState.SUCCEEDED
    d = h.state_dir / "tasks" / k
    assert {"spec.json", "out.log", "started", "exit", "lock", "pid"} <= {
        f.name for f in d.iterdir()
    }
    assert (d / "exit").read_text().strip() == "0"
    assert int((d / "pid").read_text()) > 1
    spec = json.loads((d / "spec.json").read_text())
    assert spec["key"] == k and spec["command"] == "echo out; echo err >&2"
    assert spec["env_names"] == ["API_TOKEN"]
    for f in d.iterdir():
        assert "s3cret-value" not in f.read_text(errors="replace")
    assert sorted(lines(p, handle)) == ["err", "out"]
    status = p.poll([handle])[k]
    assert status.started_at is not None and status.finished_at >= status.started_at


def test_environment_and_workdir(h: Harness, tmp_path: Path) -> None:
    p = h.provider(slots=2, python="/opt/py/bin/python")
    model_dir = tmp_path / "models" / "trial-1"
    work = tmp_path / "work"
    work.mkdir()
    command = (
        'echo "key=$TUNECTL_TRIAL_KEY"; echo "task=$TUNECTL_TASK_DIR"; '
        'echo "model=$TUNECTL_MODEL_DIR"; echo "python=$TUNECTL_PYTHON"; '
        'echo "pp=${PYTHONPATH%%:*}"; echo "pwd=$(pwd -P)"; '
        'echo "cuda=${CUDA_VISIBLE_DEVICES-unset}"'
    )
    k = key()
    handle = h.submit(p, k, command, workdir=str(work), model_dir=str(model_dir))
    assert h.run_to_end(p, handle).state is TaskState.SUCCEEDED
    assert model_dir.is_dir()
    got = dict(line.split("=", 1) for line in lines(p, handle))
    assert got["key"] == k
    assert got["task"] == str(h.state_dir / "tasks" / k)
    assert got["model"] == str(model_dir)
    assert got["python"] == "/opt/py/bin/python"
    assert got["pp"] == spawn_module.tunectl_root()
    assert got["pwd"] == str(work.resolve())
    assert got["cuda"] == "unset"  # no gpus configured: the provider leaves it alone
    # without a workdir the task runs in its task directory
    other = h.submit(p, key(), "pwd -P")
    h.run_to_end(p, other)
    assert lines(p, other) == [str((h.state_dir / "tasks" / other.id).resolve())]


def test_tunectl_importable_from_another_interpreter(h: Harness) -> None:
    python = next(
        (
            c
            for c in ("/usr/bin/python3", "/usr/local/bin/python3")
            if Path(c).exists() and Path(c).resolve() != Path(sys.executable).resolve()
        ),
        None,
    )
    if python is None:
        pytest.skip("no second Python interpreter on this machine")
    p = h.provider()
    code = "import tunectl.providers.base as b; print(b.TaskState.RUNNING.value)"
    handle = h.submit(p, key(), [python, "-c", code], env={"PYTHONPATH": ""})
    status = h.run_to_end(p, handle)
    assert status.state is TaskState.SUCCEEDED, lines(p, handle)
    assert lines(p, handle) == ["running"]


def test_missing_workdir_fails_the_task(h: Harness, tmp_path: Path) -> None:
    p = h.provider()
    k = key()
    handle = h.submit(p, k, "true", workdir=str(tmp_path / "nope"))
    status = p.poll([handle])[k]
    assert status.state is TaskState.FAILED
    assert "does not exist" in status.message
    assert "does not exist" in lines(p, handle)[0]
    assert h.submit(p, k, "true", workdir=str(tmp_path / "nope")) == handle
    assert p.poll([handle])[k].state is TaskState.FAILED
    empty = h.submit(p, key(), [])
    status = p.poll([empty])[empty.id]
    assert (status.state, status.message) == (TaskState.FAILED, "the command is empty")


def test_killed_by_signal(h: Harness) -> None:
    p = h.provider()
    handle = h.submit(p, key(), "kill -9 $$")
    status = h.run_to_end(p, handle)
    assert status.state is TaskState.FAILED
    assert status.exit_code == 137
    assert status.message == "killed by signal 9"


def test_lost_when_the_process_vanishes(h: Harness) -> None:
    p = h.provider()
    k = key()
    handle = h.submit(p, k, "echo up; sleep 30")
    while lines(p, handle) != ["up"]:
        time.sleep(0.01)
    pid = int((h.state_dir / "tasks" / k / "pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    status = h.run_to_end(p, handle, within=5)
    assert status.state is TaskState.LOST
    assert status.message == "the task's process vanished"
    assert h.submit(p, k, "echo up; sleep 30") == handle  # not started a second time
    assert p.poll([handle])[k].state is TaskState.LOST


def test_never_started_task_is_started_in_place(h: Harness) -> None:
    p = h.provider()
    k = key()
    (h.state_dir / "tasks" / k).mkdir(parents=True)  # a submit that died right after mkdir
    status = p.poll([TaskHandle(k, k)])[k]
    assert status.state is TaskState.LOST and "never started" in status.message
    handle = h.submit(p, k, "echo second try")
    assert h.run_to_end(p, handle).state is TaskState.SUCCEEDED
    assert lines(p, handle) == ["second try"]


def test_an_exit_file_being_written_is_ignored(h: Harness) -> None:
    p = h.provider()
    k = key()
    d = h.state_dir / "tasks" / k
    d.mkdir(parents=True)
    (d / "started").touch()
    (d / "exit").write_text("1")  # the wrapper's write of "137\n" seen half-way
    fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the running wrapper holds it
        assert p.poll([TaskHandle(k, k)])[k].state is TaskState.RUNNING
        (d / "exit").write_text("137\n")
        status = p.poll([TaskHandle(k, k)])[k]
        assert (status.state, status.exit_code) == (TaskState.FAILED, 137)
    finally:
        os.close(fd)


def test_invalid_key_and_os_errors_are_provider_errors(h: Harness, tmp_path: Path) -> None:
    p = h.provider()
    with pytest.raises(ProviderError, match="invalid task key"):
        p.submit(request("../escape", "true"))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory should be")
    broken = LocalProvider({}, blocked)
    with pytest.raises(ProviderError, match="cannot submit"):
        broken.submit(request(key(), "true"))


def test_timeout_is_stable_across_instances(h: Harness) -> None:
    p = h.provider()
    handle = h.submit(p, key(), "sleep 30", timeout=0.3)
    status = h.run_to_end(p, handle, within=10)
    assert status.state is TaskState.FAILED
    assert status.message == "timed out after 0.3s"
    again = h.provider().poll([handle])[handle.id]
    assert again.state is TaskState.FAILED and again.message == "timed out after 0.3s"
    assert json.loads((h.state_dir / "tasks" / handle.id / "spec.json").read_text())["deadline"]


def test_timeout_escalates_to_sigkill(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stop_module, "GRACE", 0.5)
    p = h.provider()
    duration = f"100.{uuid.uuid4().int % 10**9:09d}"
    handle = h.submit(p, key(), f"trap '' TERM; sleep {duration}", timeout=0.3)
    seen = []
    started = time.monotonic()
    while not (status := p.poll([handle])[handle.id]).state.terminal:
        seen.append(status.message)
        assert time.monotonic() - started < 10
        p.wait([handle], 1.0)
    assert status.state is TaskState.FAILED and status.message == "timed out after 0.3s"
    assert any(m.endswith("stopping") for m in seen)
    assert not process_running(f"sleep {duration}")


def test_cancel_escalates_to_sigkill(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stop_module, "GRACE", 0.5)
    p = h.provider()
    duration = f"100.{uuid.uuid4().int % 10**9:09d}"
    handle = h.submit(p, key(), f"trap '' TERM; echo up; sleep {duration}")
    while lines(p, handle) != ["up"]:
        time.sleep(0.01)
    started = time.monotonic()
    p.cancel(handle)
    assert 0.4 < time.monotonic() - started < 3
    assert p.poll([handle])[handle.id].state is TaskState.CANCELLED
    assert not process_running(f"sleep {duration}")


def test_read_file_relative_to_workdir(h: Harness, tmp_path: Path) -> None:
    p = h.provider()
    work = tmp_path / "w"
    work.mkdir()
    command = (
        """printf '{"loss": 1}\\n{"lo' >> m.jsonl; sleep 0.3; """
        """printf 'ss": 0.5}\\n' >> m.jsonl; sleep 0.3"""
    )
    handle = h.submit(p, key(), command, workdir=str(work))
    assert p.read_file(handle, "missing.jsonl", 5) == LogChunk([], 5)
    while not (work / "m.jsonl").exists():
        time.sleep(0.01)
    time.sleep(0.05)
    first = p.read_file(handle, "m.jsonl", 0)
    assert first.lines == ['{"loss": 1}'] and first.cursor == len('{"loss": 1}\n')
    h.run_to_end(p, handle)
    second = p.read_file(handle, "m.jsonl", first.cursor)
    assert second.lines == ['{"loss": 0.5}']
    assert p.read_file(handle, str(work / "m.jsonl"), 0).lines == ['{"loss": 1}', '{"loss": 0.5}']


def test_cleanup(h: Harness) -> None:
    p = h.provider()
    k = key()
    handle = h.submit(p, k, "sleep 30")
    h.wait_until(p, handle, TaskState.RUNNING)
    with pytest.raises(ProviderError, match="cancel it first"):
        p.cleanup(handle)
    p.cancel(handle)
    p.cleanup(handle)
    assert not (h.state_dir / "tasks" / k).exists()
    p.cleanup(handle)  # idempotent
    p.cancel(handle)


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfd", "no-pidfd"])
def test_gpus_are_handed_out_exclusively(h: Harness, pidfds: bool) -> None:
    p = h.provider(slots=4, gpus=["0", "1"])
    p._watcher.pidfd_ok = pidfds
    command = 'echo "gpu=$CUDA_VISIBLE_DEVICES"; sleep 0.4'
    gpu = {"gpus_per_task": 1}
    a, b, c = (h.submit(p, key(), command, settings=gpu) for _ in range(3))
    none = h.submit(p, key(), command)
    states = p.poll([a, b, c])
    assert states[c.id].state is TaskState.PENDING
    assert states[a.id].state is TaskState.RUNNING and states[b.id].state is TaskState.RUNNING
    for handle in (a, b, c, none):
        assert h.run_to_end(p, handle).state is TaskState.SUCCEEDED
    got = {x: lines(p, x)[0] for x in (a, b, c, none)}
    assert {got[a], got[b]} == {"gpu=0", "gpu=1"}
    assert got[c] in ("gpu=0", "gpu=1")
    assert got[none] == "gpu="  # a task without GPUs sees none of the managed ones
    c_spec = json.loads((h.state_dir / "tasks" / c.id / "spec.json").read_text())
    assert c_spec["gpus"] == [got[c][4:]]


def test_gpus_held_by_adopted_tasks_are_respected(h: Harness) -> None:
    first = h.provider(gpus=["0"])
    a = h.submit(first, key(), "sleep 0.5", settings={"gpus_per_task": 1})
    h.wait_until(first, a, TaskState.RUNNING)
    second = h.provider(gpus=["0"])  # a restarted tunectl
    b = h.submit(second, key(), "echo $CUDA_VISIBLE_DEVICES", settings={"gpus_per_task": 1})
    assert second.poll([a, b])[b.id].state is TaskState.PENDING
    started = time.monotonic()
    while not second.poll([a, b])[b.id].state.terminal:
        second.wait([a, b], 5)
        assert time.monotonic() - started < 5
    assert lines(second, b) == ["0"]


def test_cancel_a_task_waiting_for_a_gpu(h: Harness) -> None:
    p = h.provider(gpus=["0"])
    a = h.submit(p, key(), "sleep 5", settings={"gpus_per_task": 1})
    b = h.submit(p, key(), "echo ran", settings={"gpus_per_task": 1})
    assert p.poll([b])[b.id].state is TaskState.PENDING
    p.cancel(b)
    p.cancel(a)
    assert p.poll([a, b])[b.id].state is TaskState.CANCELLED
    time.sleep(0.1)
    assert p.poll([b])[b.id].state is TaskState.CANCELLED and lines(p, b) == []


def test_no_zombies_accumulate(h: Harness) -> None:
    p = h.provider(slots=16)
    handles = [h.submit(p, key(), "true") for _ in range(20)]
    give_up = time.monotonic() + 20
    while not all(s.state.terminal for s in p.poll(handles).values()):
        assert time.monotonic() < give_up
        p.wait(handles, 1)
    p.poll(handles)
    assert zombie_children() == []
    assert not spawn_module.CHILDREN


CRASH_SCRIPT = """
import sys, time
from pathlib import Path
from tunectl_local import LocalProvider
from tunectl.providers.base import TaskRequest

provider = LocalProvider({{}}, Path({state!r}))
provider.submit(TaskRequest(key={key!r}, experiment="e", trial_number=1, task_name="main",
                            bodies={{"command": "echo begin; sleep 1.2; echo done"}}))
print("submitted", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_task_survives_sigkill_of_tunectl(h: Harness) -> None:
    k = key()
    script = textwrap.dedent(CRASH_SCRIPT.format(state=str(h.state_dir), key=k))
    env = dict(os.environ)
    root = spawn_module.tunectl_root()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    tunectl = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert tunectl.stdout is not None
        assert tunectl.stdout.readline() == b"submitted\n"
    finally:
        tunectl.send_signal(signal.SIGKILL)
        tunectl.wait()
        if tunectl.stdout:
            tunectl.stdout.close()
    p = h.provider()
    # a resubmission (the engine's `submitting` retry) adopts instead of starting again
    handle = p.submit(request(k, "echo begin; sleep 1.2; echo done"))
    assert handle == TaskHandle(k, k)
    assert p.poll([handle])[k].state is TaskState.RUNNING
    while not (status := p.poll([handle])[k]).state.terminal:
        p.wait([handle], 10)  # a pidfd on a process another tunectl started
    noticed = time.time()
    assert status.state is TaskState.SUCCEEDED
    assert status.finished_at is not None and noticed - status.finished_at < 0.5
    assert lines(p, handle) == ["begin", "done"]


@pytest.mark.slow
def test_per_trial_overhead(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    p = h.provider(slots=64)
    n = 50
    started = time.perf_counter()
    submit_time = 0.0
    for i in range(n):
        t = time.perf_counter()
        handle = p.submit(request(f"seq-{i}", "true"))
        submit_time += time.perf_counter() - t
        while not p.poll([handle])[handle.id].state.terminal:
            p.wait([handle], 5)
        assert p.poll([handle])[handle.id].state is TaskState.SUCCEEDED
    sequential = time.perf_counter() - started

    started = time.perf_counter()
    handles = [p.submit(request(f"par-{i}", "true")) for i in range(n)]
    while True:
        statuses = p.poll(handles)
        if all(s.state.terminal for s in statuses.values()):
            break
        p.wait(handles, 5)
    batch = time.perf_counter() - started
    assert all(s.state is TaskState.SUCCEEDED for s in statuses.values())

    with capsys.disabled():
        print(
            f"\nlocal provider overhead: {n} `true` tasks one after another: "
            f"{n / sequential:.0f} tasks/s ({sequential / n * 1000:.2f} ms per task, "
            f"submit() {submit_time / n * 1000:.2f} ms); "
            f"{n} at once: {n / batch:.0f} tasks/s"
        )
    assert sequential / n < 0.05


def test_pidfd_fallback_still_waits(h: Harness) -> None:
    p = h.provider()
    p._watcher.pidfd_ok = False
    handle = h.submit(p, key(), "sleep 0.2")
    p.poll([handle])
    started = time.monotonic()
    while not p.poll([handle])[handle.id].state.terminal:
        p.wait([handle], 10)
    assert time.monotonic() - started < 1.0
