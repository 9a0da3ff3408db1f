"""The event-file reader (`tunectl.providers.events`): complete records only, on from
where it stopped, across a restart, past corruption, and from S3 as from a directory.
Event files are written with tensorboard's own writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from tunectl.engine.stored_events import StoredDir  # noqa: E402
from tunectl.providers.events import (  # noqa: E402
    EventJournal,
    LocalDir,
    event_dir,
    read_new,
    starting_offsets,
)
from tunectl.s3 import S3  # noqa: E402


def scalar(step: int, **values: float) -> event_pb2.Event:
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=t.replace("__", "/"), simple_value=v)
            for t, v in values.items()
        ]
    )
    return event_pb2.Event(wall_time=1.0, step=step, summary=summary)


def write_events(logdir: Path, *events: event_pb2.Event) -> Path:
    known = set(logdir.iterdir()) if logdir.exists() else set()
    writer = EventFileWriter(str(logdir))
    for event in events:
        writer.add_event(event)
    writer.close()
    [path] = set(logdir.iterdir()) - known
    return path


def lines(journal: EventJournal) -> list[tuple[int, dict]]:
    text = journal.path.read_text() if journal.path.exists() else ""
    return [(e["step"], e["metrics"]) for e in map(json.loads, text.splitlines())]


def test_complete_records_only_then_the_rest(tmp_path: Path) -> None:
    source = write_events(tmp_path / "src", scalar(1, val__acc=0.5), scalar(2, val__acc=0.6))
    data = source.read_bytes()
    logdir = tmp_path / "tb"
    logdir.mkdir()
    target = logdir / source.name
    target.write_bytes(data[:-7])  # the second record is still being written
    journal = EventJournal(tmp_path / "j.jsonl", LocalDir(logdir), {})
    journal.update()
    assert lines(journal) == [(1, {"val/acc": 0.5})]
    target.write_bytes(data)
    journal.update()
    journal.update()
    assert lines(journal) == [(1, {"val/acc": 0.5}), (2, {"val/acc": pytest.approx(0.6)})]


def test_a_restart_reads_on_and_cuts_a_torn_line(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    write_events(logdir, scalar(1, loss=0.9))
    journal = EventJournal(tmp_path / "j.jsonl", LocalDir(logdir), {})
    journal.update()
    with open(journal.path, "a") as f:
        f.write('{"step": 2, "metr')  # a crash in the middle of an append
    write_events(logdir, scalar(2, loss=0.8))  # a second writer, a second file
    again = EventJournal(journal.path, LocalDir(logdir), {})
    again.update()
    assert lines(again) == [(1, {"loss": pytest.approx(0.9)}), (2, {"loss": pytest.approx(0.8)})]


def test_what_was_there_before_is_never_read(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    write_events(logdir, scalar(1, acc=0.1))
    before = starting_offsets(LocalDir(logdir))
    write_events(logdir, scalar(1, acc=0.7))
    journal = EventJournal(tmp_path / "j.jsonl", LocalDir(logdir), before)
    journal.update()
    assert lines(journal) == [(1, {"acc": pytest.approx(0.7)})]


def test_a_corrupt_record_ends_the_file(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    path = write_events(logdir, scalar(1, acc=0.1), scalar(2, acc=0.2), scalar(3, acc=0.3))
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # inside the last record's payload: its CRC fails
    path.write_bytes(bytes(data))
    journal = EventJournal(tmp_path / "j.jsonl", LocalDir(logdir), {})
    journal.update()
    journal.update()
    assert [step for step, _ in lines(journal)] == [1, 2]


def test_a_corrupt_file_is_not_read_again_until_it_changes(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    path = write_events(logdir, scalar(1, acc=0.1), scalar(2, acc=0.2))
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF
    path.write_bytes(bytes(data))
    reads: list[int] = []

    class Counting(LocalDir):
        def read(self, name: str, offset: int, size: int) -> bytes:
            reads.append(offset)
            return super().read(name, offset, size)

    offsets: dict[str, int] = {}
    assert len(read_new(Counting(logdir), offsets)) == 1
    first = len(reads)
    assert read_new(Counting(logdir), offsets) == [] and len(reads) == first  # no re-read


def test_tensor_scalars_and_non_scalars(tmp_path: Path) -> None:
    tensor = tensor_util.make_tensor_proto(0.25)
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    text = tensor_util.make_tensor_proto(["not a number"])
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag="tf2/acc", tensor=tensor, metadata=meta),
            summary_pb2.Summary.Value(tag="notes", tensor=text),
        ]
    )
    logdir = tmp_path / "tb"
    write_events(logdir, event_pb2.Event(step=4, summary=summary))
    journal = EventJournal(tmp_path / "j.jsonl", event_dir("tb", tmp_path), {})
    journal.update()
    assert lines(journal) == [(4, {"tf2/acc": 0.25})]


def test_an_s3_directory_reads_like_a_local_one(
    tmp_path: Path, server, bucket, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    local = tmp_path / "tb"
    path = write_events(local, scalar(1, acc=0.5), scalar(2, acc=0.75))
    client = server.client()
    key = f"runs/t1/tb/train/{path.name}"
    data = path.read_bytes()
    client.put_object(Bucket=bucket, Key=key, Body=data[:-3])
    settings = {"bucket": bucket, "endpoint": server.url, "region": "us-east-1"}
    directory = StoredDir(
        S3({**settings, "force_path_style": True}, "test"), f"oss://{bucket}/runs/t1/tb"
    )
    journal = EventJournal(tmp_path / "j.jsonl", directory, {})
    journal.update()
    assert lines(journal) == [(1, {"acc": 0.5})]
    client.put_object(Bucket=bucket, Key=key, Body=data)
    journal.update()
    assert lines(journal) == [(1, {"acc": 0.5}), (2, {"acc": 0.75})]
    assert json.loads(journal.path.read_text().splitlines()[-1])["file"] == f"train/{path.name}"
