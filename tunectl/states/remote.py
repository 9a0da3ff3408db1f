"""The S3 state backend: a team's state in one object, a lock in another.

Protocol (every step safe against a second writer, and against a crash):

* **Lock**: `PUT <key>.lock` with `If-None-Match: *` and the holder's `LockInfo` as body.
  The store accepts exactly one such write; a second writer's PUT fails with 412 and it
  reads the body to say who holds the lock. Unlock deletes the object, after checking it
  is still ours. A crashed holder leaves the lock: `tunectl force-unlock ID` removes it
  (with the ID, so a newer holder's lock is never removed by mistake).
* **State**: the SQLite state is downloaded to a working copy next to the configuration
  (`state/remote/<hash>.db`) when a command starts, and uploaded with
  `If-Match: <ETag of what was downloaded>` (or `If-None-Match: *` for a new state).
  Whoever changed the object since is detected: the write is refused, nothing is
  overwritten, and tunectl says so.
* **Cadence**: apply pushes at least every `PUSH_INTERVAL` seconds while it runs, after an
  interrupt, and when it ends; plan and destroy push when they end. A killed apply loses
  at most the last few seconds of bookkeeping in the object; the next apply adopts the
  running tasks by their keys, as with a local state. Tasks of a host-local provider
  (local processes) are the exception: only the working directory that started one can
  find it by its key, so apply pushes the state *before* launching each of them
  (write-ahead), and an apply elsewhere never launches that trial again. During an outage
  launches go on without it (trials go on, as below); the next push records them.
* **Outages**: a periodic push that finds the store unreachable does not stop apply: it
  warns once, and tries again after 1, 2, 4, ... seconds (at most `_MAX_BACKOFF`) while
  trials go on, until the store answers or `retry_window` (default 10 minutes) has passed
  since the first failure; then apply fails with a diagnostic. The final push gets what
  is left of the window. Releasing the lock is retried for the window too, but at least
  `_RELEASE_PATIENCE` seconds: a lock left behind blocks every other writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tunectl import __version__, private_files
from tunectl.diags import DiagnosticError, error
from tunectl.durations import format_duration
from tunectl.states.lock import lock_held_error, new_lock_info
from tunectl.states.records import LockInfo

PUSH_INTERVAL = 5.0
_RETRY_INTERVAL = 0.5
_QUICK_TRY = 3.0  # seconds one periodic push may spend retrying before apply goes on
_MAX_BACKOFF = 30.0
_RELEASE_PATIENCE = 60.0


def working_copy(directory: Path, settings: Mapping[str, Any]) -> Path:
    """Where the working copy of a remote state lives for this configuration."""
    ident = f"{settings.get('endpoint') or ''}|{settings['bucket']}|{settings['key']}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return directory / "state" / "remote" / f"{digest}.db"


class S3Backend:
    def __init__(self, settings: Mapping[str, Any], local: Path) -> None:
        from tunectl.s3 import S3

        self.s3 = S3(settings, 'backend "s3"')
        self.key = str(settings["key"]).lstrip("/")
        self.lock_key = self.key + ".lock"
        self.local = local
        self.etag: str | None = None
        self.lock_info: LockInfo | None = None
        self.pushed_at = 0.0
        self.window = self.s3.retry_window
        self.failing_since: float | None = None  # first failed push of the current outage
        self.retry_at = 0.0
        self.backoff = 1.0
        self.warn: Callable[[str], None] = _warn

    @property
    def uri(self) -> str:
        return f"s3://{self.s3.bucket}/{self.key}"

    # -- lock ---------------------------------------------------------------------------

    def lock(self, operation: str, timeout: float) -> LockInfo:
        from tunectl.s3 import PreconditionFailed

        info = new_lock_info(operation, self.uri, __version__)
        body = (json.dumps(info.to_dict(), indent=2) + "\n").encode()
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            try:
                self.s3.put(self.lock_key, body, if_none_match=True)
            except PreconditionFailed:
                if self._take_over_dead_holder():
                    continue
                if time.monotonic() >= deadline:
                    raise self._locked_error() from None
                time.sleep(_RETRY_INTERVAL)
                continue
            self.lock_info = info
            return info

    def _take_over_dead_holder(self) -> bool:
        """Remove the lock when its holder was a process on this host that no longer runs
        (a killed apply), saying so; False when the holder may be alive or elsewhere.

        The holder is read again just before the delete, so a lock that changed hands in
        between is left alone; two tunectl processes on one host racing for the same dead
        lock is the window that remains."""
        holder = self.holder()
        if holder is None or not _dead_here(holder):
            return False
        again = self.holder()
        if again is None or again.id != holder.id:
            return True  # it changed hands: try to lock again
        self.warn(
            f"The lock {holder.id} on {self.uri} was held by process {holder.pid} on this "
            f"host ({holder.who}, {holder.operation}), which is no longer running: taking it "
            "over."
        )
        self.s3.delete(self.lock_key)
        return True

    def unlock(self) -> None:
        if self.lock_info is None:
            return
        from tunectl.s3 import StorageUnavailable

        patience = max(self.window, _RELEASE_PATIENCE)
        try:
            got = self.s3.get(self.lock_key, within=patience)
            holder = _lock_info(got[0]) if got is not None else None
            if holder is not None and holder.id == self.lock_info.id:
                self.s3.delete(self.lock_key, within=patience)
        except StorageUnavailable as exc:
            raise DiagnosticError(
                error(
                    "Failed to release the state lock",
                    f"{exc}. The lock {self.lock_info.id} on {self.uri} is left behind; once "
                    f"the store answers again, run: tunectl force-unlock {self.lock_info.id}",
                )
            ) from None
        self.lock_info = None

    def holder(self) -> LockInfo | None:
        got = self.s3.get(self.lock_key)
        return _lock_info(got[0]) if got is not None else None

    def force_unlock(self, lock_id: str) -> None:
        holder = self.holder()
        if holder is None:
            raise DiagnosticError(
                error("Failed to unlock state", f"The state {self.uri} is not locked.")
            )
        if holder.id != lock_id:
            raise DiagnosticError(
                error(
                    "Failed to unlock state",
                    f'The lock on {self.uri} has ID "{holder.id}", not "{lock_id}". Check the '
                    "ID in the error that reported the lock.",
                )
            )
        self.s3.delete(self.lock_key)

    def _locked_error(self) -> DiagnosticError:
        return lock_held_error(
            self.holder(),
            "the lock was released while tunectl was reading it",
            force_unlock_hint=True,
        )

    # -- state object -------------------------------------------------------------------

    def pull(self) -> bool:
        """Download the state to the working copy; False when the object does not exist."""
        got = self.s3.get(self.key)
        private_files.make_dirs(self.local.parent)
        for stale in (self.local, *_sidecars(self.local)):
            stale.unlink(missing_ok=True)
        if got is None:
            self.etag = None
            return False
        body, self.etag = got
        # The working copy is as private as a local state (SQLite then gives its sidecars
        # the same mode).
        private_files.write_atomic(self.local, body)
        return True

    def push(self, state: Any) -> None:
        """Upload a consistent snapshot of `state`; refused when the object changed since.

        While the store is unreachable, keeps trying for what is left of the retry window
        (at least one try), then raises a DiagnosticError."""
        from tunectl.s3 import StorageUnavailable

        started = self.failing_since if self.failing_since is not None else time.monotonic()
        left = self.window - (time.monotonic() - started)
        try:
            self._upload(state, within=max(left, 0.0))
        except StorageUnavailable as exc:
            self.failing_since = started
            raise self._outage_error(exc) from None
        self._recovered()

    def push_if_due(self, state: Any, ahead: bool = False) -> None:
        """Push every `PUSH_INTERVAL` seconds (`ahead`: now, before a local task starts);
        during an outage, warn and try again later with backoff (the caller goes on),
        failing only once the retry window is over."""
        from tunectl.s3 import StorageUnavailable

        now = time.monotonic()
        if self.failing_since is None:
            if not ahead and now - self.pushed_at < PUSH_INTERVAL:
                return
        elif now < self.retry_at:
            return
        try:
            self._upload(state, within=_QUICK_TRY)
        except StorageUnavailable as exc:
            now = time.monotonic()
            if self.failing_since is None:
                self.failing_since = now
                self.warn(
                    f"{exc}. Trials go on; tunectl keeps trying to save the state for up to "
                    f"{format_duration(self.window)} (retry_window)."
                )
            if now - self.failing_since >= self.window:
                raise self._outage_error(exc) from None
            self.retry_at = now + self.backoff
            self.backoff = min(self.backoff * 2, _MAX_BACKOFF)
            return
        self._recovered()

    def _upload(self, state: Any, within: float) -> None:
        from tunectl.s3 import PreconditionFailed

        snapshot = state.snapshot(self.local.with_name(self.local.name + ".upload"))
        try:
            body = snapshot.read_bytes()
        finally:
            snapshot.unlink(missing_ok=True)
        try:
            if self.etag is None:
                self.etag = self.s3.put(self.key, body, if_none_match=True, within=within)
            else:
                self.etag = self.s3.put(self.key, body, if_match=self.etag, within=within)
        except PreconditionFailed:
            raise DiagnosticError(
                error(
                    "State changed by another writer",
                    f"The state {self.uri} changed after tunectl read it, so tunectl did not "
                    "overwrite it. Someone wrote it without holding the lock (e.g. after a "
                    "force-unlock). Your changes are kept in the working copy "
                    f"{self.local}; run the command again to start from the current state.",
                )
            ) from None
        self.pushed_at = time.monotonic()

    def _recovered(self) -> None:
        if self.failing_since is not None:
            took = format_duration(round(time.monotonic() - self.failing_since))
            self.warn(f"{self.uri} is reachable again after {took}; the state is saved.")
        self.failing_since = None
        self.backoff = 1.0

    def _outage_error(self, exc: Exception) -> DiagnosticError:
        return DiagnosticError(
            error(
                "State storage unavailable",
                f"{exc}. tunectl kept trying for {format_duration(self.window)} "
                "(retry_window) and stopped. Running trials keep running and the next "
                "apply adopts them; the last minutes of bookkeeping may be redone. Raise "
                'retry_window in backend "s3" to ride out longer outages.',
            )
        )


def _dead_here(holder: LockInfo) -> bool:
    """True if the holder ran on this host (its `who` is user@this-host) and its process
    is gone. Signal 0 only checks that the pid exists; PermissionError means it does."""
    if not holder.who.endswith("@" + socket.gethostname()) or not holder.pid:
        return False
    if holder.pid == os.getpid():
        return False
    try:
        os.kill(int(holder.pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def _lock_info(body: bytes) -> LockInfo | None:
    try:
        return LockInfo.from_dict(json.loads(body))
    except (ValueError, TypeError, KeyError):
        return None


def _warn(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")
    sys.stderr.flush()


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))
