"""TensorBoard event files as metric lines: an incremental reader that survives restarts.

`metrics "tensorboard" { logdir = "${trial.model_dir}/tb", tag = "val/acc" }` (PAI
AutoML's `summary` metric type) reads the scalar summaries a trial writes with any
TensorBoard writer (`torch.utils.tensorboard`, `tf.summary`, tensorboardX, tensorboard's
own `EventFileWriter`). A provider that lists `MetricSource.EVENTS` serves them through
`read_metrics` as JSON lines, one per event: `{"step": 3, "metrics": {"val/acc": 0.91}}`,
which the engine reads as it reads a JSON-lines metrics file (and keeps the `tag` it was
asked for).

How a directory is read (`EventJournal.update`): every event file under the directory
(`*tfevents*`, subdirectories included, as TensorBoard finds runs) is read from the byte
offset where the last read stopped; only complete records are taken (a record being
written is left for the next read), each checked by its CRC. The record framing is
TFRecord's; each record is parsed by tensorboard's own `Event` protocol buffer, and a
scalar is a summary value's `simple_value` (TF1, PyTorch, tensorboardX) or a one-element
tensor (TF2's `tf.summary.scalar`). A corrupt record ends the reading of that file, as
TensorBoard's loader does.

Restarts: the lines are appended to a journal file the provider keeps (one per task and
directory), each with the file and end offset it came from, so the journal is also the
record of how far each file was read. A provider restarted after a crash recovers the
offsets from the journal (a torn last line is cut off), and the same cursor into the
journal gives the same lines, as `read_metrics` must. What the directory held before the
task started (`starting_offsets`) is never handed out: a retry of a trial writing into the
same `${trial.model_dir}` does not report the failed attempt's values again.

`EventDir` is where the files are: `LocalDir` here; core reads directories in
S3-compatible storage (`oss://`, `s3://`) through its storage client with the same
`read_new` (`tunectl.engine.stored_events`).

tensorboard is an extra (`pip install 'tunectl[tensorboard]'`); `missing_extra()` says
what to install when it is absent, and `validate` reports it.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MAX_READ = 4 << 20  # bytes read from one event file per update
MAX_RECORD = 256 << 20  # a record longer than this is taken for corruption
EXTRA_HINT = "pip install 'tunectl[tensorboard]'"


def missing_extra() -> str | None:
    """Why event files cannot be read here (tensorboard is not installed), or None."""
    try:
        from tensorboard.compat.proto import event_pb2  # noqa: F401
    except ImportError:
        return (
            'Reading TensorBoard event files (metrics "tensorboard") needs the tensorboard '
            f"package, which is not installed: run `{EXTRA_HINT}`."
        )
    return None


def is_event_file(name: str) -> bool:
    return "tfevents" in name.rsplit("/", 1)[-1]


class EventDir(Protocol):
    """Where event files are: list them, read bytes of one."""

    def files(self) -> dict[str, int]:
        """Each event file under the directory (a relative name) and its size."""

    def read(self, name: str, offset: int, size: int) -> bytes:
        """Up to `size` bytes of `name` from `offset` (empty past its end)."""


@dataclass(frozen=True)
class LocalDir:
    root: Path

    def files(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                if is_event_file(name):
                    path = Path(dirpath) / name
                    try:
                        out[path.relative_to(self.root).as_posix()] = path.stat().st_size
                    except OSError:
                        continue
        return out

    def read(self, name: str, offset: int, size: int) -> bytes:
        try:
            with open(self.root / name, "rb") as f:
                f.seek(offset)
                return f.read(size)
        except FileNotFoundError:
            return b""


def event_dir(location: str, base: Path) -> EventDir:
    """The directory `location` names: a path, relative to `base` when not absolute. (An
    `s3://` or `oss://` directory is read by core through the storage client:
    `tunectl.engine.stored_events`.)"""
    path = Path(location)
    return LocalDir(path if path.is_absolute() else base / path)


def starting_offsets(directory: EventDir) -> dict[str, int]:
    """What the directory's event files hold now (before a task starts): never read."""
    try:
        return directory.files()
    except Exception:  # an unreachable bucket now: everything found later is the task's
        return {}


class Corrupt(ValueError):
    """A record whose length or data fails its CRC."""


def records(data: bytes) -> Iterator[tuple[bytes, int]]:
    """The complete TFRecord records at the start of `data`: (payload, end offset in
    `data`). Stops before an incomplete record; raises `Corrupt` at a bad one."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    pos = 0
    while len(data) - pos >= 12:
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if masked_crc32c(header) != crc or length > MAX_RECORD:
            raise Corrupt("bad record length")
        end = pos + 12 + length + 4
        if end > len(data):
            return
        payload = data[pos + 12 : pos + 12 + length]
        (crc,) = struct.unpack("<I", data[end - 4 : end])
        if masked_crc32c(payload) != crc:
            raise Corrupt("bad record data")
        yield payload, end
        pos = end


def _needed(data: bytes) -> int:
    """How many bytes the first record of `data` takes (0 when its header is incomplete)."""
    if len(data) < 12:
        return 0
    return 12 + struct.unpack("<Q", data[:8])[0] + 4


def scalars(payload: bytes) -> tuple[int, dict[str, float]]:
    """An event record's step and its scalar values by tag."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event.FromString(payload)
    values: dict[str, float] = {}
    for value in event.summary.value:
        if value.HasField("simple_value"):
            values[value.tag] = float(value.simple_value)
        elif value.HasField("tensor"):
            number = _tensor_scalar(value.tensor)
            if number is not None:
                values[value.tag] = number
    return int(event.step), values


def _tensor_scalar(tensor: Any) -> float | None:
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(tensor)
    except Exception:  # a string tensor, an unknown dtype: not a scalar metric
        return None
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()).item())


class EventJournal:
    """The JSON lines read so far from one event directory, in a file the provider keeps.

    Not thread-safe; one reader per journal (the apply holding the state's lock).
    """

    def __init__(self, path: Path, directory: EventDir, before: Mapping[str, int]) -> None:
        self.path = path
        self.directory = directory
        self.offsets: dict[str, int] = dict(before)
        self._recover()

    def _recover(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):  # a line torn by a crash: read its records again
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))
        for line in whole.splitlines():
            try:
                entry = json.loads(line)
                self.offsets[str(entry["file"])] = int(entry["end"])
            except (ValueError, KeyError, TypeError):
                continue

    def update(self) -> None:
        """Append the scalars of the records written since the last update."""
        lines = read_new(self.directory, self.offsets)
        if lines:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())


# Beside a file's offset: its size when a bad record stopped the reading there.
CORRUPT = "\0corrupt"


def read_new(directory: EventDir, offsets: MutableMapping[str, int]) -> list[str]:
    """The JSON lines of the scalar records written to `directory` past `offsets` (by file
    name), which move past what was read. Each line records its file and end offset."""
    lines: list[str] = []
    for name, size in sorted(directory.files().items()):
        if offsets.get(name + CORRUPT) == size:
            continue  # a bad record at this size: read again only once the file changes
        offset = offsets.get(name, 0)
        if size < offset:  # rewritten from the start: a new file under an old name
            offset = 0
        while offset < size:
            data = directory.read(name, offset, MAX_READ)
            need = _needed(data)
            if need > len(data) and len(data) == MAX_READ and need <= MAX_RECORD:
                data = directory.read(name, offset, need)
            moved = offset
            try:
                for payload, end in records(data):
                    step, values = scalars(payload)
                    moved = offset + end
                    if values:
                        entry = {"step": step, "metrics": values, "file": name, "end": moved}
                        lines.append(json.dumps(entry))
            except Corrupt:
                offsets[name + CORRUPT] = size
                size = moved  # read no further in this file (TensorBoard stops too)
            if moved == offset:
                break
            # A record with no scalar moves the offset too (a journal recovers it from the
            # next scalar's line, or reads the record again, which yields nothing).
            offsets[name] = offset = moved
    return lines
