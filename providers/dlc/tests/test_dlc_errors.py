"""Permanent DLC errors stop apply at once, from the command line, with the fix named.

One case per class: no credentials, a failing proxy, an unknown key, a wrong secret, a
missing permission, a request the API refuses. Each: exit 1 within seconds, no traceback,
a diagnostic that says what to change, and no job created.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server

from tunectl.providers.base import ProviderError

WITHIN = 20.0  # seconds: a CLI start, the credential chain, one refused call


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(capacity=4, phase_seconds=0.02) as s:
        yield s


def write(directory: Path, endpoint: str, ecs_spec: str = "ecs.g6.xlarge") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.hcl").write_text(
        textwrap.dedent(
            f"""\
            provider "dlc" {{
              region       = "cn-hangzhou"
              workspace_id = "ws-errors"
              endpoint     = "{endpoint}"
              protocol     = "http"
              log_interval = 0
              log_delay    = 0
            }}

            experiment "e" {{
              algorithm "random" {{
                seed = 1
              }}
              objective {{
                metric    = "acc"
                direction = "maximize"
              }}
              max_trials = 2
              param "x" {{
                type = "uniform"
                low  = 0
                high = 1
              }}
              trial {{
                provider = "dlc"
                image    = "registry.example.com/train:1"
                worker   = {{ count = 1, ecs_spec = "{ecs_spec}" }}
                command  = "echo acc=${{param.x}}"
              }}
            }}
            """
        )
    )
    return directory


def apply(directory: Path, home: Path, **extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TUNECTL_", "ALIBABA_CLOUD_")) and k.lower() not in PROXIES
    }
    env.update(NO_COLOR="1", HOME=str(home))
    env.update(extra)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return result, time.monotonic() - started


PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
KEYS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": TEST_KEY_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_KEY_SECRET,
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stops(result: subprocess.CompletedProcess, took: float, *expected: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert took < WITHIN, f"took {took:.1f} s: {text}"
    assert "Traceback" not in text and "Error: Provider refused the trial" in result.stderr
    for words in expected:
        assert words in result.stderr, (words, result.stderr)
    assert TEST_KEY_SECRET not in text


def created(server: Server, workspace: str = "ws-errors") -> int:
    with server.emulator.lock:
        return sum(j.spec.get("WorkspaceId") == workspace for j in server.emulator.jobs.values())


def test_no_credentials(server: Server, tmp_path: Path) -> None:
    result, took = apply(write(tmp_path / "cfg", server.endpoint), tmp_path)
    stops(
        result,
        took,
        "no Alibaba Cloud credentials found",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "~/.alibabacloud/credentials.ini",
    )


def test_a_failing_proxy(server: Server, tmp_path: Path) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    result, took = apply(
        write(tmp_path / "cfg", server.endpoint),
        tmp_path,
        HTTP_PROXY=proxy,
        NO_PROXY="127.0.0.1",
        **KEYS,
    )
    stops(result, took, "through the proxy in HTTP_PROXY", "ignores NO_PROXY")


def test_an_unknown_key(server: Server, tmp_path: Path) -> None:
    keys = {**KEYS, "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-nobody"}
    result, took = apply(write(tmp_path / "cfg", server.endpoint), tmp_path, **keys)
    stops(result, took, "InvalidAccessKeyId.NotFound", "ALIBABA_CLOUD_ACCESS_KEY_ID")


def test_a_wrong_secret(server: Server, tmp_path: Path) -> None:
    keys = {**KEYS, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}
    result, took = apply(write(tmp_path / "cfg", server.endpoint), tmp_path, **keys)
    stops(result, took, "SignatureDoesNotMatch", "~/.alibabacloud/credentials.ini")
    assert "not-the-secret" not in result.stdout + result.stderr


def test_a_missing_permission(server: Server, tmp_path: Path) -> None:
    server.emulator.denied = {"CreateJob"}
    try:
        result, took = apply(write(tmp_path / "cfg", server.endpoint), tmp_path, **KEYS)
    finally:
        server.emulator.denied = set()
    stops(result, took, "Forbidden.RAM", "AliyunPAIDLCFullAccess", "workspace ws-errors")


def test_a_request_the_api_refuses(server: Server, tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", server.endpoint, ecs_spec="ecs-g6-xlarge")
    result, took = apply(directory, tmp_path, **KEYS)
    stops(result, took, "CreateJob failed: InvalidParameter", "EcsSpec ecs-g6-xlarge")
    assert created(server) == 0


def test_network_errors_are_transient() -> None:
    import requests
    from darabonba.exceptions import UnretryableException
    from tunectl_dlc.errors import transient, translate

    class Context:
        http_request = None
        exception: BaseException

    def wrapped(cause: BaseException) -> BaseException:
        context = Context()
        context.exception = cause
        return UnretryableException(context)  # type: ignore[arg-type]

    refused = wrapped(requests.exceptions.ConnectionError("Connection refused"))
    assert transient(refused)
    assert not translate("GetJob", refused).permanent
    proxy = wrapped(requests.exceptions.ProxyError("Unable to connect to proxy"))
    assert not transient(proxy)
    assert isinstance(translate("GetJob", proxy), ProviderError)
    assert translate("GetJob", proxy).permanent


def test_a_profile_in_the_credentials_file_is_used(server: Server, tmp_path: Path) -> None:
    profile = tmp_path / ".alibabacloud" / "credentials.ini"
    profile.parent.mkdir()
    profile.write_text(
        f"[default]\ntype = access_key\naccess_key_id = {TEST_KEY_ID}\n"
        f"access_key_secret = {TEST_KEY_SECRET}\n"
    )
    result, _ = apply(write(tmp_path / "cfg", server.endpoint), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert created(server) == 2
