"""Every example validates clean, is formatted, plans cleanly on a fresh state, and
applies end to end in a small mode.

Examples that keep their state or models on S3 are pointed at a real S3 server on
127.0.0.1 (moto's server mode), and DLC examples at the shipped DLC emulator, as their
READMEs describe. Heavy examples are shrunk through their own variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
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


# How each example is shrunk for CI: variables a user would pass for a dry run.
SMALL = {
    "pai-mnist": ["--var", "max_trials=3", "--var", "epochs=2", "--var", "dry_run=true"],
}


@contextlib.contextmanager
def services(example: Path) -> Iterator[dict[str, str]]:
    """The servers an example needs on 127.0.0.1, and the environment pointing at them."""
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        if uses_s3(example):
            server = stack.enter_context(S3Server())
            server.create_bucket("tunectl-demo")
            extra.update(
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                TUNECTL_VAR_endpoint=server.url,
            )
        if any('"dlc"' in p.read_text() for p in example.glob("*.hcl")):
            from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server

            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                os.environ.pop(name, None)
            dlc = stack.enter_context(Server(capacity=8, phase_seconds=0.02))
            extra.update(
                ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
                ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
                TUNECTL_VAR_endpoint=dlc.endpoint,
                TUNECTL_VAR_protocol="http",
                # The job mounts the code; here it is the quickstart's, on this machine.
                TUNECTL_VAR_code_dir=str(example.parent / "quickstart"),
            )
        if any('"maxcompute"' in p.read_text() for p in example.glob("*.hcl")):
            from tunectl_maxcompute.emulator import TEST_KEY_ID as MC_KEY_ID
            from tunectl_maxcompute.emulator import TEST_KEY_SECRET as MC_KEY_SECRET
            from tunectl_maxcompute.emulator import Server as MaxComputeServer

            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                os.environ.pop(name, None)
            mc = stack.enter_context(MaxComputeServer(sql_seconds=0.05, algo_seconds=0.3))
            mc.emulator.demo_data("tunectl_demo")  # as the README's --demo-data does
            extra.update(
                ALIBABA_CLOUD_ACCESS_KEY_ID=MC_KEY_ID,
                ALIBABA_CLOUD_ACCESS_KEY_SECRET=MC_KEY_SECRET,
                TUNECTL_VAR_endpoint=mc.endpoint,
            )
        yield extra


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_applies(example: Path, tmp_path: Path) -> None:
    directory = tmp_path / "examples" / example.name
    shutil.copytree(example.parent, tmp_path / "examples", ignore=shutil.ignore_patterns("state"))
    with services(directory) as extra:
        # pai-mnist's prepare.py records where MNIST lives: not under the user's home here.
        env = cli_env(**extra, MNIST_ROOT=str(tmp_path / "mnist"))
        small = SMALL.get(example.name, [])
        assert run_cli(directory, "init", env=env).code == 0
        result = run_cli(directory, "apply", "--auto-approve", *small, env=env, timeout=300)
        assert result.code == 0, result.text
        assert "Apply complete." in result.out and "Error" not in result.text
        shown = run_cli(directory, "show", "--json", env=env)
        assert shown.code == 0, shown.text
        for name, exp in json.loads(shown.out)["experiments"].items():
            assert exp["status"] == "succeeded", (name, exp)
            assert exp["trials"]["complete"] >= 1 and exp["trials"]["failed"] == 0, (name, exp)
        outputs = run_cli(directory, "output", "--json", env=env)
        assert outputs.code == 0, outputs.text
        assert all(v["value"] is not None for v in json.loads(outputs.out).values()), outputs.out
        plan = run_cli(directory, "plan", "--detailed-exitcode", *small, env=env)
        assert plan.code == 0 and "No changes" in plan.out, plan.text
