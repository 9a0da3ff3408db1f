"""Fixtures: the DLC emulator on a free port, one per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tunectl_dlc.emulator import Server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    with Server(capacity=8, phase_seconds=0.02) as s:
        yield s
