"""`tunectl plan` on a state holding 10,000 trials.

Target (issue #2): under 0.5 s wall on this machine. The baseline measured in the same run
is the interpreter starting and importing tunectl's CLI (`tunectl --version`), which is
the floor any command pays.

    python bench/plan_large_state.py [--trials 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from common import median, timed, tunectl, write

CONFIG = """\
experiment "big" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = %(max_trials)d
  max_concurrent = 4

  param "lr" {
    type = "loguniform"
    low  = 1e-5
    high = 1e-1
  }
  param "layers" {
    type   = "choice"
    values = [1, 2, 3, 4]
  }

  trial {
    command = "echo acc=0.5"
  }
}
"""


def populate(directory: Path, trials: int) -> None:
    """Run one real trial through apply, then add `trials - 1` finished trials like it."""
    from tunectl.states import MetricRecord, State, TrialRecord

    tunectl(directory, "apply", "--auto-approve", "--once")
    # Wait for the first trial to finish and be recorded.
    for _ in range(100):
        tunectl(directory, "apply", "--auto-approve", "--once")
        with State.open(directory / "state" / "tunectl.db", create=False) as state:
            if state.trial_counts("big").get("complete"):
                break
        time.sleep(0.1)
    rng = random.Random(0)
    with State.open(directory / "state" / "tunectl.db", create=False) as state:
        first = state.list_trials("big")[0]
        start = state.next_trial_number("big")
        with state.transaction():
            for number in range(start, trials):
                value = rng.random()
                state.add_trial(
                    TrialRecord(
                        experiment="big",
                        number=number,
                        id=f"{first.id.rsplit('-', 1)[0]}-{number}",
                        params={"lr": rng.uniform(1e-5, 0.1), "layers": rng.choice([1, 2, 3, 4])},
                        status="complete",
                        value=value,
                        values={"acc": value},
                        created_at=first.created_at,
                        started_at=first.started_at,
                        finished_at=first.finished_at,
                        generation=first.generation,
                    )
                )
                state.add_metrics(
                    [MetricRecord("big", number, "acc", None, value, 0.0, first.generation)]
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = write(Path(tmp), {"main.hcl": CONFIG % {"max_trials": args.trials + 10}})
        populate(directory, args.trials)
        baseline = timed(lambda: tunectl(directory, "--version"), args.repeat)
        plan = timed(lambda: tunectl(directory, "plan", "--lock-timeout", "5s"), args.repeat)
        out = tunectl(directory, "plan").stdout.strip().splitlines()
    print(f"state: {args.trials} trials")
    print(f"tunectl --version (baseline): median {median(baseline) * 1000:.0f} ms")
    print(
        f"tunectl plan:                 median {median(plan) * 1000:.0f} ms "
        f"(min {min(plan) * 1000:.0f}, max {max(plan) * 1000:.0f})"
    )
    print(f"plan minus baseline:          {(median(plan) - median(baseline)) * 1000:.0f} ms")
    print(f"target < 500 ms: {'met' if median(plan) < 0.5 else 'NOT met'}")
    print("plan said:", out[-1] if out else "")


if __name__ == "__main__":
    main()
