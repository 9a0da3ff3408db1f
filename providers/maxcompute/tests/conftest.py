"""Fixtures: the emulator on a free port and a real pyodps client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from odps import ODPS
from tunectl_maxcompute.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server

PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # pyodps goes through requests, which ignores NO_PROXY for it: clear the proxies.
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    for name in ("MC_PLATFORM_ID", "TRACEPARENT", "ODPS_REGION_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(sql_seconds=0.01, algo_seconds=0.2) as running:
        yield running


@pytest.fixture
def odps(server: Server) -> ODPS:
    return ODPS(TEST_KEY_ID, TEST_KEY_SECRET, project="p", endpoint=server.endpoint)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's test key, where the provider reads credentials: the environment."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_KEY_SECRET)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
