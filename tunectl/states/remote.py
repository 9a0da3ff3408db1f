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
  at most the last few seconds of bookkeeping in the object; the next apply (after
  `force-unlock`) adopts the running tasks by their keys, as with a local state.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunectl import __version__, private_files
from tunectl.diags import DiagnosticError, error
from tunectl.states.lock import _who
from tunectl.states.records import LockInfo

PUSH_INTERVAL = 5.0
_RETRY_INTERVAL = 0.5


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

    @property
    def uri(self) -> str:
        return f"s3://{self.s3.bucket}/{self.key}"

    # -- lock ---------------------------------------------------------------------------

    def lock(self, operation: str, timeout: float) -> LockInfo:
        from tunectl.s3 import PreconditionFailed

        info = LockInfo(
            id=str(uuid.uuid4()),
            operation=operation,
            who=_who(),
            version=__version__,
            created=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            path=self.uri,
            pid=os.getpid(),
        )
        body = (json.dumps(info.to_dict(), indent=2) + "\n").encode()
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            try:
                self.s3.put(self.lock_key, body, if_none_match=True)
            except PreconditionFailed:
                if time.monotonic() >= deadline:
                    raise self._locked_error() from None
                time.sleep(_RETRY_INTERVAL)
                continue
            self.lock_info = info
            return info

    def unlock(self) -> None:
        if self.lock_info is None:
            return
        holder = self.holder()
        if holder is not None and holder.id == self.lock_info.id:
            self.s3.delete(self.lock_key)
        self.lock_info = None

    def holder(self) -> LockInfo | None:
        got = self.s3.get(self.lock_key)
        if got is None:
            return None
        try:
            return LockInfo.from_dict(json.loads(got[0]))
        except (ValueError, TypeError):
            return None

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
        info = self.holder()
        if info is None:
            lock_info = "Lock Info:\n  (The lock was released while tunectl was reading it.)"
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
        return DiagnosticError(
            error(
                "Error acquiring the state lock",
                f"{lock_info}\n\ntunectl acquires a state lock to protect the state from being "
                "written by multiple users at the same time. Please resolve the issue above "
                "and try again. (Use --lock-timeout to wait; if the holder was killed, run "
                "tunectl force-unlock ID.)",
            )
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
        """Upload a consistent snapshot of `state`; refused when the object changed since."""
        from tunectl.s3 import PreconditionFailed

        snapshot = state.snapshot(self.local.with_name(self.local.name + ".upload"))
        try:
            body = snapshot.read_bytes()
        finally:
            snapshot.unlink(missing_ok=True)
        try:
            if self.etag is None:
                self.etag = self.s3.put(self.key, body, if_none_match=True)
            else:
                self.etag = self.s3.put(self.key, body, if_match=self.etag)
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

    def push_if_due(self, state: Any) -> None:
        if time.monotonic() - self.pushed_at >= PUSH_INTERVAL:
            self.push(state)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))
