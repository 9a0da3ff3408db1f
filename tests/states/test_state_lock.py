"""The state lock, held by real separate processes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tunectl
from tunectl.diags import DiagnosticError
from tunectl.states import StateLock, force_unlock

REPO = Path(next(iter(tunectl.__path__))).parent

# argv: db path, operation, seconds to hold (then release), "child" to start a child first
HOLDER = """
import subprocess, sys, time
from pathlib import Path
from tunectl.states import StateLock
lock = StateLock(Path(sys.argv[1]), sys.argv[2], version="9.9.9")
info = lock.acquire()
if sys.argv[4] == "child":
    child = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL)
    print(child.pid, flush=True)
print(info.id, flush=True)
time.sleep(float(sys.argv[3]))
lock.release()
print("released", flush=True)
time.sleep(60)
"""


class Holder:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._buffer = b""

    def line(self, timeout: float = 10) -> str:
        """The holder's next line of output (unbuffered reads, so select() can be trusted)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            assert ready, "the lock holder did not answer"
            chunk = os.read(fd, 4096)
            assert chunk, "the lock holder exited"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start_holder(db_path: Path) -> Iterator[Callable[..., Holder]]:
    holders: list[Holder] = []

    def start(hold: float = 60, operation: str = "OperationTypeApply", child: bool = False):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        mode = "child" if child else "alone"
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db_path), operation, str(hold), mode],
            stdout=subprocess.PIPE,
            env=env,
        )
        holder = Holder(proc)
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.kill()


def refused(exc: pytest.ExceptionInfo[DiagnosticError]) -> str:
    [diag] = exc.value.diags
    assert diag.summary == "Error acquiring the state lock"
    return diag.detail


def test_second_writer_is_refused_with_the_holder(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder()
    lock_id = holder.line()
    start = time.monotonic()
    with pytest.raises(DiagnosticError) as exc:
        StateLock(db_path, "OperationTypePlan").acquire()
    assert time.monotonic() - start < 0.2  # no timeout: fail at once
    detail = refused(exc)
    assert detail.startswith("Lock Info:\n")
    assert f"  ID:        {lock_id}\n" in detail
    assert f"  Path:      {db_path}\n" in detail
    assert "  Operation: OperationTypeApply\n" in detail
    assert f"  PID:       {holder.pid}\n" in detail
    assert "  Version:   9.9.9\n" in detail
    assert "@" in detail.split("Who:")[1].splitlines()[0]
    assert detail.endswith(
        "\n\ntunectl acquires a state lock to protect the state from being written by "
        "multiple users at the same time. Please resolve the issue above and try again. "
        "(Use --lock-timeout to wait.)"
    )


def test_lock_timeout_waits_for_the_holder(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder(hold=0.5)
    holder.line()
    start = time.monotonic()
    lock = StateLock(db_path, "OperationTypeApply")
    info = lock.acquire(timeout=10)
    waited = time.monotonic() - start
    assert 0.2 < waited < 5
    assert info.pid == os.getpid()
    assert json.loads((db_path.parent / "tunectl.db.lock.info").read_text())["id"] == info.id
    lock.release()


def test_lock_timeout_expires(db_path: Path, start_holder: Callable[..., Holder]) -> None:
    start_holder().line()
    start = time.monotonic()
    with pytest.raises(DiagnosticError) as exc:
        StateLock(db_path, "OperationTypeApply").acquire(timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 2
    refused(exc)


def test_killed_holder_releases_the_lock(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder()
    stale_id = holder.line()
    holder.kill()
    with StateLock(db_path, "OperationTypeApply") as lock:
        assert lock.info is not None and lock.info.id != stale_id
        assert lock.info.pid == os.getpid()


def test_tasks_started_by_a_killed_holder_do_not_keep_the_lock(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder(child=True)
    child_pid = int(holder.line())
    holder.line()
    holder.kill()
    try:
        os.kill(child_pid, 0)  # the task is still running...
        with StateLock(db_path, "OperationTypeApply"):  # ...and the lock is free
            pass
    finally:
        os.kill(child_pid, signal.SIGKILL)


def test_unreadable_lock_info(db_path: Path, start_holder: Callable[..., Holder]) -> None:
    start_holder().line()
    (db_path.parent / "tunectl.db.lock.info").write_text("{not json")
    with pytest.raises(DiagnosticError) as exc:
        StateLock(db_path, "OperationTypeApply").acquire()
    assert "could not be read" in refused(exc)


def test_lock_in_one_process(db_path: Path) -> None:
    first = StateLock(db_path, "OperationTypeApply")
    info = first.acquire()
    assert first.held
    assert info.operation == "OperationTypeApply" and info.version == "0.1.0"
    assert info.created.endswith("Z") and "T" in info.created
    assert info.path == str(db_path)
    # Not reentrant, even within one process.
    with pytest.raises(DiagnosticError):
        StateLock(db_path, "OperationTypePlan").acquire()
    with pytest.raises(RuntimeError):
        first.acquire()
    first.release()
    first.release()  # a no-op
    assert not (db_path.parent / "tunectl.db.lock.info").exists()
    assert (db_path.parent / "tunectl.db.lock").exists()  # kept: see lock.py
    with StateLock(db_path, "OperationTypePlan", timeout=1) as again:
        assert again.held
    assert not again.held


def test_force_unlock_of_a_free_lock_removes_stale_info(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder()
    stale_id = holder.line()
    holder.kill()
    assert (db_path.parent / "tunectl.db.lock.info").exists()
    force_unlock(db_path, stale_id)
    assert not (db_path.parent / "tunectl.db.lock.info").exists()
    with pytest.raises(DiagnosticError) as exc:  # free and clean: no such lock
        force_unlock(db_path, stale_id)
    assert exc.value.diags[0].summary == "Failed to unlock state"


def test_force_unlock_without_any_lock_file(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as exc:
        force_unlock(tmp_path / "tunectl.db", "some-id")
    assert "is not locked: no lock has ID 'some-id'" in exc.value.diags[0].detail


def test_force_unlock_of_a_live_holder_is_refused(
    db_path: Path, start_holder: Callable[..., Holder]
) -> None:
    holder = start_holder()
    lock_id = holder.line()
    with pytest.raises(DiagnosticError) as exc:
        force_unlock(db_path, lock_id)
    [diag] = exc.value.diags
    assert diag.summary == "Failed to unlock state"
    assert f"process {holder.pid}" in diag.detail
    assert "cannot be taken from a live process" in diag.detail
    assert holder.proc.poll() is None  # untouched


def test_force_unlock_with_the_wrong_id(db_path: Path, start_holder: Callable[..., Holder]) -> None:
    holder = start_holder()
    lock_id = holder.line()
    with pytest.raises(DiagnosticError) as exc:
        force_unlock(db_path, "not-the-id")
    [diag] = exc.value.diags
    assert diag.summary == "Lock ID mismatch"
    assert lock_id in diag.detail and "not-the-id" in diag.detail


def test_lock_file_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    with pytest.raises(DiagnosticError) as exc:
        StateLock(tmp_path / "state" / "tunectl.db", "OperationTypeApply").acquire()
    [diag] = exc.value.diags
    assert diag.summary == "Error acquiring the state lock"
    assert "could not be opened" in diag.detail
