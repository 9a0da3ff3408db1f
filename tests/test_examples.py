"""Every example validates clean, is formatted, and plans cleanly on a fresh state.

Examples that keep their state or models on S3 are pointed at a real S3 server on
127.0.0.1 (moto's server mode), as their READMEs describe.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, run_cli
from tunectl.testing.s3 import S3Server

EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if list(p.glob("*.hcl")))


def uses_s3(example: Path) -> bool:
    return any('"s3"' in p.read_text() for p in example.glob("*.hcl"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_plans(example: Path, tmp_path: Path) -> None:
    # A copy, so the repository's own state/ is never touched; siblings stay reachable.
    directory = tmp_path / "examples" / example.name
    shutil.copytree(example.parent, tmp_path / "examples", ignore=shutil.ignore_patterns("state"))
    env = cli_env()
    server = None
    if uses_s3(example):
        server = S3Server().__enter__()
        server.create_bucket("tunectl-demo")
        env = cli_env(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            TUNECTL_VAR_endpoint=server.url,
        )
    try:
        result = run_cli(directory, "validate", env=env)
        assert result.code == 0, result.text
        assert run_cli(directory, "fmt", "--check", env=env).code == 0
        result = run_cli(directory, "plan", "--detailed-exitcode", env=env)
        assert result.code == 2, result.text
        assert "Error" not in result.text and "to add" in result.out
    finally:
        if server is not None:
            server.__exit__(None, None, None)
