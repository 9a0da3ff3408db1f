"""Where the state lives: one `StateBackend` interface over a local file and an S3 object.

A backend owns three things, as Terraform's state managers do: the **lock** (one writer
at a time; `LockInfo` names the holder, `lock.lock_held_error` is the one message a
refused writer sees), **opening** the SQLite state commands work on, and **persisting**
it (for S3: uploading the working copy, now or when due, and before a local task starts).

* `LocalBackend`: the state file itself; an exclusive `flock` (see `states.lock`);
  persisting is a no-op, since every write already lands in the file.
* `S3StateBackend`: the state downloaded to a working copy when a command opens it and
  uploaded when persisted (see `states.remote` for the protocol). Storage failures become
  diagnostics here (`storage_call`), so callers see `DiagnosticError` alone.

`open_backend` makes the backend a configuration's `backend` block names. The conformance
cases every backend passes are in `tunectl.testing.backends`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tunectl import private_files
from tunectl.diags import DiagnosticError, error
from tunectl.states.lock import StateLock, force_unlock
from tunectl.states.records import LockInfo
from tunectl.states.remote import S3Backend, working_copy
from tunectl.states.store import State

T = TypeVar("T")


class StateBackend(Protocol):
    """A state's storage, lock and persistence; see the module docstring."""

    #: the SQLite file commands work on (for S3: the working copy)
    path: Path
    #: whether other directories (and hosts) share this state
    shared: bool

    def where(self) -> str:
        """Where the state is, as shown to users: a path or an `s3://` URI."""
        ...

    def lock(self, operation: str, timeout: float) -> LockInfo:
        """Take the lock for `operation`, waiting up to `timeout` seconds; raises the
        "Error acquiring the state lock" diagnostic naming the holder."""
        ...

    def unlock(self) -> None:
        """Give the lock up; does nothing when it is not held."""
        ...

    def force_unlock(self, lock_id: str) -> None:
        """Remove a lock left behind, checking its ID (`tunectl force-unlock ID`)."""
        ...

    def exists(self) -> bool:
        """Whether a state is stored (for S3: downloads it to the working copy)."""
        ...

    def open(self, *, create: bool, config_id: str) -> State:
        """Open the state (for S3: downloaded once per command)."""
        ...

    def persist(self, state: State, *, force: bool = True, ahead: bool = False) -> None:
        """Store `state` where it lives. `force`: now, riding out an outage for the retry
        window; else only if due (`ahead`: now, unless the store is out)."""
        ...


@contextlib.contextmanager
def locked(backend: StateBackend, operation: str, timeout: float) -> Iterator[LockInfo]:
    """Hold the backend's lock for the block."""
    info = backend.lock(operation, timeout)
    try:
        yield info
    finally:
        backend.unlock()


class LocalBackend:
    """A state file on this machine, locked with `flock`.

    `own` is tunectl's own state tree in the configuration directory (`state/`): made 0700
    even when it exists (older releases made it 0755). A directory a `backend` block names
    elsewhere that exists already keeps the mode its owner gave it."""

    shared = False

    def __init__(self, path: Path, own: Path | None = None) -> None:
        self.path = path
        self.own = own
        self._lock: StateLock | None = None

    def where(self) -> str:
        return str(self.path)

    def lock(self, operation: str, timeout: float) -> LockInfo:
        self.make_dir()
        lock = StateLock(self.path, operation)
        info = lock.acquire(timeout)
        self._lock = lock
        return info

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def force_unlock(self, lock_id: str) -> None:
        force_unlock(self.path, lock_id)

    def exists(self) -> bool:
        return self.path.exists()

    def open(self, *, create: bool, config_id: str) -> State:
        if create:
            self.make_dir()
        return State.open(self.path, create=create, config_id=config_id)

    def persist(self, state: State, *, force: bool = True, ahead: bool = False) -> None:
        return None  # every write is in the file already

    def make_dir(self) -> None:
        make_state_dir(self.path.parent, self.own)


class S3StateBackend:
    """A state in an S3 object, worked on in a local copy (see `states.remote`)."""

    shared = True

    def __init__(self, settings: Mapping[str, Any], path: Path, own: Path | None = None) -> None:
        self.path = path
        self.own = own
        self.remote: S3Backend = storage_call(lambda: S3Backend(settings, path))
        self._pulled = False

    def where(self) -> str:
        return self.remote.uri

    def lock(self, operation: str, timeout: float) -> LockInfo:
        return storage_call(lambda: self.remote.lock(operation, timeout))

    def unlock(self) -> None:
        storage_call(self.remote.unlock)

    def force_unlock(self, lock_id: str) -> None:
        storage_call(lambda: self.remote.force_unlock(lock_id))

    def exists(self) -> bool:
        found = bool(storage_call(self.remote.pull))
        self._pulled = True
        return found

    def open(self, *, create: bool, config_id: str) -> State:
        if not self._pulled:
            storage_call(self.remote.pull)
            self._pulled = True
        if create:
            make_state_dir(self.path.parent, self.own)
        return State.open(self.path, create=create, config_id=config_id)

    def persist(self, state: State, *, force: bool = True, ahead: bool = False) -> None:
        if force:
            storage_call(lambda: self.remote.push(state))
        else:
            storage_call(lambda: self.remote.push_if_due(state, ahead=ahead))


def open_backend(kind: str, settings: Mapping[str, Any], directory: Path) -> StateBackend:
    """The backend a configuration in `directory` names (`kind` "local" or "s3")."""
    own, path = directory / "state", state_path(kind, settings, directory)
    if kind == "s3":
        return S3StateBackend(settings, path, own)
    return LocalBackend(path, own)


def state_path(kind: str, settings: Mapping[str, Any], directory: Path) -> Path:
    """The SQLite file a configuration's commands work on (for S3: the working copy),
    without connecting to anything."""
    if kind == "s3":
        return working_copy(directory, settings)
    path = Path(str(settings.get("path", "state/tunectl.db")))
    return path if path.is_absolute() else directory / path


def make_state_dir(directory: Path, own: Path | None) -> None:
    """Create the state's directory 0700; tunectl's own tree `own` is made 0700 even when
    it exists (see `LocalBackend`)."""
    private_files.make_dirs(directory)
    if own is not None and (directory == own or own in directory.parents):
        for path in (directory, *directory.parents):
            private_files.make_private(path, private_files.DIR_MODE)
            if path == own:
                break


def storage_call(fn: Callable[[], T]) -> T:
    """Run an S3 operation; a failure (after retries) becomes a diagnostic."""
    try:
        return fn()
    except Exception as exc:
        from tunectl.s3 import StorageError  # only imported when something failed

        if isinstance(exc, StorageError):
            raise DiagnosticError(
                error("Storage error", f"{exc}. Nothing was lost; run the command again.")
            ) from None
        raise
