"""Search quality: random, TPE, TPE + median stopping and PBT on synthetic learning curves.

Each objective is a simulated training run (`SIM` below, pure Python, no sleeping): a
trial trains some steps, reporting `loss` after each, and saves a checkpoint; "trial time"
is the number of simulated steps trained, so the figures do not depend on the machine's
load. Every algorithm runs through `tunectl apply` on the local provider, 8 trials at a
time, with the same budget of trial time:

- random, TPE: 16 trials of 40 steps (640 steps);
- TPE + median stopping: trials of 40 steps, pruned below the median from step 10; as many
  as fit in 640 steps (max_trials 40, cut at the budget);
- PBT: 16 members x 8 rounds of 5 steps (640 steps; each member trains 40 steps in all).

For each run, the best (lowest) loss of a complete trial is read after 160, 320 and 640
steps of trial time spent (trials in the order they ended, each counting the steps it
trained); the table shows the median over the seeds.

    python bench/search_quality.py [--seeds 5] [--objectives schedule,curve,warmup]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import tunectl, write

LENGTH = 40  # steps of a full training run
BUDGET = 640  # steps of trial time per run
MARKS = (160, 320, 640)
CONCURRENCY = 8

# A simulated training run. State: the global step and the model; the parent's checkpoint
# (PBT) is read from TUNECTL_PARENT_MODEL_DIR, this run's written to --out.
SIM = r"""
import json, math, os, random, sys
from pathlib import Path
import tunectl

args = dict(a.split("=", 1) for a in sys.argv[1:])
kind, steps, lr = args["objective"], int(args["steps"]), float(args["lr"])
l2, width = float(args.get("l2", 1e-3)), int(args.get("width", 128))
parent = os.environ.get("TUNECTL_PARENT_MODEL_DIR", "")
state = None
if parent and (Path(parent) / "ckpt.json").is_file():
    state = json.loads((Path(parent) / "ckpt.json").read_text())
A = [0.05 + 0.95 * i / 19 for i in range(20)]

def loss_of(s):
    if kind == "schedule":  # noisy descent on a quadratic: the best rate falls
        return 0.5 * sum(a * w * w for a, w in zip(A, s["w"]))
    if kind == "curve":  # progress at a rate set by lr, a floor set by lr, l2 and width
        floor = 0.05 + 0.3 * lr + 0.1 * (math.log10(l2) + 3) ** 2
        floor += 0.05 * abs(math.log2(width / 128))
        return floor + math.exp(-s["p"])
    return math.exp(-s["p"] / 4) + 0.01  # warmup: a rate too high for the step sets back

if state is None:
    state = {"step": 0, "w": [10.0] * 20, "p": 0.0}
for _ in range(steps):
    t = state["step"]
    if kind == "schedule":
        g = random.Random(t)
        state["w"] = [w - lr * (a * w + g.gauss(0, 1)) for a, w in zip(A, state["w"])]
    elif kind == "curve":
        state["p"] += 0.4 * lr
    else:
        limit = 0.05 * (1 + t / 4)
        state["p"] = max(0.0, state["p"] - 1.0) if lr > limit else state["p"] + lr
    state["step"] = t + 1
    tunectl.report(step=state["step"], loss=loss_of(state))
out = Path(args["out"])
out.mkdir(parents=True, exist_ok=True)
(out / "ckpt.json").write_text(json.dumps(state))
"""

PARAMS = {
    "schedule": 'param "lr" {\n    type = "loguniform"\n    low = 0.01\n    high = 1.5\n  }',
    "curve": (
        'param "lr" {\n    type = "loguniform"\n    low = 0.01\n    high = 2\n  }\n'
        '  param "l2" {\n    type = "loguniform"\n    low = 1e-5\n    high = 0.1\n  }\n'
        '  param "width" {\n    type = "choice"\n    values = [16, 32, 64, 128, 256]\n  }'
    ),
    "warmup": 'param "lr" {\n    type = "loguniform"\n    low = 0.01\n    high = 2\n  }',
}
ARGS = {
    "schedule": "lr=${param.lr}",
    "curve": "lr=${param.lr} l2=${param.l2} width=${param.width}",
    "warmup": "lr=${param.lr}",
}


def algorithm_block(method: str, seed: int) -> tuple[str, str, int, int]:
    """(algorithm block, early stopping block, max_trials, steps per trial)."""
    if method == "random":
        return f'algorithm "random" {{\n    seed = {seed}\n  }}', "", BUDGET // LENGTH, LENGTH
    if method == "tpe":
        return f'algorithm "tpe" {{\n    seed = {seed}\n  }}', "", BUDGET // LENGTH, LENGTH
    if method == "tpe+median":
        stop = 'early_stopping "median" {\n    start_step = 10\n    n_startup_trials = 5\n  }'
        return f'algorithm "tpe" {{\n    seed = {seed}\n  }}', stop, 40, LENGTH
    interval, population = 5, 16
    rounds = LENGTH // interval
    block = (
        f'algorithm "pbt" {{\n    seed = {seed}\n    population = {population}\n'
        f"    perturbation_interval = {interval}\n    quantile = 0.25\n  }}"
    )
    return block, "", population * rounds, interval


def config(objective: str, method: str, seed: int) -> str:
    algorithm, stop, max_trials, steps = algorithm_block(method, seed)
    command = (
        f"{sys.executable} sim.py objective={objective} steps={steps} "
        f"{ARGS[objective]} out=${{trial.model_dir}}"
    )
    return f"""\
provider "local" {{
  slots = {CONCURRENCY}
}}

experiment "q" {{
  {algorithm}
  objective {{
    metric    = "loss"
    direction = "minimize"
  }}
  max_trials     = {max_trials}
  max_concurrent = {CONCURRENCY}
  {stop}
  {PARAMS[objective]}
  trial {{
    provider = "local"
    command  = "{command}"
    workdir  = "."
  }}
}}
"""


def best_at_marks(trials: list[dict]) -> list[float]:
    """The best complete loss after each mark of trial time (trials in end order)."""
    spent, best = 0, float("inf")
    out: list[float] = []
    marks = list(MARKS)
    for t in sorted(trials, key=lambda t: (t["finished_at"] or 0, t["number"])):
        spent += t["last_step"] if t["status"] == "pruned" and t["last_step"] else t["steps"]
        while marks and spent > marks[0]:
            out.append(best)
            marks.pop(0)
        if not marks:
            break
        if t["status"] == "complete" and t["value"] is not None:
            best = min(best, t["value"])
    out += [best] * len(marks)
    return out


def run(objective: str, method: str, seed: int, root: Path) -> tuple[list[float], float]:
    directory = write(root / f"{objective}-{method}-{seed}", {"sim.py": SIM})
    (directory / "main.hcl").write_text(config(objective, method, seed))
    start = time.perf_counter()
    tunectl(directory, "apply", "--auto-approve")
    wall = time.perf_counter() - start
    shown = json.loads(tunectl(directory, "show", "experiment.q", "--json").stdout)
    steps = algorithm_block(method, seed)[3]
    for t in shown:
        t["steps"] = steps
        # What a pruned trial trained: its last reported step, not the run's length.
        t["last_step"] = t.get("last_step")
    return best_at_marks(shown), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--objectives", default="schedule,curve,warmup")
    p.add_argument("--methods", default="random,tpe,tpe+median,pbt")
    args = p.parse_args()
    methods = args.methods.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for objective in args.objectives.split(","):
            for method in methods:
                runs = [run(objective, method, seed, Path(tmp)) for seed in range(args.seeds)]
                medians = [statistics.median(r[0][i] for r in runs) for i in range(len(MARKS))]
                wall = statistics.median(r[1] for r in runs)
                rows.append((objective, method, medians, wall))
                cells = " | ".join(f"{v:.4g}" for v in medians)
                print(f"| {objective} | {method} | {cells} | {wall:.1f} s |", flush=True)
    print()
    print(
        "| objective | algorithm | " + " | ".join(f"best @ {m} steps" for m in MARKS) + " | wall |"
    )
    print("|---|---|" + "---|" * len(MARKS) + "---|")
    for objective, method, medians, wall in rows:
        cells = " | ".join(f"{v:.4g}" for v in medians)
        print(f"| {objective} | {method} | {cells} | {wall:.1f} s |")


if __name__ == "__main__":
    main()
