"""The quickstart's NumPy network, configured by a file and reporting through TensorBoard.

    python train_tb.py MODEL_DIR

reads `MODEL_DIR/config.json` (rendered by tunectl from `config.json.tpl` before the trial
starts), trains the network of `../quickstart/train.py` on the 8x8 digits, and writes
`val/acc` and `train/loss` after each epoch to `MODEL_DIR/tb` with tensorboard's event
writer, the files `tensorboard --logdir` shows. Needs NumPy and tensorboard
(`pip install 'tunectl[tensorboard]'`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "quickstart"))
import train as digits  # noqa: E402


def scalars(writer: EventFileWriter, step: int, **values: float) -> None:
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=k.replace("_", "/"), simple_value=v)
            for k, v in values.items()
        ]
    )
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.flush()


def main() -> int:
    model_dir = Path(sys.argv[1])
    config = json.loads((model_dir / "config.json").read_text())
    print(f"config: {json.dumps(config, sort_keys=True)}", flush=True)
    opt = config["optimizer"]
    x_train, y_train, x_val, y_val = digits.load_split(digits.DATA)
    rng = np.random.default_rng(config["seed"])
    params = digits.init(x_train.shape[1], opt["hidden"], 10, rng)
    writer = EventFileWriter(str(model_dir / "tb"))
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, config["epochs"] + 1):
            order = rng.permutation(len(y_train))
            losses = [
                digits.sgd_step(params, x_train[b], y_train[b], opt["lr"], opt["l2"])
                for b in np.array_split(order, max(1, len(order) // opt["batch_size"]))
            ]
            loss = float(np.mean(losses))
            scalars(writer, epoch, val_acc=digits.accuracy(params, x_val, y_val), train_loss=loss)
            if not np.isfinite(loss):
                break
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
