"""What starting tunectl costs: `import tunectl` (trial code imports it to report metrics;
target < 20 ms) and a CLI command's whole run, against the interpreter's own start in the
same run.

For each of `--repeat` rounds, in fresh interpreters:

- baseline: `python -c pass`;
- `import tunectl`: its cumulative time from `python -X importtime -c "import tunectl"`;
- `tunectl version`, and `tunectl validate` of examples/quickstart (wall time of the process).

Medians are printed, the commands' also as a multiple of the baseline.

    python bench/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def import_time() -> float:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tunectl"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    for line in proc.stderr.splitlines():
        found = re.fullmatch(r"import time:\s+\d+ \|\s+(\d+) \| tunectl", line)
        if found:
            return int(found.group(1)) / 1e6
    raise SystemExit("`import tunectl` did not show in -X importtime's output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "tunectl"]
    runs: dict[str, list[float]] = {
        "python -c pass": [],
        "import tunectl": [],
        "tunectl version": [],
        "tunectl validate (quickstart)": [],
    }
    for _ in range(args.repeat):  # interleaved, so that load hits all alike
        runs["python -c pass"].append(wall([sys.executable, "-c", "pass"]))
        runs["import tunectl"].append(import_time())
        runs["tunectl version"].append(wall([*cli, "version"]))
        runs["tunectl validate (quickstart)"].append(
            wall([*cli, "--chdir", "examples/quickstart", "validate"])
        )
    base = statistics.median(runs["python -c pass"])
    for name, times in runs.items():
        median = statistics.median(times)
        ratio = "" if name == "import tunectl" else f"  x{median / base:.1f} of the baseline"
        print(f"{name:32} median {median * 1000:7.1f} ms{ratio}")


if __name__ == "__main__":
    main()
