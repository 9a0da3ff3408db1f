"""Reading a task's output and files: complete lines after a cursor, bounded per call.

`read_log` reads `out.log`; `read_file` reads a file relative to the task's working
directory (a metrics file). A cursor is a byte offset the caller keeps; a read returns
only complete lines, so a line being written is never handed out in halves, except an
unterminated last line once the task has ended, and a line longer than a read, which
comes in `partial` pieces.

A metrics file may already hold lines when the task starts (an earlier run's, a retry's):
`note_files_before` records each one's identity and size at spawn, in
`files_before.json`, and the first read starts past them (`past_old_lines`). That file is
written before the runner is spawned, so a tunectl restarted later reads the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tunectl.providers.base import LogChunk, TaskRequest
from tunectl_local.taskdir import read_text, write_atomic

MAX_READ = 4 << 20  # bytes a read returns at most per call


def note_files_before(request: TaskRequest, d: Path, workdir: Path) -> None:
    """Record which metrics files exist before the task starts, and their size, so
    `read_file` never hands out what was there before (see `past_old_lines`)."""
    before = {}
    for path in request.metrics_files:
        try:
            st = os.stat(workdir / path)
        except OSError:
            continue
        before[path] = [st.st_dev, st.st_ino, st.st_size]
    if before:
        write_atomic(d / "files_before.json", json.dumps(before))


def past_old_lines(d: Path, path: str, target: Path, cursor: int) -> int:
    """Where the first read of a metrics file starts: past what the same file held
    when the task started (a retry's or an earlier run's lines), at 0 otherwise.

    A file replaced since (another inode) or already shorter (rewritten in place) is
    read from its start.
    """
    if cursor != 0:
        return cursor
    try:
        before = json.loads(read_text(d / "files_before.json") or "{}")
        dev, ino, size = before[path]
        st = os.stat(target)
    except (OSError, ValueError, KeyError, TypeError):
        return cursor
    if (st.st_dev, st.st_ino) == (dev, ino) and st.st_size >= size:
        return int(size)
    return cursor


def read_lines(path: Path, cursor: int, ended: Callable[[], bool]) -> LogChunk:
    """Complete lines after `cursor`, at most `MAX_READ` bytes of them. A line longer
    than that comes in `partial` pieces, so a read never holds more than the bound.
    `ended()` says whether the task has ended (its unterminated last line is complete)."""

    def read() -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(cursor)
                return f.read(MAX_READ)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return b""

    data = read()
    end = data.rfind(b"\n") + 1
    partial = False
    if end < len(data) and len(data) < MAX_READ:
        # An unterminated last line: complete only once the task has ended. Re-read
        # after checking, so nothing written in between is split off.
        if ended():
            data = read()
            end = len(data)
    elif end == 0 and data:
        end, partial = len(data), True  # a line longer than a read: hand it out in pieces
    if end == 0:
        return LogChunk([], cursor)
    text = data[:end].decode("utf-8", errors="replace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return LogChunk(lines, cursor + end, partial)
