"""tunectl apply against plain Optuna on the same workload, in the same run.

Workload (issue #3): TRIALS trials of a script that sleeps SLEEP seconds, CONCURRENCY at a
time, random sampler. tunectl runs it with its state checkpointed after every step (the
default, nothing switched off); the baseline is `study.optimize(n_jobs=CONCURRENCY)` with
an objective that runs the same script in a subprocess. Both are timed from process start
to exit (interpreter start-up and imports included on both sides), alternately, REPEAT
times; the medians and their ratio are reported. Target: ratio <= 1.10.

A second part measures throughput with zero-length trials (`echo acc=1`).

    python bench/apply_vs_optuna.py [--trials 60] [--concurrency 4] [--sleep 0.2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cli_env, median, write

HERE = Path(__file__).resolve().parent

CONFIG = """\
provider "local" {
  slots = %(concurrency)d
}

experiment "bench" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = %(trials)d
  max_concurrent = %(concurrency)d

  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }

  trial {
    command = %(command)s
  }
}
"""


def run(argv: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), cwd=cwd)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def tunectl_once(trials: int, concurrency: int, command: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        directory = write(
            Path(tmp),
            {
                "main.hcl": CONFIG
                % {"trials": trials, "concurrency": concurrency, "command": command}
            },
        )
        took = run(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"]
        )
        counts = subprocess.run(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "show", "--json"],
            capture_output=True,
            text=True,
            env=cli_env(),
        ).stdout
        if f'"complete": {trials}' not in counts:
            raise SystemExit(f"tunectl did not complete {trials} trials:\n{counts}")
        return took


def optuna_once(trials: int, concurrency: int, sleep: float) -> float:
    return run(
        [
            sys.executable,
            str(HERE / "optuna_baseline.py"),
            str(trials),
            str(concurrency),
            str(sleep),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--zero-trials", type=int, default=200)
    args = parser.parse_args()

    # The interpreter running this script, as the baseline uses: `python3` may be a slow
    # shim (pyenv adds ~60 ms per start), which would be charged to tunectl alone.
    command = f'"{sys.executable} {HERE / "workload.py"} ${{param.x}} {args.sleep}"'
    ours, theirs = [], []
    for _ in range(args.repeat):
        theirs.append(optuna_once(args.trials, args.concurrency, args.sleep))
        ours.append(tunectl_once(args.trials, args.concurrency, command))
    ideal = args.trials * args.sleep / args.concurrency
    print(
        f"workload: {args.trials} trials x {args.sleep} s, {args.concurrency} at a time "
        f"(ideal {ideal:.1f} s)"
    )
    print(
        f"plain Optuna (n_jobs={args.concurrency}): median {median(theirs):.2f} s  "
        f"{[round(t, 2) for t in theirs]}"
    )
    print(
        f"tunectl apply:                median {median(ours):.2f} s  {[round(t, 2) for t in ours]}"
    )
    ratio = median(ours) / median(theirs)
    verdict = "met" if ratio <= 1.10 else "NOT met"
    print(f"ratio tunectl/Optuna: {ratio:.3f} (target <= 1.10: {verdict})")

    zero_ours = tunectl_once(args.zero_trials, args.concurrency, '"echo acc=1"')
    zero_theirs = optuna_once(args.zero_trials, args.concurrency, 0.0)
    print(
        f"zero-length trials ({args.zero_trials}, {args.concurrency} at a time): "
        f"tunectl {args.zero_trials / zero_ours:.0f} trials/s ({zero_ours:.2f} s), "
        f"plain Optuna with a Python subprocess per trial "
        f"{args.zero_trials / zero_theirs:.0f} trials/s ({zero_theirs:.2f} s)"
    )


if __name__ == "__main__":
    main()
