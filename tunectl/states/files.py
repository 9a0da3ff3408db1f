"""The state file on disk: creating it atomically, telling a state from a damaged file,
copying it, and the diagnostics for a state that cannot be used (also when the damage is
met after opening: `reports_damage`).

Nothing here writes to an existing state file: a file that fails the checks is left
byte-for-byte as it was, so the user can inspect or restore it. Every file made here is
0600 from its creation (`tunectl.private_files`), whatever the umask; SQLite gives its
`-wal`, `-shm` and `-journal` files the database file's mode, so they are 0600 too.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tunectl import private_files
from tunectl.diags import DiagnosticError, error

_MAGIC = b"SQLite format 3\x00"
T = TypeVar("T")


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in driver autocommit mode: the store issues BEGIN/COMMIT itself.

    Reads nothing yet, so that a damaged file fails in the caller's checks.
    """
    return sqlite3.connect(str(path), isolation_level=None, timeout=10.0)


def configure(conn: sqlite3.Connection) -> None:
    """Settings for a checked state (some of these read the schema)."""
    conn.execute("PRAGMA foreign_keys = ON")
    # With WAL, NORMAL syncs at checkpoints only: a commit survives a killed process
    # (the guarantee apply needs) and may be lost only by a power cut.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA journal_mode = WAL")  # persistent; a no-op once set


def make_private(path: Path) -> None:
    """Make an existing state, its SQLite sidecars and its backup 0600 (an older release
    wrote them 0644). Only the mode changes: the content stays byte-for-byte.

    Best effort: on a read-only filesystem the state can still be read.
    """
    for file in (path, *sidecars(path), backup_path(path)):
        with contextlib.suppress(OSError):
            private_files.make_private(file, private_files.FILE_MODE)


def sidecars(path: Path) -> tuple[Path, ...]:
    """The files SQLite keeps next to a database while it is open or mid-write."""
    return tuple(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))


def _new_database(path: Path) -> None:
    # SQLite creates a missing database file 0644 & ~umask; an empty file of ours is a
    # new database to it, and its mode is the one the sidecars inherit.
    os.close(private_files.open_private(path, os.O_RDWR | os.O_TRUNC | os.O_CLOEXEC))


def check_file(path: Path) -> None:
    """Raise "Failed to load state" unless `path` looks like an intact SQLite file.

    Reads the 100-byte header only. A state mid-way through a write (a `-wal` or `-journal`
    file next to it) is left to SQLite, which recovers it.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise load_failed(path, f"it could not be read: {exc.strerror or exc}") from None
    if _has_pending_journal(path):
        return
    if size == 0:
        raise load_failed(path, "the file is empty")
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise load_failed(path, "the file is not a SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid only when its two change counters agree.
    if pages and header[24:28] == header[92:96] and size < pages * page_size:
        raise load_failed(
            path,
            f"the file is truncated ({size} bytes, where its header says {pages * page_size})",
        )


def _has_pending_journal(path: Path) -> bool:
    for suffix in ("-wal", "-journal"):
        side = path.with_name(path.name + suffix)
        try:
            if side.stat().st_size > 0:
                return True
        except OSError:
            pass
    return False


def create(path: Path, build: Callable[[sqlite3.Connection], None]) -> None:
    """Create the state at `path`, built by `build`, unless a file appeared there meanwhile.

    The state is built in a temporary file and linked into place, so a killed `init`
    leaves no half-made state, and two processes creating at once cannot overwrite each
    other (the second finds the first's file and uses it).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        private_files.make_dirs(path.parent)
        _new_database(tmp)
        conn = connect(tmp)
        try:
            configure(conn)  # the first write
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
    except (OSError, sqlite3.OperationalError) as exc:
        raise create_failed(path, getattr(exc, "strerror", None) or str(exc)) from None
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            build(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()  # checkpoints: everything is in `tmp` itself now
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def copy(conn: sqlite3.Connection, target: Path) -> Path:
    """A consistent copy of the database behind `conn` at `target`, replaced atomically.

    The copy is checked (`PRAGMA quick_check`, every page: ~3 ms per MB) before it replaces
    `target`, so damage that the cheap checks on open cannot see never overwrites a good
    backup or the pushed state: "Failed to load state" is raised instead and `target`
    stays as it was."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _new_database(tmp)
        dst = sqlite3.connect(str(tmp))
        try:
            conn.backup(dst)
            problem = _damage(dst)
        finally:
            dst.close()
        if problem is not None:
            raise load_failed(_source(conn), problem)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _damage(conn: sqlite3.Connection) -> str | None:
    """Why the database is damaged, or None when `quick_check` finds it intact."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        return f"SQLite reports {str(exc)!r}"
    if rows == ["ok"]:
        return None
    return "SQLite's integrity check reports " + "; ".join(rows)


def _source(conn: sqlite3.Connection) -> Path:
    for _, name, filename in conn.execute("PRAGMA database_list"):
        if name == "main" and filename:
            return Path(filename)
    return Path("the state")


def read_only(path: Path) -> str | None:
    """Why the state at `path` cannot be written (a read-only file system, file or
    directory), or None. (Root may write files without write permission.)"""
    for place in (path, path.parent):
        try:
            if os.statvfs(place).f_flag & os.ST_RDONLY:
                return f"{place} is on a read-only file system"
        except OSError:
            continue
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable by this user"
    if path.parent.exists() and not os.access(path.parent, os.W_OK):
        return f"its directory {path.parent} is not writable by this user"
    return None


def no_state(path: Path) -> DiagnosticError:
    return DiagnosticError(
        error(
            "No state",
            f"There is no state at {path}. Run `tunectl init` to create it, or "
            "`tunectl apply` to create it and run the experiments.",
        )
    )


def create_failed(path: Path, reason: str) -> DiagnosticError:
    return DiagnosticError(
        error(
            "Failed to create state",
            f"tunectl could not create the state at {path}: {reason}. Check that its "
            "directory can be created and written, or set another path in the `backend` "
            "block.",
        )
    )


def load_failed(path: Path, reason: str) -> DiagnosticError:
    # SQLite cannot open or write a state it may not write (it needs the -wal and -shm
    # files beside it): that is not damage, and must not be reported as such.
    if any(m in reason for m in ("unable to open", "readonly", "read-only", "Permission")):
        why = read_only(path)
        if why is not None:
            return DiagnosticError(
                error(
                    "State is read-only",
                    f"tunectl cannot write the state {path}: {why}. Every command writes "
                    "the state (plan refreshes it); make it writable, or work on a "
                    "writable copy. The file itself is intact as far as tunectl knows.",
                )
            )
    backup = backup_path(path)
    if backup.exists():
        remedy = (
            f"To go back to the state as it was before the last write, restore {backup}, "
            f"which tunectl wrote then: cp {backup} {path}"
        )
    else:
        remedy = (
            f"There is no backup ({backup}) to restore. Move the file aside to start with "
            "an empty state; tunectl will then no longer know the experiments it recorded."
        )
    return DiagnosticError(
        error(
            "Failed to load state",
            f"The state file {path} is corrupt or unreadable: {reason}. tunectl has not "
            f"changed it.\n\n{remedy}",
        )
    )


def unsupported_version(path: Path, version: int) -> DiagnosticError:
    return DiagnosticError(
        error(
            "Unsupported state version",
            f"This state was written by a newer tunectl (schema {version}); upgrade tunectl.",
        )
    )


def other_configuration(path: Path, stored: str, given: str) -> DiagnosticError:
    return DiagnosticError(
        error(
            "State belongs to another configuration",
            f"The state at {path} was created for configuration {stored!r}, but this "
            f"configuration is {given!r}. Each configuration directory needs its own state "
            "path (or backend key), so that planning one never proposes to destroy the "
            "other's experiments. If this directory is a copy made with its state, start "
            f"fresh: move {path.name} (and its .backup) out of {path.parent}, or set another "
            "backend key, then run tunectl plan again.",
        )
    )


def upgrade_failed(path: Path, backup: Path, exc: Exception) -> DiagnosticError:
    return DiagnosticError(
        error(
            "Failed to upgrade state",
            f"Upgrading the state {path} to this tunectl's schema failed ({exc}), and the "
            f"state was left as it was. A copy from before the upgrade is at {backup}. "
            "This is a bug in tunectl; please report it.",
        )
    )


def reports_damage(cls: type[T]) -> type[T]:
    """Turn SQLite's "malformed" errors, met anywhere in a damaged file, into the
    diagnostic that opening it would have given. (The checks on open read the header and
    the schema only; reading every page, as `PRAGMA quick_check` does, would cost ~3 ms per
    MB on every command.)"""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                # Only the base class: subclasses (IntegrityError, OperationalError, ...)
                # are not about a damaged file.
                if type(exc) is not sqlite3.DatabaseError:
                    raise
                raise load_failed(self.path, f"SQLite reports {str(exc)!r}") from None
            except json.JSONDecodeError as exc:
                # A JSON column edited by hand or damaged: the state, not tunectl, is wrong.
                reason = f"a row holds invalid JSON ({exc.msg} at character {exc.pos})"
                raise load_failed(self.path, reason) from None

        return guarded

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member) and name != "transaction":
            setattr(cls, name, wrap(member))
    return cls
