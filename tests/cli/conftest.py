"""CLI tests start real trial processes: none may outlive its test."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is inside `directory` (trials run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(directory) or cwd.startswith(str(directory) + "/"):
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def _no_stray_processes(tmp_path: Path):
    yield
    deadline = time.monotonic() + 10
    while processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = processes_in(tmp_path)
    for pid in stray:  # clean up before failing, so one failure does not leak into others
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            pass
    assert not stray, f"processes outlived the test: {stray}"
