"""tunectl apply on DLC at scale, against the DLC emulator (issues #5 and #13).

Workload: TRIALS trials, CONCURRENT running at once, each a DLC job that sleeps SLEEP
seconds and prints its metric. The baseline in the same run is the same workload at a
tenth of the size (100 trials, 20 at a time). Reported for both: API calls by action, the
status calls per reconcile cycle (ListJobs pages), and apply's CPU time and peak memory.

With `--log-lines N,M,...`, the log part instead: LOG_TRIALS trials (2 at once), each
printing N lines (about 60 bytes each) and then its metric, for each N; reported are the
GetPodLogs calls and bytes per trial, against the bytes of the log itself. Reading the
whole log again on every read grows with the square of the log; reading on from where the
last read stopped grows with the log.

    python bench/dlc_scale.py [--trials 1000] [--concurrent 200] [--sleep 2] [--log-delay 5]
    python bench/dlc_scale.py --log-lines 10000,100000 [--log-trials 4]

Needs `pip install -e ./providers/dlc`.
"""

from __future__ import annotations

import argparse

from common import apply_against_emulator

CONFIG = """\
provider "dlc" {
  region       = "cn-hangzhou"
  workspace_id = "ws-bench"
  endpoint     = "%(endpoint)s"
  protocol     = "http"
  log_delay    = %(log_delay)s
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
    provider = "dlc"
    image    = "registry.example.com/bench:1"
    worker   = { count = 1, ecs_spec = "ecs.g6.xlarge" }
    command  = "%(command)s"
  }
}
"""


NOISY = (
    "python3 -c 'import sys; [sys.stdout.write(f\\\"step {i:06d} loss=0.5 lr=0.01 "
    "padding........\\\\n\\\") for i in range(%d)]'; echo acc=${param.x}"
)


def run(
    trials: int, concurrent: int, sleep: float, command: str = "", log_delay: float = 5
) -> dict:
    def config(port: int) -> str:
        return CONFIG % {
            "endpoint": f"127.0.0.1:{port}",
            "trials": trials,
            "concurrent": concurrent,
            "command": command or f"sleep {sleep}; echo acc=${{param.x}}",
            "log_delay": log_delay,
        }

    measured = apply_against_emulator(
        ["tunectl_dlc.emulator", "--capacity", str(concurrent)], config
    )
    counted: dict[str, int] = measured["calls"]  # type: ignore[assignment]
    return {
        "trials": trials,
        "concurrent": concurrent,
        "wall": measured["wall"],
        "cpu": measured["cpu"],
        "rss_mb": measured["rss_mb"],
        "calls": {k: v for k, v in sorted(counted.items()) if ":" not in k},
        "log_bytes": counted.get("GetPodLogs:bytes", 0),
        "status_calls": counted.get("ListJobs:by-ids", 0),
        "jobs_per_status_call": counted.get("ListJobs:ids", 0)
        / max(counted.get("ListJobs:by-ids", 0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--log-lines", help="comma-separated log sizes (lines per trial)")
    parser.add_argument("--log-trials", type=int, default=4)
    parser.add_argument(
        "--log-delay", type=float, default=5, help="the provider's log_delay (default 5 s)"
    )
    args = parser.parse_args()
    if args.log_lines:
        logs([int(n) for n in args.log_lines.split(",")], args.log_trials)
        return
    small = run(
        max(1, args.trials // 10), max(1, args.concurrent // 10), args.sleep, "", args.log_delay
    )
    big = run(args.trials, args.concurrent, args.sleep, "", args.log_delay)
    for r in (small, big):
        print(
            f"{r['trials']:>5} trials, {r['concurrent']:>3} at once: wall {r['wall']:.1f} s, "
            f"apply CPU {r['cpu']:.1f} s, peak RSS {r['rss_mb']:.0f} MB, "
            f"{r['status_calls']} status calls covering {r['jobs_per_status_call']:.0f} "
            "jobs each"
        )
        print(f"      API calls: {r['calls']}")
    print(
        f"ratios big/small: trials x{big['trials'] / small['trials']:.0f}, status calls "
        f"x{big['status_calls'] / max(small['status_calls'], 1):.1f}, "
        f"CPU x{big['cpu'] / small['cpu']:.1f}, peak RSS x{big['rss_mb'] / small['rss_mb']:.2f}"
    )


def logs(sizes: list[int], trials: int) -> None:
    rows = []
    for lines in sizes:
        r = run(trials, 2, 0, NOISY % lines)
        per_call = r["log_bytes"] / max(r["calls"].get("GetPodLogs", 0), 1)
        rows.append((lines, r))
        print(
            f"{lines:>7} lines a trial (log {lines * 61 / 1e6:.1f} MB): GetPodLogs "
            f"{r['calls'].get('GetPodLogs', 0) / trials:.1f} calls and "
            f"{r['log_bytes'] / trials / 1e6:.2f} MB a trial ({per_call / 1e3:.0f} kB a call), "
            f"wall {r['wall']:.1f} s, apply CPU {r['cpu']:.1f} s"
        )
    (small, a), (big, b) = rows[0], rows[-1]
    print(
        f"ratios: log x{big / small:.0f}, GetPodLogs bytes per trial "
        f"x{b['log_bytes'] / max(a['log_bytes'], 1):.1f}"
    )


if __name__ == "__main__":
    main()
