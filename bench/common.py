"""Helpers shared by the benchmarks: run the real CLI, time things, report medians."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    env["NO_COLOR"] = "1"
    # Measure what a user sees: an installed tunectl with its bytecode cached.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def tunectl(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "tunectl", "--chdir", str(directory), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    if check and proc.returncode not in (0, 2):
        raise SystemExit(f"tunectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


# The test key the shipped emulators accept (ALIBABA_CLOUD_* as the real services read them).
EMULATOR_KEY = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-test",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-secret",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_against_emulator(emulator: list[str], config: Callable[[int], str]) -> dict[str, object]:
    """Start `python -m EMULATOR... --port PORT` as its own process, write `config(PORT)` as
    main.hcl, run `tunectl apply` on it; its wall time, CPU time and peak RSS (`wait4` on
    the apply process), and the API calls the emulator counted (`/_emulator/calls`)."""
    port = free_port()
    env = cli_env()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(EMULATOR_KEY)
    server = subprocess.Popen(
        [sys.executable, "-m", *emulator, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # started
        with tempfile.TemporaryDirectory() as tmp:
            directory = write(Path(tmp), {"main.hcl": config(port)})
            start = time.perf_counter()
            apply = subprocess.Popen(
                [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            _, status, usage = os.wait4(apply.pid, 0)
            wall = time.perf_counter() - start
            if status != 0:
                raise SystemExit(f"apply failed: {apply.stderr.read() if apply.stderr else ''}")
            url = f"http://127.0.0.1:{port}/_emulator/calls"
            with urllib.request.urlopen(url, timeout=10) as answer:
                counted = json.loads(answer.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "calls": counted,
    }
