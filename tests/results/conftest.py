"""One real experiment for the results commands: applied once per test session with the
local provider (real processes), then read by `trials`, `export`, `dashboard` and
`report`, which never change the state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

# Reports acc and loss at each step; the objective is best at x = 0.3 with opt = "adam".
# A trial with x > 0.95 fails; early stopping prunes the hopeless ones.
TRIAL = """\
import json, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
x, layers, opt = float(args["x"]), int(args["n"]), args["o"]
if x > 0.95:
    print("diverged", file=sys.stderr)
    sys.exit(2)
for step in range(1, 5):
    time.sleep(0.02)
    score = 1 - (x - 0.3) ** 2 - (0.1 if opt == "sgd" else 0) - 0.02 * layers
    acc = round(score * step / 4, 6)
    report = {"metrics": {"acc": acc, "loss": round(1 - acc, 6)}, "step": step}
    print("@tunectl " + json.dumps(report), flush=True)
with open(args["m"] + "/model.txt", "w") as f:
    f.write(str(x))
"""

CONFIG = """\
experiment "demo" {
  algorithm "random" {
    seed = 3
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials        = 10
  max_concurrent    = 2
  max_failed_trials = 10
  early_stopping "median" {
    start_step = 2
  }
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  param "layers" {
    type = "randint"
    low  = 1
    high = 4
  }
  param "opt" {
    type   = "choice"
    values = ["adam", "sgd"]
  }
  trial {
    command = "python3 trial.py x=${param.x} n=${param.layers} o=${param.opt} m=${trial.model_dir}"
    workdir = "."
  }
}
"""


@pytest.fixture(scope="session")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration directory whose experiment.demo has run to the end."""
    directory = write(
        tmp_path_factory.mktemp("results") / "cfg", {"main.hcl": CONFIG, "trial.py": TRIAL}
    )
    result = run_cli(directory, "apply", "--auto-approve", timeout=300)
    assert result.code == 0, result.text
    return directory


def shown(directory: Path, *args: str) -> dict:
    result = run_cli(directory, "show", *args, "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)
