"""Metrics files in S3-compatible storage: `metrics "json" { path = "oss://bucket/..." }`.

A trial on a provider whose tasks write files tunectl cannot reach (a PAI-DLC job, with
an OSS bucket mounted) writes its JSON-lines metrics to a mounted path; tunectl reads the
object through the `storage "s3"` client (its endpoint and credentials), whatever the
provider. Reads are ranged GETs from a byte cursor, at most `READ_BYTES` each, so a long
file costs what it grows by, not its whole size at every read; only complete lines are
handed out.

What the object held before the task was submitted (an earlier attempt's lines) is not
this task's: its size and a checksum of its last bytes are recorded then (`before`). Until
the object changes, nothing is read; when it has grown past them with those bytes still in
place, the task appended: reading starts after them; when they are gone, the task wrote the
object anew: reading starts at 0.
"""

from __future__ import annotations

import zlib
from collections.abc import MutableMapping

from tunectl.providers.base import LogChunk, ProviderError
from tunectl.s3 import S3, StorageError

READ_BYTES = 1 << 20
# Reads in the apply loop try once: the next pass is the retry, and a storage outage must
# not hold the loop for every running trial.
ONCE = 0.0
TAIL = 1024  # bytes of the old content whose checksum is kept


def _before_key(uri: str) -> str:
    return uri + "#before"  # beside the cursor, in the task's file cursors


def before(s3: S3 | None, uri: str) -> dict[str, int]:
    """The cursors a new task's reading of `uri` starts from: the object's size now and a
    checksum of its last bytes (none when it does not exist, or storage cannot tell)."""
    if s3 is None:
        return {}
    try:
        size = s3.size(uri)
        if not size:
            return {}
        n = min(size, TAIL)
        return {uri: size, _before_key(uri): zlib.crc32(s3.read_range(uri, size - n, n))}
    except StorageError:
        return {}


def read_stored(s3: S3 | None, uri: str, cursors: MutableMapping[str, int]) -> LogChunk:
    """The complete lines of the object `uri` after its cursor in `cursors` (with no
    complete line in `READ_BYTES`, that much as a partial line); `cursors` loses the
    `before` record once the object has changed. ProviderError when storage fails."""
    if s3 is None:
        raise ProviderError(f'reading {uri} needs a storage "s3" block (endpoint, credentials)')
    cursor = cursors.get(uri, 0)
    checksum = cursors.get(_before_key(uri))
    try:
        if checksum is None:
            return _lines(s3.read_range(uri, cursor, READ_BYTES, within=ONCE), cursor)
        n = min(cursor, TAIL)
        data = s3.read_range(uri, cursor - n, n + READ_BYTES, within=ONCE)
    except StorageError as exc:
        raise ProviderError(str(exc)) from None
    if len(data) >= n and zlib.crc32(data[:n]) == checksum:
        if len(data) == n:
            return LogChunk([], cursor)  # unchanged: the task has not written yet
        del cursors[_before_key(uri)]  # appended to: its own lines follow the old ones
        return _lines(data[n:], cursor)
    del cursors[_before_key(uri)]  # written anew: every line is the task's
    cursors[uri] = 0
    try:
        return _lines(s3.read_range(uri, 0, READ_BYTES, within=ONCE), 0)
    except StorageError as exc:
        raise ProviderError(str(exc)) from None


def _lines(data: bytes, cursor: int) -> LogChunk:
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) < READ_BYTES:
            return LogChunk([], cursor)  # the line is still being written
        return LogChunk([data.decode("utf-8", "replace")], cursor + len(data), partial=True)
    lines = data[:end].decode("utf-8", "replace").split("\n")
    return LogChunk(lines, cursor + end + 1)
