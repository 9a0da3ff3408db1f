"""Shared fixtures: run the real `tunectl` CLI in a subprocess, in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_cli(
    directory: Path,
    *args: str,
    input: str | None = None,
    timeout: float = 120,
    env: dict | None = None,
) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "tunectl", "--chdir", str(directory), *args],
        capture_output=True,
        text=True,
        input=input if input is not None else "",
        timeout=timeout,
        env=env or cli_env(),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server on 127.0.0.1 for the whole run; tests use their own buckets."""
    from tunectl.testing.s3 import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def server(s3_server):
    return s3_server


@pytest.fixture
def bucket(s3_server) -> str:
    import uuid

    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name
