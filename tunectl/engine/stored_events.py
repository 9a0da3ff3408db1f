"""TensorBoard event directories in S3-compatible storage, read by tunectl itself.

`metrics "tensorboard" { logdir = "oss://bucket/tb/${trial.id}" }`: a trial on any
provider (a PAI-DLC job with an OSS bucket mounted) writes its event files into storage,
and tunectl reads them through the `storage "s3"` client (its endpoint and credentials),
as it reads a stored metrics file (`tunectl.engine.stored_metrics`). The reading is
`tunectl.providers.events.read_new`: ranged GETs of each event file from where the last
read stopped, complete CRC-checked records only. Each file's offset is kept in the task's
file cursors under `LOGDIR#FILE`, committed with the values read in one transaction, so
a restarted apply reads on from there and never counts a value twice. What the directory
held when the task was submitted (`before_events`) is never read.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from tunectl.engine.stored_metrics import ONCE
from tunectl.providers.base import LogChunk, ProviderError
from tunectl.providers.events import is_event_file, read_new, starting_offsets
from tunectl.s3 import S3, StorageError, parse_object_uri

SEP = "#"


@dataclass(frozen=True)
class StoredDir:
    """The event files under an `s3://` or `oss://` directory, through tunectl's client."""

    s3: S3
    uri: str

    def _prefix(self) -> tuple[str, str]:
        location = parse_object_uri(self.uri.rstrip("/") + "/")
        return location.bucket, location.key

    def files(self) -> dict[str, int]:
        bucket, prefix = self._prefix()
        out: dict[str, int] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            listing = self.s3.client.list_objects_v2
            page = self.s3.call(f"listing {self.uri}", listing, within=ONCE, **kwargs)
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(prefix) :]
                if is_event_file(name):
                    out[name] = int(item["Size"])
            if not page.get("IsTruncated"):
                return out
            token = page.get("NextContinuationToken")

    def read(self, name: str, offset: int, size: int) -> bytes:
        # One try: the apply loop's next pass is the retry (`stored_metrics.ONCE`).
        return self.s3.read_range(self.uri.rstrip("/") + "/" + name, offset, size, within=ONCE)


def before_events(s3: S3 | None, logdir: str) -> dict[str, int]:
    """The cursors a new task's reading of `logdir` starts from: each event file's size."""
    if s3 is None:
        return {}
    return {logdir + SEP + n: size for n, size in starting_offsets(StoredDir(s3, logdir)).items()}


def read_stored_events(s3: S3 | None, logdir: str, cursors: MutableMapping[str, int]) -> LogChunk:
    """The scalars written to `logdir` since the offsets in `cursors`, as JSON lines;
    `cursors` moves past them. ProviderError when storage fails."""
    if s3 is None:
        raise ProviderError(f'reading {logdir} needs a storage "s3" block (endpoint, credentials)')
    head = logdir + SEP
    offsets = {k[len(head) :]: v for k, v in cursors.items() if k.startswith(head)}
    try:
        lines = read_new(StoredDir(s3, logdir), offsets)
    except StorageError as exc:
        raise ProviderError(str(exc)) from None
    cursors.update({head + name: offset for name, offset in offsets.items()})
    return LogChunk(lines, cursors.get(logdir, 0) + len(lines))
