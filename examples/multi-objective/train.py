"""One trial: accuracy against a latency proxy, in pure Python (no NumPy), in a second.

A logistic regression on `--features` random Fourier features of a fixed, seeded data set
of two interleaved half-moons (300 training points, 200 validation points). More features
separate the moons better but cost more at prediction time: the latency proxy is the
multiply-adds one prediction takes (2 per feature for the projection, 1 for the weight),
so the two objectives pull apart and the result is a Pareto front, not one best trial.

After each epoch it reports the validation accuracy; at the end, the latency proxy:

    tunectl.report(step=epoch, val_acc=...)
    tunectl.report(latency=...)

Outside tunectl it prints `val_acc=...` and `latency=...` lines instead, which tunectl's
default `NAME=VALUE` pattern also reads.

    python train.py --features 16 --lr 0.5 --epochs 15
"""

from __future__ import annotations

import argparse
import math
import random

try:
    import tunectl
except ImportError:  # run by hand, without tunectl on the path
    tunectl = None

DATA_SEED = 0  # the data set and the random features never change


def moons(n: int, rng: random.Random) -> list[tuple[float, float, int]]:
    """`n` noisy points on two interleaved half-circles, labelled 0 and 1."""
    out = []
    for i in range(n):
        label = i % 2
        t = rng.uniform(0, math.pi)
        x, y = (math.cos(t), math.sin(t)) if label == 0 else (1 - math.cos(t), 0.5 - math.sin(t))
        out.append((x + rng.gauss(0, 0.15), y + rng.gauss(0, 0.15), label))
    return out


def report(step: int | None = None, **values: float) -> None:
    if tunectl is not None:
        tunectl.report(step=step, **values)
    else:
        print(" ".join(f"{k}={v}" for k, v in values.items()), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", type=int, default=16, help="random Fourier features")
    p.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    p.add_argument("--epochs", type=int, default=15)
    args = p.parse_args()

    rng = random.Random(DATA_SEED)
    train, val = moons(300, rng), moons(200, rng)
    # Random Fourier features of an RBF kernel: cos(w . x + b), w ~ N(0, 2^2).
    proj = [
        (rng.gauss(0, 2.0), rng.gauss(0, 2.0), rng.uniform(0, 2 * math.pi))
        for _ in range(args.features)
    ]
    scale = math.sqrt(2.0 / args.features)

    def featurize(x: float, y: float) -> list[float]:
        return [scale * math.cos(a * x + b * y + c) for a, b, c in proj]

    xs_train = [(featurize(x, y), label) for x, y, label in train]
    xs_val = [(featurize(x, y), label) for x, y, label in val]
    weights, bias = [0.0] * args.features, 0.0
    order = list(range(len(xs_train)))
    shuffle = random.Random(1)
    for epoch in range(1, args.epochs + 1):
        shuffle.shuffle(order)
        for i in order:
            phi, label = xs_train[i]
            z = bias + sum(w * f for w, f in zip(weights, phi))
            g = 1 / (1 + math.exp(-max(-30.0, min(30.0, z)))) - label
            weights = [w - args.lr * g * f for w, f in zip(weights, phi)]
            bias -= args.lr * g
        correct = sum(
            (bias + sum(w * f for w, f in zip(weights, phi)) > 0) == bool(label)
            for phi, label in xs_val
        )
        report(step=epoch, val_acc=correct / len(xs_val))
    report(latency=3 * args.features)


if __name__ == "__main__":
    main()
