"""Task "train" of a trial (PAI AutoML's cmd2): a PyTorch CNN on MNIST.

Reads the manifest written by prepare.py (`--data DIR`), trains for `--epochs` epochs and
after each one prints

    epoch=3 val_acc=0.991200 val_f1=0.991100

which the experiment's `metrics "stdout"` pattern reads, and, when the `tunectl` package
is importable, also calls `tunectl.report(step=epoch, val_acc=..., val_f1=...)` with the
same values (a step reported twice keeps one value, so the two never count twice).
The best epoch's weights are saved as `OUT/model.pt`.

Needs PyTorch and torchvision (`pip install torch torchvision`); they are imported only
once the arguments are parsed, so `--help` works without them.

    python prepare.py --out /tmp/t0/data
    python train.py --data /tmp/t0/data --lr 0.01 --optimizer sgd --momentum 0.9 --out /tmp/t0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import tunectl
except ImportError:  # tunectl is optional: the stdout lines carry the metrics
    tunectl = None

CHANNELS = (32, 64, 128)  # output channels of convolution blocks 1, 2, 3
DEFAULT_MOMENTUM = 0.9


def optional_float(text: str) -> float | None:
    """`--momentum ''` (an inactive conditional parameter) means "not given"."""
    return float(text) if text.strip() else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="directory holding manifest.json")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument(
        "--momentum",
        type=optional_float,
        default=None,
        help=f"SGD momentum (default {DEFAULT_MOMENTUM}; ignored by adam; '' = default)",
    )
    p.add_argument("--dropout", type=float, default=0.25, help="dropout before each dense layer")
    p.add_argument(
        "--layers",
        type=int,
        default=2,
        choices=range(1, len(CHANNELS) + 1),
        help="convolution blocks (1-3)",
    )
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="data-loader worker processes")
    p.add_argument("--out", type=Path, help="directory to save model.pt in")
    p.add_argument(
        "--dry-run",
        type=lambda text: text.strip().lower() in ("1", "true", "yes"),
        default=False,
        help="true: simulate the training (no PyTorch, no download), to try the workflow",
    )
    args = p.parse_args(argv)
    if args.lr <= 0 or args.batch_size < 1 or args.epochs < 1 or not 0 <= args.dropout < 1:
        p.error("need --lr > 0, --batch-size >= 1, --epochs >= 1 and 0 <= --dropout < 1")
    return args


def require_torch():
    try:
        import torch
        import torchvision
    except ImportError as exc:
        sys.exit(
            f"train.py: this example needs PyTorch and torchvision ({exc.name or exc} is not "
            "installed). Install them with `pip install torch torchvision`, or run the "
            "trials on a provider whose image has them (for PAI-DLC, a PyTorch image)."
        )
    return torch, torchvision


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, so concurrent trials download MNIST once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def load_data(torch, torchvision, manifest: dict, batch_size: int, workers: int):
    from torch.utils.data import DataLoader, random_split
    from torchvision import transforms

    root = Path(manifest["root"])
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    with locked(root / ".download.lock"):
        full = torchvision.datasets.MNIST(str(root), train=True, download=True, transform=tf)
    split = torch.Generator().manual_seed(int(manifest["split_seed"]))
    train, val = random_split(
        full, [int(manifest["train_size"]), int(manifest["val_size"])], generator=split
    )
    pin = torch.cuda.is_available()
    return (
        DataLoader(
            train,
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0,
        ),
        DataLoader(val, batch_size=1000, num_workers=workers, pin_memory=pin),
    )


def build_model(torch, layers: int, dropout: float):
    nn = torch.nn
    blocks, c_in = [], 1
    for c_out in CHANNELS[:layers]:
        blocks += [
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        c_in = c_out
    features = nn.Sequential(*blocks)
    side = 28 // 2**layers  # each block halves the 28x28 image (floor): 14, 7, 3
    n_flat = CHANNELS[layers - 1] * side * side
    return nn.Sequential(
        features,
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(n_flat, 128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, 10),
    )


def evaluate(torch, model, loader, device) -> tuple[float, float]:
    """(accuracy, macro F1) on `loader`."""
    model.eval()
    confusion = torch.zeros(10, 10, dtype=torch.long, device=device)
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            pred = model(x).argmax(dim=1)
            confusion += torch.bincount(y * 10 + pred, minlength=100).view(10, 10)
    confusion = confusion.double()
    tp = confusion.diag()
    precision = tp / confusion.sum(dim=0).clamp(min=1)
    recall = tp / confusion.sum(dim=1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return float(tp.sum() / confusion.sum()), float(f1.mean())


def report(epoch: int, val_acc: float, val_f1: float, seconds: float) -> None:
    val_acc, val_f1 = round(val_acc, 6), round(val_f1, 6)
    print(
        f"epoch={epoch} val_acc={val_acc:.6f} val_f1={val_f1:.6f} time={seconds:.1f}s", flush=True
    )
    if tunectl is not None:
        tunectl.report(step=epoch, val_acc=val_acc, val_f1=val_f1)


def dry_run(args: argparse.Namespace) -> int:
    """A stand-in for training, for CI and for trying the workflow without PyTorch: the
    same output lines and model file, from a smooth made-up score that is best near
    lr = 0.01, with little dropout and more convolution blocks, and grows with the epochs."""
    import math

    distance = (math.log10(args.lr) + 2) ** 2 + (args.dropout - 0.1) ** 2 + 0.01 * (3 - args.layers)
    for epoch in range(1, args.epochs + 1):
        val_acc = max(0.1, 0.99 - 0.2 * distance - 0.3 / (epoch + 1))
        report(epoch, val_acc, val_acc - 0.002, 0.0)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "model.json").write_text(
            json.dumps({"dry_run": True, "args": {k: str(v) for k, v in vars(args).items()}}),
            encoding="utf-8",
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    manifest_path = args.data / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        sys.exit(f"train.py: cannot read {manifest_path} ({exc}); run prepare.py first.")
    if args.dry_run:
        return dry_run(args)
    torch, torchvision = require_torch()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_loader, val_loader = load_data(
        torch, torchvision, manifest, args.batch_size, args.workers
    )
    model = build_model(torch, args.layers, args.dropout).to(device)
    if args.optimizer == "sgd":
        momentum = DEFAULT_MOMENTUM if args.momentum is None else args.momentum
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    best, diverged = -1.0, False
    for epoch in range(1, args.epochs + 1):
        started = time.monotonic()
        model.train()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            optimizer.step()
        val_acc, val_f1 = evaluate(torch, model, val_loader, device)
        report(epoch, val_acc, val_f1, time.monotonic() - started)
        if diverged:
            # Too large a learning rate: report what the model scores (a poor but valid
            # trial) instead of failing, which would spend retries and max_failed_trials.
            print(
                f"train.py: the loss diverged in epoch {epoch} (lr {args.lr}); stopping.",
                flush=True,
            )
            break
        if args.out is not None and val_acc > best:
            best = val_acc
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "epoch": epoch,
                    "val_acc": val_acc,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                args.out / "model.pt",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
