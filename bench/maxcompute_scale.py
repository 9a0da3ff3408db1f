"""tunectl apply on MaxCompute at scale, against the MaxCompute emulator (issue #12).

Workload: TRIALS trials, CONCURRENT running at once, each one PAI command (the emulator's
`echo`) that runs SLEEP seconds and gives `acc=<x>` as its result. The baseline in the
same run is the same workload at a tenth of the size. Reported for both: API calls by
kind as the emulator counted them, the status calls (`GET instances`, the list of the
owner's running instances, one a poll and page) against the per-instance status calls
(`GET instance?taskstatus`, one when an instance has ended), and apply's CPU time and
peak memory (from `wait4`).

    python bench/maxcompute_scale.py [--trials 500] [--concurrent 100] [--sleep 2]

Needs `pip install -e ./providers/maxcompute`.
"""

from __future__ import annotations

import argparse

from common import apply_against_emulator

CONFIG = """\
provider "maxcompute" {
  project  = "bench"
  endpoint = "%(endpoint)s"
}

experiment "scale" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = %(trials)d
  max_concurrent = %(concurrent)d
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    provider = "maxcompute"
    pai      = "-name echo -project algo_public -Doutput=acc=${param.x} -Dseconds=%(sleep)s"
  }
}
"""


def run(trials: int, concurrent: int, sleep: float) -> dict:
    def config(port: int) -> str:
        return CONFIG % {
            "endpoint": f"http://127.0.0.1:{port}/api",
            "trials": trials,
            "concurrent": concurrent,
            "sleep": sleep,
        }

    measured = apply_against_emulator(["tunectl_maxcompute.emulator"], config)
    counted: dict[str, int] = measured["calls"]  # type: ignore[assignment]
    return {
        "trials": trials,
        "concurrent": concurrent,
        "wall": measured["wall"],
        "cpu": measured["cpu"],
        "rss_mb": measured["rss_mb"],
        "calls": dict(sorted(counted.items())),
        "lists": counted.get("GET instances", 0),
        "per_instance": counted.get("GET instance?taskstatus", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=2.0)
    args = parser.parse_args()
    small = run(max(1, args.trials // 10), max(1, args.concurrent // 10), args.sleep)
    big = run(args.trials, args.concurrent, args.sleep)
    for r in (small, big):
        print(
            f"{r['trials']:>5} trials, {r['concurrent']:>3} at once: "
            f"wall {r['wall']:.1f} s, apply CPU {r['cpu']:.1f} s, peak RSS {r['rss_mb']:.0f} MB, "
            f"{r['lists']} list calls, {r['per_instance']} per-instance status calls"
        )
        print(f"      API calls: {r['calls']}")
    print(
        f"ratios big/small: trials x{big['trials'] / small['trials']:.0f}, list calls "
        f"x{big['lists'] / max(small['lists'], 1):.1f}, per-instance status calls "
        f"x{big['per_instance'] / max(small['per_instance'], 1):.1f}, "
        f"CPU x{big['cpu'] / small['cpu']:.1f}, peak RSS x{big['rss_mb'] / small['rss_mb']:.2f}"
    )


if __name__ == "__main__":
    main()
