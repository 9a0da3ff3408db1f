"""Task "prepare" of a trial (PAI AutoML's cmd1): write the data manifest train.py reads.

Standard library only, so it runs in any image. It decides where the MNIST files live
(`--root`, else $MNIST_ROOT, else ~/.cache/tunectl-examples/mnist), fixes the
train/validation split, and writes both to `OUT/manifest.json`. The raw files are
fetched once, by the first train task that needs them (torchvision, under a file lock),
into that shared root, so concurrent trials never download MNIST twice.

    python prepare.py --out /tmp/trial-0/data
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

MANIFEST = "manifest.json"
DEFAULT_ROOT = Path.home() / ".cache" / "tunectl-examples" / "mnist"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="directory to write manifest.json in")
    p.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("MNIST_ROOT") or DEFAULT_ROOT),
        help="where the raw MNIST files are (or will be) stored",
    )
    p.add_argument("--val-size", type=int, default=5000, help="validation images (of 60,000)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val split")
    args = p.parse_args(argv)
    if not 0 < args.val_size < 60000:
        p.error("--val-size must be between 1 and 59999")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.root.expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"prepare.py: cannot create {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    # timezone.utc rather than datetime.UTC: trial images may run Python < 3.11.
    manifest = {
        "dataset": "mnist",
        "root": str(root),
        "train_size": 60000 - args.val_size,
        "val_size": args.val_size,
        "split_seed": args.split_seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
    }
    # Write then rename: a relaunched trial never reads a half-written manifest.
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(tmp, args.out / MANIFEST)
    print(f"prepare.py: wrote {args.out / MANIFEST} (MNIST root {root})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
