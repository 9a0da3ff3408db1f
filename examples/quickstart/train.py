"""Train a small NumPy neural network on the 8x8 handwritten digits; report to tunectl.

A one-hidden-layer perceptron (ReLU, softmax output; `--hidden 0` makes it a softmax
regression) trained with mini-batch SGD and L2 weight decay, on a fixed, seeded split of
`data/digits.npz`: 1,437 training images, 360 validation images. After each epoch it
reports the validation accuracy and the epoch's mean training loss:

    tunectl.report(step=epoch, val_acc=..., loss=...)

When `tunectl` cannot be imported (running the script outside tunectl), it prints
`epoch=N val_acc=... loss=...` lines instead, which tunectl's default `NAME=VALUE` metric
pattern also reads. Only NumPy is needed. Eight epochs take well under a second.

    python train.py --lr 0.3 --hidden 32 --l2 1e-4 --epochs 8 --out /tmp/model
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

try:
    import tunectl
except ImportError:  # run by hand, without tunectl on the path
    tunectl = None

DATA = Path(__file__).resolve().parent / "data" / "digits.npz"
SPLIT_SEED = 0  # the train/validation split never changes, whatever --seed says
VAL_FRACTION = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.3, help="SGD learning rate (default 0.3)")
    p.add_argument("--hidden", type=int, default=32, help="hidden units; 0 = no hidden layer")
    p.add_argument("--l2", type=float, default=1e-4, help="L2 weight decay (default 1e-4)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--epochs", type=int, default=8, help="passes over the training set")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and shuffling")
    p.add_argument("--out", type=Path, help="directory to save the weights in (model.npz)")
    p.add_argument("--data", type=Path, default=DATA, help="the digits .npz file")
    args = p.parse_args(argv)
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be a positive number")
    if args.hidden < 0 or args.batch_size < 1 or args.epochs < 1 or args.l2 < 0:
        p.error("--hidden and --l2 must be >= 0, --batch-size and --epochs >= 1")
    return args


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as data:
        x = data["X"].astype(np.float32) / 16.0  # pixel intensities are 0..16
        y = data["y"].astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_val = int(round(len(y) * VAL_FRACTION))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def init(n_in: int, hidden: int, n_out: int, rng: np.random.Generator) -> list[np.ndarray]:
    sizes = [n_in, hidden, n_out] if hidden else [n_in, n_out]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        scale = math.sqrt(2.0 / fan_in)  # He initialisation, for ReLU
        params += [rng.normal(0.0, scale, (fan_in, fan_out)).astype(np.float32)]
        params += [np.zeros(fan_out, dtype=np.float32)]
    return params


def forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits, and the hidden activations (None without a hidden layer)."""
    if len(params) == 2:
        return x @ params[0] + params[1], None
    h = np.maximum(x @ params[0] + params[1], 0.0)
    return h @ params[2] + params[3], h


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[np.arange(n), y]))
    grad = exp / total
    grad[np.arange(n), y] -= 1.0
    return loss, grad / n


def sgd_step(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, lr: float, l2: float):
    logits, h = forward(params, x)
    loss, g = softmax_xent(logits, y)
    if h is None:
        grads = [x.T @ g + l2 * params[0], g.sum(axis=0)]
    else:
        gh = (g @ params[2].T) * (h > 0)
        grads = [x.T @ gh + l2 * params[0], gh.sum(axis=0), h.T @ g + l2 * params[2], g.sum(0)]
    for p, dp in zip(params, grads, strict=True):
        p -= lr * dp
    return loss


def accuracy(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    logits, _ = forward(params, x)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def emit(epoch: int, val_acc: float, loss: float) -> None:
    metrics = {"val_acc": round(val_acc, 6)}
    if math.isfinite(loss):
        metrics["loss"] = round(loss, 6)
    if tunectl is not None:
        tunectl.report(step=epoch, **metrics)
    else:
        print(f"epoch={epoch} " + " ".join(f"{k}={v}" for k, v in metrics.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    x_train, y_train, x_val, y_val = load_split(args.data)
    rng = np.random.default_rng(args.seed)
    params = init(x_train.shape[1], args.hidden, 10, rng)
    best = (0.0, 0)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, args.epochs + 1):
            order = rng.permutation(len(y_train))
            losses = []
            for start in range(0, len(order), args.batch_size):
                batch = order[start : start + args.batch_size]
                losses.append(sgd_step(params, x_train[batch], y_train[batch], args.lr, args.l2))
            loss = float(np.mean(losses))
            val_acc = accuracy(params, x_val, y_val)
            emit(epoch, val_acc, loss)
            best = max(best, (val_acc, epoch), key=lambda t: t[0])
            if not math.isfinite(loss):
                # The learning rate is too large: the weights overflowed. Report what the
                # model scores (as a bad but valid trial) rather than crash.
                print(f"training diverged at epoch {epoch} (lr {args.lr}); stopping", flush=True)
                break
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        names = ["w1", "b1", "w2", "b2"] if args.hidden else ["w", "b"]
        np.savez(args.out / "model.npz", **dict(zip(names, params, strict=True)))
    saved = f"; weights in {args.out / 'model.npz'}" if args.out is not None else ""
    print(f"best val_acc {best[0]:.4f} at epoch {best[1]}{saved}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
