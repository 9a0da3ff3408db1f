"""The state lock: one writer at a time, released by the operating system when its holder
dies, so a killed apply never leaves the state locked.

The lock is an exclusive `flock` on `<state>.lock` (the file itself stays; removing it
would let two processes lock two different files). The holder describes itself in
`<state>.lock.info` (a `LockInfo` as JSON) so that a refused writer can say who holds it.
The lock's file descriptor is not inherited by child processes (PEP 446), so tasks that
the holder starts cannot keep the lock alive after it exits. Both files are 0600, as the
state is (the info names the user and host).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tunectl import private_files
from tunectl.diags import DiagnosticError, error
from tunectl.states.records import LockInfo

DEFAULT_VERSION = "0.1.0"
_RETRY_INTERVAL = 0.05


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def info_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock.info")


class StateLock:
    """`with StateLock(path, "OperationTypeApply", timeout=10):` holds the lock in the block.

    Not reentrant: a second `StateLock` on the same state, even in the same process, waits
    for the first.
    """

    def __init__(
        self,
        db_path: Path,
        operation: str,
        *,
        timeout: float = 0,
        version: str | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.operation = operation
        self.timeout = timeout
        self.version = version or DEFAULT_VERSION
        self.info: LockInfo | None = None
        self._fd: int | None = None

    def acquire(self, timeout: float = 0) -> LockInfo:
        """Take the lock, retrying every 50 ms for up to `timeout` seconds.

        Raises `DiagnosticError` "Error acquiring the state lock" naming the holder.
        """
        if self._fd is not None:
            raise RuntimeError("This StateLock is already held.")
        try:
            private_files.make_dirs(self.db_path.parent)
            fd = private_files.open_private(lock_path(self.db_path), os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise DiagnosticError(
                error(
                    "Error acquiring the state lock",
                    f"The lock file {lock_path(self.db_path)} could not be opened: "
                    f"{exc.strerror or exc}. Check that the state's directory is writable.",
                )
            ) from None
        deadline = time.monotonic() + max(timeout, 0)
        while not _try_flock(fd):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.close(fd)
                info, problem = read_info(self.db_path)
                raise lock_held_error(info, problem)
            time.sleep(min(_RETRY_INTERVAL, remaining))
        self._fd = fd
        self.info = new_lock_info(self.operation, str(self.db_path), self.version)
        try:
            _write_info(self.db_path, self.info)
        except BaseException:
            self.release()
            raise
        return self.info

    def release(self) -> None:
        """Give the lock up; does nothing when it is not held."""
        if self._fd is None:
            return
        # Remove the info while still holding the lock, so it never describes a new holder.
        info_path(self.db_path).unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        self.info = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> StateLock:
        self.acquire(self.timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def force_unlock(db_path: Path, lock_id: str) -> None:
    """Remove a lock left behind, as `tunectl force-unlock ID` does.

    A free lock whose stale info file has this ID is cleaned up. An ID that names no lock
    is an error (a typo must not look like success). A held lock is never taken: the
    operating system holds it for a live process, which must be stopped instead.
    """
    db_path = Path(db_path)
    path = lock_path(db_path)
    free = True
    if path.exists():
        fd = os.open(path, os.O_RDWR)
        try:
            free = _try_flock(fd)
            if free:
                _drop_stale_info(db_path, lock_id)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    else:
        _drop_stale_info(db_path, lock_id)
    if free:
        return
    info, problem = read_info(db_path)
    if info is None:
        raise DiagnosticError(
            error(
                "Lock ID mismatch",
                f"The state {db_path} is locked, but {problem}, so the lock's ID cannot be "
                f"compared with {lock_id!r}.",
            )
        )
    if info.id != lock_id:
        raise DiagnosticError(
            error(
                "Lock ID mismatch",
                f"The state {db_path} is locked with ID {info.id!r}, not {lock_id!r}. "
                "Check the ID in the error that reported the lock.",
            )
        )
    raise DiagnosticError(
        error(
            "Failed to unlock state",
            f"The lock {info.id} is held by process {info.pid} ({info.who}, "
            f"{info.operation}), which is still running. A local lock belongs to the "
            "operating system, which releases it the moment its holder exits, so it cannot "
            f"be taken from a live process: stop process {info.pid} (for example `kill "
            f"{info.pid}`) and the lock is free at once.",
        )
    )


def _drop_stale_info(db_path: Path, lock_id: str) -> None:
    """The lock is free: remove the info a dead holder left, if it has `lock_id`; else
    there is no lock with that ID, which is an error."""
    info, _ = read_info(db_path)
    if info is not None and info.id == lock_id:
        info_path(db_path).unlink(missing_ok=True)
        return
    raise DiagnosticError(
        error(
            "Failed to unlock state",
            f"The state {db_path} is not locked: no lock has ID {lock_id!r}. Nothing was "
            "changed. (A local lock is released by the operating system when its holder "
            "exits; check the ID in the error that reported the lock.)",
        )
    )


def read_info(db_path: Path) -> tuple[LockInfo | None, str]:
    """The holder's `LockInfo`, or None and why it could not be read."""
    path = info_path(db_path)
    try:
        return LockInfo.from_dict(json.loads(path.read_text())), ""
    except FileNotFoundError:
        return None, f"the lock info file {path} does not exist"
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return None, f"the lock info file {path} could not be read ({exc})"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_info(db_path: Path, info: LockInfo) -> None:
    path = info_path(db_path)
    try:
        private_files.write_atomic(path, json.dumps(info.to_dict(), indent=2) + "\n")
    except OSError as exc:  # e.g. a full disk: write_atomic leaves nothing half-written
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def who() -> str:
    """`user@host` of this process, as a `LockInfo` names its holder."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_lock_info(operation: str, path: str, version: str) -> LockInfo:
    """The `LockInfo` this process writes when it takes the lock on `path`."""
    return LockInfo(
        id=str(uuid.uuid4()),
        operation=operation,
        who=who(),
        version=version,
        created=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        path=path,
        pid=os.getpid(),
    )


def lock_held_error(
    info: LockInfo | None, problem: str, *, force_unlock_hint: bool = False
) -> DiagnosticError:
    """The one "Error acquiring the state lock" every backend raises when the lock is held.

    `info` is the holder (None when it could not be read: `problem` says why, as a clause);
    `force_unlock_hint` adds how to free a lock whose holder was killed, for backends whose
    locks outlive their holder (a local lock dies with its process)."""
    if info is None:
        lock_info = f"Lock Info:\n  ({problem[0].upper() + problem[1:]}.)"
    else:
        lock_info = (
            "Lock Info:\n"
            f"  ID:        {info.id}\n"
            f"  Path:      {info.path}\n"
            f"  Operation: {info.operation}\n"
            f"  Who:       {info.who}\n"
            f"  PID:       {info.pid}\n"
            f"  Version:   {info.version}\n"
            f"  Created:   {info.created}"
        )
    wait = "Use --lock-timeout to wait"
    if force_unlock_hint:
        wait += "; if the holder was killed, run tunectl force-unlock ID"
    return DiagnosticError(
        error(
            "Error acquiring the state lock",
            f"{lock_info}\n\ntunectl acquires a state lock to protect the state from being "
            "written by multiple users at the same time. Please resolve the issue above and "
            f"try again. ({wait}.)",
        )
    )
