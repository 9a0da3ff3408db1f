"""Helpers shared by the benchmarks: run the real CLI, time things, report medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time
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
