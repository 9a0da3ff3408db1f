"""A toy training loop whose best learning rate changes during training; reports to tunectl.

Noisy gradient descent on an ill-conditioned quadratic: the loss is
0.5 * sum(a_i * w_i^2) with curvatures a_i from 0.05 to 1, and every gradient carries
seeded noise. A large learning rate makes fast progress early and then stalls at a noise
floor; a small one is precise but slow. The best run lowers the rate as it goes: a
schedule, which population based training discovers and a fixed rate cannot have.

Each run trains `--steps` steps from a checkpoint: the parent's (`TUNECTL_PARENT_MODEL_DIR`,
set by tunectl for PBT trials; empty in PBT's first round and for other algorithms: start
from scratch), and saves its own in `--out` (`${trial.model_dir}`), with the global step,
so the next round continues where it stopped. After each step it reports the loss:

    tunectl.report(step=global_step, loss=...)

Pure Python, no dependencies; a run takes milliseconds.

    python train.py --lr 0.5 --steps 10 --out /tmp/m
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
from pathlib import Path

try:
    import tunectl
except ImportError:  # run by hand, without tunectl on the path
    tunectl = None

DIMS = 20
CURVATURES = [0.05 + 0.95 * i / (DIMS - 1) for i in range(DIMS)]
NOISE = 1.0
CHECKPOINT = "checkpoint.json"


def loss(w: list[float]) -> float:
    return 0.5 * sum(a * x * x for a, x in zip(CURVATURES, w, strict=True))


def load(parent: str) -> tuple[int, list[float]]:
    """(global step, weights) from the parent's checkpoint, or the start."""
    path = Path(parent) / CHECKPOINT if parent else None
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        return int(saved["step"]), [float(x) for x in saved["w"]]
    return 0, [10.0] * DIMS


def train(step: int, w: list[float], lr: float, steps: int) -> tuple[int, list[float]]:
    for _ in range(steps):
        noise = random.Random(step)  # the same noise at the same step, whatever the run
        w = [
            x - lr * (a * x + NOISE * noise.gauss(0.0, 1.0))
            for a, x in zip(CURVATURES, w, strict=True)
        ]
        step += 1
        value = loss(w)
        if tunectl is not None:
            tunectl.report(step=step, loss=value)
        else:
            print(f"step={step} loss={value:.6g}")
    return step, w


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be a positive number")
    step, w = load(os.environ.get("TUNECTL_PARENT_MODEL_DIR", ""))
    step, w = train(step, w, args.lr, args.steps)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / CHECKPOINT).write_text(json.dumps({"step": step, "w": w, "lr": args.lr}))


if __name__ == "__main__":
    main()
