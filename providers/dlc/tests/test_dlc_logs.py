"""Reading DLC job logs: complete (late lines, a metric after 100,000 lines), bounded per
call, linear in bytes, from the rank-0 pod pinned by its uid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tunectl_dlc import DlcProvider
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server
from tunectl_dlc.logs import PAGE, split_stamp

from tunectl.providers.base import TaskHandle, TaskRequest, TaskState

LINES = 100_000
# 100,000 lines of about 60 bytes, then the metric (the line printed last).
NOISY = (
    "python3 -c 'import sys\n"
    f"for i in range({LINES}):\n"
    '    sys.stdout.write(f"step {i:06d} loss=0.5 lr=0.01 padding........\\n")\n'
    'print("val_acc=0.9")\''
)


@pytest.fixture(scope="module")
def late() -> Iterator[Server]:
    """An emulator whose log lines become visible up to 1 s late (the last ones 1 s)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = TEST_KEY_ID
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = TEST_KEY_SECRET
    with Server(capacity=8, phase_seconds=0.02, log_delay=1.0) as server:
        yield server


def provider_for(server: Server, state_dir: Path, **extra: Any) -> DlcProvider:
    config = {
        "region": "cn-hangzhou",
        "workspace_id": "ws-logs",
        "endpoint": server.endpoint,
        "protocol": "http",
        "log_interval": 0,
        "log_delay": 1.5,
        **extra,
    }
    return DlcProvider(config, state_dir)


def request(key: str, command: str, **settings: Any) -> TaskRequest:
    return TaskRequest(
        key,
        "logs",
        0,
        "main",
        {"command": command},
        settings={
            "image": "registry.example.com/train:1",
            "worker": {"count": 1, "ecs_spec": "ecs.g6.xlarge"},
            **settings,
        },
    )


def drive(provider: DlcProvider, handle: TaskHandle, within: float = 120) -> tuple[list[str], int]:
    """What the apply engine does: poll, read a chunk while it runs, drain once it ended."""
    lines: list[str] = []
    cursor = 0
    give_up = time.monotonic() + within
    while True:
        assert time.monotonic() < give_up, "the job did not end"
        state = provider.poll([handle])[handle.id].state
        while True:
            chunk = provider.read_log(handle, cursor)
            lines.extend(chunk.lines)
            moved = chunk.cursor != cursor
            cursor = chunk.cursor
            if not (state.terminal and moved):
                break
        if state.terminal:
            assert state is TaskState.SUCCEEDED
            return lines, cursor
        time.sleep(0.2)


def served_bytes(server: Server) -> int:
    with server.emulator.lock:
        return server.emulator.calls["GetPodLogs:bytes"]


def test_a_metric_after_100000_lines_that_arrives_late_is_read(
    late: Server, tmp_path: Path
) -> None:
    provider = provider_for(late, tmp_path)
    handle = provider.submit(request("t-long-log", NOISY))
    before, calls = served_bytes(late), provider.calls
    lines, cursor = drive(provider, handle)
    assert len(lines) == LINES + 1 == cursor
    assert lines[-1] == "val_acc=0.9"
    assert lines[0].startswith("step 000000 ") and lines[LINES - 1].startswith("step 099999 ")
    # Linear: every line is transferred about once (plus its time), never the log again.
    text = sum(len(line) + 1 for line in lines)
    assert served_bytes(late) - before < 2 * text
    with late.emulator.lock:
        reads = late.emulator.calls["GetPodLogs"]
    assert reads < 3 * LINES // PAGE + 40 and provider.calls - calls < 3 * LINES // PAGE + 80


def test_a_cursor_from_another_process_continues_exactly(late: Server, tmp_path: Path) -> None:
    provider = provider_for(late, tmp_path)
    command = "for i in $(seq 1 12000); do echo line-$i; done"
    handle = provider.submit(request("t-resume", command))
    lines, _ = drive(provider, handle)
    assert lines == [f"line-{i}" for i in range(1, 12001)]
    restarted = provider_for(late, tmp_path)  # a new tunectl: no positions in memory
    restarted.poll([handle])
    chunk = restarted.read_log(handle, 7001)
    assert chunk.lines[:2] == ["line-7002", "line-7003"] and len(chunk.lines) <= PAGE
    assert restarted.read_log(handle, 12000).lines == []


def test_the_rank0_pod_is_read_and_pinned_by_uid(late: Server, tmp_path: Path) -> None:
    provider = provider_for(late, tmp_path)
    handle = provider.submit(
        request(
            "t-rank0",
            "echo from-master",
            worker={"count": 2, "ecs_spec": "ecs.g6.xlarge"},
            master={"count": 1, "ecs_spec": "ecs.g6.xlarge"},
        )
    )
    lines, _ = drive(provider, handle)
    assert lines == ["from-master"]
    job = late.emulator.jobs[handle.id]
    assert sorted(p["PodId"] for p in job.pods) == [
        f"{handle.id}-master-0",
        f"{handle.id}-worker-0",
        f"{handle.id}-worker-1",
    ]
    pins = [json.loads(line) for line in (tmp_path / "dlc-pods.jsonl").read_text().splitlines()]
    assert [handle.id, f"{handle.id}-master-0", job.rank0["PodUid"]] in pins


def test_served_lines_carry_their_times() -> None:
    assert split_stamp("2026-12-01T03:09:06.123456Z acc=1") == (
        "2026-12-01T03:09:06.123456Z",
        "acc=1",
    )
    assert split_stamp("2021-01-28 14:07:45 My Job started.") == (
        "2021-01-28T14:07:45Z",
        "My Job started.",
    )
    assert split_stamp("no time here") == (None, "no time here")


def test_apply_reads_the_final_metric_of_a_long_log(late: Server, tmp_path: Path) -> None:
    (tmp_path / "main.hcl").write_text(
        textwrap.dedent(
            f"""\
            provider "dlc" {{
              region       = "cn-hangzhou"
              workspace_id = "ws-logs"
              endpoint     = "{late.endpoint}"
              protocol     = "http"
              log_interval = 1
              log_delay    = 1.5
            }}

            experiment "long" {{
              algorithm "random" {{
                seed = 1
              }}
              objective {{
                metric    = "val_acc"
                direction = "maximize"
              }}
              max_trials = 1
              param "x" {{
                type = "uniform"
                low  = 0
                high = 1
              }}
              trial {{
                provider = "dlc"
                image    = "registry.example.com/train:1"
                worker   = {{ count = 1, ecs_spec = "ecs.g6.xlarge" }}
                command  = "sh {tmp_path}/noisy.sh"
              }}
            }}
            """
        )
    )
    (tmp_path / "noisy.sh").write_text(NOISY + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    env["NO_COLOR"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(tmp_path), "apply", "--auto-approve"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(tmp_path), "show", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    best = json.loads(shown.stdout)["experiments"]["long"]["best"]
    assert best["value"] == pytest.approx(0.9)


def test_a_restarted_tunectl_reads_the_pinned_pod(late: Server, tmp_path: Path) -> None:
    provider = provider_for(late, tmp_path)
    handle = provider.submit(request("t-pinned", "echo pinned"))
    assert drive(provider, handle)[0] == ["pinned"]
    restarted = provider_for(late, tmp_path)
    restarted.poll([handle])
    with late.emulator.lock:
        gets = late.emulator.calls["GetJob"]
    assert restarted.read_log(handle, 0).lines == ["pinned"]
    with late.emulator.lock:
        assert late.emulator.calls["GetJob"] == gets  # the pin, not a new look at the pods
