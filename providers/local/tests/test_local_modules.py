"""Unit tests of the local provider's modules, on task directories made by hand (no
process is started): status from files, the GPU queue, reading lines, the environment."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tunectl_local import reading, spawn
from tunectl_local.gpus import GpuQueue, gpus_wanted
from tunectl_local.taskdir import (
    SENSITIVE,
    TaskFiles,
    has_outcome,
    signal_message,
    write_spec,
)

from tunectl.providers.base import LogChunk, ProviderError, TaskRequest, TaskState


def request(key: str, command: str = "true", **fields: Any) -> TaskRequest:
    return TaskRequest(
        key=key,
        experiment="exp",
        trial_number=1,
        task_name="main",
        bodies={"command": command},
        **fields,
    )


@pytest.fixture
def files(tmp_path: Path) -> TaskFiles:
    return TaskFiles(tmp_path / "tasks")


@pytest.fixture
def locks() -> Iterator[list[int]]:
    held: list[int] = []
    yield held
    for fd in held:
        os.close(fd)


def hold_lock(d: Path, held: list[int]) -> None:
    """Hold the task's lock in this process, as its runner would."""
    fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.append(fd)


# -- taskdir -----------------------------------------------------------------------------


def test_invalid_keys_are_refused(files: TaskFiles) -> None:
    for bad in ("", "A", "../x", "a/b", "x" * 65):
        with pytest.raises(ProviderError, match="invalid task key"):
            files.dir(bad)


def test_make_creates_private_directories(files: TaskFiles) -> None:
    files.make("k-1")
    assert (files.tasks_dir / "k-1").stat().st_mode & 0o777 == 0o700
    with pytest.raises(FileExistsError):
        files.make("k-1")


@pytest.mark.parametrize(
    ("markers", "state", "message"),
    [
        ({}, TaskState.LOST, "the task was never started"),
        ({"started": ""}, TaskState.LOST, "the task's process vanished"),
        ({"started": "", "exit": "0\n"}, TaskState.SUCCEEDED, ""),
        ({"started": "", "exit": "3\n"}, TaskState.FAILED, "exited with status 3"),
        ({"started": "", "exit": "137\n"}, TaskState.FAILED, "killed by signal 9"),
        # half written: not believed yet
        ({"started": "", "exit": "1"}, TaskState.LOST, "the task's process vanished"),
        ({"started": "", "cancelled": "1.0\n"}, TaskState.CANCELLED, "cancelled"),
        (
            {"started": "", "timedout": '{"timeout": 2.5, "at": 1}'},
            TaskState.FAILED,
            "timed out after 2.5s",
        ),
        ({"error": '{"state": "failed", "message": "no dir"}'}, TaskState.FAILED, "no dir"),
        ({"error": "garbled"}, TaskState.LOST, "garbled"),
    ],
)
def test_status_from_files(
    files: TaskFiles, markers: dict[str, str], state: TaskState, message: str
) -> None:
    files.make("k")
    for name, text in markers.items():
        (files.tasks_dir / "k" / name).write_text(text)
    status = files.status("k", waiting_here=False)
    assert (status.state, status.message) == (state, message)


def test_status_of_a_running_and_a_waiting_task(files: TaskFiles, locks: list[int]) -> None:
    files.make("k")
    d = files.tasks_dir / "k"
    hold_lock(d, locks)
    (d / "started").write_text("")
    assert files.status("k", waiting_here=False).state is TaskState.RUNNING
    assert files.status("k", waiting_here=True).state is TaskState.PENDING
    (d / "queued").write_text("")
    assert files.status("k", waiting_here=False).message == "waiting for a free GPU"
    assert files.status("missing", waiting_here=False).message == "no such task"


def test_pid_is_believed_once_complete_and_cached_once_started(files: TaskFiles) -> None:
    files.make("k")
    d = files.tasks_dir / "k"
    (d / "pid").write_text("12")
    assert files.pid("k") is None
    (d / "pid").write_text("12\n")
    assert files.pid("k") == 12
    (d / "started").write_text("")
    assert files.pid("k") == 12
    (d / "pid").write_text("13\n")
    assert files.pid("k") == 12  # final once started
    files.restarting("k")
    assert not (d / "pid").exists() and files.pid("k") is None


def test_spec_hides_sensitive_values(files: TaskFiles, tmp_path: Path) -> None:
    files.make("k")
    d = files.tasks_dir / "k"
    req = request(
        "k",
        env={"TOKEN": "secret"},
        settings={"lr": 1, "key": "secret"},
        sensitive=frozenset({"command", "settings.key"}),
        timeout=10,
    )
    write_spec(req, d, ["0"], spawned=True)
    spec = files.spec("k")
    assert spec["command"] == SENSITIVE and spec["settings"] == {"lr": 1, "key": SENSITIVE}
    assert spec["env_names"] == ["TOKEN"] and "secret" not in (d / "spec.json").read_text()
    assert spec["deadline"] > spec["submitted_at"] and spec["gpus"] == ["0"]
    write_spec(req, d, [], spawned=False)
    assert files.spec("k")["gpus"] == ["0"]  # a spawned task's spec is cached: it is final


def test_has_outcome_and_signal_message(tmp_path: Path) -> None:
    assert not has_outcome(tmp_path)
    (tmp_path / "cancelled").write_text("")
    assert has_outcome(tmp_path)
    assert signal_message(-15) == "killed by signal 15"
    assert signal_message(130) == "killed by signal 2"
    assert signal_message(1) is None


# -- gpus --------------------------------------------------------------------------------


def test_gpus_wanted() -> None:
    assert gpus_wanted(request("k")) == 0
    assert gpus_wanted(request("k", settings={"gpus_per_task": "2"})) == 2
    with pytest.raises(ProviderError, match="must be an integer"):
        gpus_wanted(request("k", settings={"gpus_per_task": "two"}))


def test_gpus_are_handed_out_round_robin_and_freed_with_the_lock(
    files: TaskFiles, locks: list[int]
) -> None:
    queue = GpuQueue(["0", "1", "2"], files.tasks_dir)
    for key in ("a", "b", "c"):
        files.make(key)
    assert queue.allocate(2, "a") == ["0", "1"]
    hold_lock(files.tasks_dir / "a", locks)
    queue.hold(["0", "1"], "a")
    assert queue.allocate(2, "b") is None
    assert queue.allocate(1, "b") == ["2"]
    queue.hold(["2"], "b")  # b's lock is not held: b has ended
    assert queue.holders() == {"a", "b"}
    assert queue.allocate(1, "c") == ["2"]
    with pytest.raises(ProviderError, match="wants 4 GPUs"):
        queue.allocate(4, "c")


def test_gpus_of_running_tasks_are_learnt_from_their_specs(
    files: TaskFiles, locks: list[int]
) -> None:
    for key, gpus in (("a", ["1"]), ("b", ["0"])):
        files.make(key)
        write_spec(request(key), files.tasks_dir / key, gpus, spawned=True)
    hold_lock(files.tasks_dir / "a", locks)  # b holds no lock: it has ended
    queue = GpuQueue(["0", "1"], files.tasks_dir)
    assert queue.allocate(2, "c") is None
    assert queue.holders() == {"a"}
    assert queue.allocate(1, "c") == ["0"]


def test_waiting_tasks_start_in_order_when_gpus_free(files: TaskFiles, locks: list[int]) -> None:
    queue = GpuQueue(["0"], files.tasks_dir)
    for key in ("a", "b", "c", "d"):
        files.make(key)
    hold_lock(files.tasks_dir / "a", locks)
    queue.hold(["0"], "a")
    gpu = {"gpus_per_task": 1}
    for key in ("b", "c", "d"):
        queue.enqueue(request(key, settings=gpu), os.open(os.devnull, os.O_RDONLY))
    assert list(queue.ready()) == []
    assert not queue.freed()
    (files.tasks_dir / "c" / "cancelled").write_text("")  # by another tunectl
    os.close(locks.pop())  # a ends
    assert queue.freed()
    started = []
    for req, lockfd, gpus in queue.ready():
        os.close(lockfd)
        started.append((req.key, gpus))
        queue.hold(gpus, req.key)
        hold_lock(files.tasks_dir / req.key, locks)
    assert started == [("b", ["0"])]
    assert list(queue.waiting) == ["d"]
    fd = queue.take("d")
    assert fd is not None and queue.take("d") is None
    os.close(fd)
    queue.enqueue(request("d", settings=gpu), os.open(os.devnull, os.O_RDONLY))
    queue.close()
    assert not queue.waiting


# -- reading -----------------------------------------------------------------------------


def test_read_lines_hands_out_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    assert reading.read_lines(path, 3, lambda: False) == LogChunk([], 3)
    path.write_bytes(b"one\ntwo\nthr")
    first = reading.read_lines(path, 0, lambda: False)
    assert first == LogChunk(["one", "two"], 8)
    assert reading.read_lines(path, first.cursor, lambda: False) == LogChunk([], 8)
    assert reading.read_lines(path, first.cursor, lambda: True) == LogChunk(["thr"], 11)


def test_read_lines_splits_a_line_longer_than_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "MAX_READ", 4)
    path = tmp_path / "out.log"
    path.write_bytes(b"abcdefg\nh\n")
    chunk = reading.read_lines(path, 0, lambda: False)
    assert chunk == LogChunk(["abcd"], 4, partial=True)
    assert reading.read_lines(path, 4, lambda: False) == LogChunk(["efg"], 8)


def test_metrics_lines_from_before_the_task_are_skipped(tmp_path: Path) -> None:
    d, work = tmp_path / "task", tmp_path / "work"
    d.mkdir()
    work.mkdir()
    (work / "m.jsonl").write_text('{"old": 1}\n')
    (work / "gone.jsonl").write_text("x\n")
    reading.note_files_before(request("k", metrics_files=("m.jsonl", "gone.jsonl")), d, work)
    assert set(json.loads((d / "files_before.json").read_text())) == {"m.jsonl", "gone.jsonl"}
    with (work / "m.jsonl").open("a") as f:
        f.write('{"new": 2}\n')
    start = reading.past_old_lines(d, "m.jsonl", work / "m.jsonl", 0)
    assert reading.read_lines(work / "m.jsonl", start, lambda: False).lines == ['{"new": 2}']
    assert reading.past_old_lines(d, "m.jsonl", work / "m.jsonl", 5) == 5
    (work / "new.jsonl").write_text("y\n")
    os.replace(work / "new.jsonl", work / "gone.jsonl")  # replaced: read from its start
    assert reading.past_old_lines(d, "gone.jsonl", work / "gone.jsonl", 0) == 0
    (work / "m.jsonl").write_text("")  # rewritten in place, shorter: from its start
    assert reading.past_old_lines(d, "m.jsonl", work / "m.jsonl", 0) == 0


# -- spawn -------------------------------------------------------------------------------


def test_task_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNECTL_VAR_secret", "s")
    monkeypatch.setenv("HOME_LIKE", "kept")
    req = request("k", env={"A": 1}, model_dir=str(tmp_path / "m"))
    env = spawn.task_env(req, tmp_path, ["1"], "/usr/bin/python3", managed_gpus=True)
    assert "TUNECTL_VAR_secret" not in env and env["HOME_LIKE"] == "kept" and env["A"] == "1"
    assert env["TUNECTL_TRIAL_KEY"] == "k" and env["TUNECTL_TASK_DIR"] == str(tmp_path)
    assert env["TUNECTL_MODEL_DIR"] == str(tmp_path / "m")
    assert env["TUNECTL_PYTHON"] == "/usr/bin/python3"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == spawn.tunectl_root()
    plain = spawn.task_env(request("k"), tmp_path, [], None, managed_gpus=False)
    assert "CUDA_VISIBLE_DEVICES" not in plain and "TUNECTL_PYTHON" not in plain


def test_task_env_puts_tunectl_and_its_trial_modules_first_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunectl import trialpath

    root = spawn.tunectl_root()
    assert root is not None
    for given in ("", root, f"{root}{os.pathsep}/x", f"{root}{os.pathsep}{trialpath.DIRECTORY}"):
        monkeypatch.setenv("PYTHONPATH", given)
        env = spawn.task_env(request("k"), tmp_path, [], None, managed_gpus=False)
        parts = env["PYTHONPATH"].split(os.pathsep)
        assert parts[:2] == [root, trialpath.DIRECTORY], given  # `import nni` (docs/import.md)
        assert parts.count(trialpath.DIRECTORY) == 1, given


def test_claim_is_exclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawn, "LOCK_RETRY", 0.01)
    fd = spawn.claim(tmp_path)
    assert fd is not None
    try:
        assert spawn.claim(tmp_path) is None
    finally:
        os.close(fd)
    again = spawn.claim(tmp_path)
    assert again is not None
    os.close(again)


def test_runner_starts_from_bytecode_and_is_recognised(tmp_path: Path) -> None:
    from tunectl_local import LocalProvider

    provider = LocalProvider({"slots": 1}, tmp_path / "state")
    handle = provider.submit(request("k-boot", "sleep 30"))
    try:
        pid = provider._files.pid(handle.id)
        assert pid is not None
        # The pid is known from the fork on; the runner's own command line from its exec.
        deadline = time.monotonic() + 10
        while True:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if spawn.RUNNER.encode() in argv or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert argv[1:4] == [b"-I", b"-S", b"-c"] and spawn.RUNNER.encode() in argv
        assert spawn.is_runner(pid)
        assert not spawn.is_runner(os.getpid())
    finally:
        provider.cancel(handle)
        provider.close()
    assert provider.poll([handle])[handle.id].state is TaskState.CANCELLED


def test_runner_still_runs_as_a_script(tmp_path: Path) -> None:
    """As a task adopted from an earlier tunectl was started (and as docs show it)."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-I", "-S", spawn.RUNNER, str(tmp_path), "5", "sh", "-c", "exit 3"],
        check=True,
        start_new_session=True,
    )
    assert (tmp_path / "started").exists() and (tmp_path / "exit").read_text() == "3\n"
