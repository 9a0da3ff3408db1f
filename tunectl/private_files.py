"""Files and directories only their owner can read (SPEC §6 "Files are private").

Everything tunectl writes for itself — the state and its backups, sidecars and lock, the S3
backend's working copy, plan files, task specs, markers and logs — is created through this
module: directories 0700, files 0600, whatever the umask. The umask only ever removes bits
from the mode given to `open(2)`/`mkdir(2)`, so each creation is followed by an explicit
`fchmod`/`chmod`: a umask of 000 would not widen the mode, but a umask such as 0277 would
narrow it until tunectl could no longer write its own files.

A file that exists already is made private when it is opened or replaced here, so a state
written by an older release (0644) is fixed by the next command that uses it. Nothing here
changes the mode of a file or directory owned by another user: that would fail, and it is
theirs to decide.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "make_dirs",
    "make_private",
    "mkdir",
    "open_private",
    "write_atomic",
]

DIR_MODE = 0o700
FILE_MODE = 0o600


def mkdir(path: Path) -> None:
    """Create one directory, 0700. Raises `FileExistsError` as `os.mkdir` does."""
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)


def make_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each 0700; existing ones are left as they are."""
    missing: list[Path] = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            mkdir(directory)


def make_private(path: Path, mode: int | None = None) -> None:
    """Give an existing file (0600) or directory (0700) of ours its private mode.

    Missing paths, and paths owned by another user, are left alone.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if mode is None:
        mode = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
    if stat.S_IMODE(st.st_mode) != mode and st.st_uid == os.getuid():
        os.chmod(path, mode)


def open_private(path: Path, flags: int) -> int:
    """`os.open(path, flags | O_CREAT)` for a file that is 0600 before anyone writes to it.

    The mode is also set on a file of ours that existed (with O_EXCL in `flags` there is
    none); another user's file keeps its mode.
    """
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != FILE_MODE and st.st_uid == os.getuid():
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text is UTF-8) through a private temporary file, so a
    reader sees the old content or the new, never a part, and never a moment of 0644."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = data.encode("utf-8") if isinstance(data, str) else data
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
