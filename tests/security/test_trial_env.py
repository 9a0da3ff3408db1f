"""What trials inherit (issue 9 item 3, SPEC 6): the user's environment minus TUNECTL_*.

A local trial dumps its whole environment to its model dir; the test checks that
`TUNECTL_VAR_*` and tunectl's own settings are gone, that what the trial is given (its
`env`, and the TUNECTL_* variables tunectl sets for it) is there, and that the rest of the
user's environment passes through, as Terraform's local-exec passes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli_env, run_cli, write

TRIAL = """\
import json, os
with open(os.path.join(os.environ["TUNECTL_MODEL_DIR"], "env.json"), "w") as f:
    json.dump(dict(os.environ), f)
print("acc=1")
"""

MAIN = """\
variable "token" {
  type      = string
  sensitive = true
}

variable "epochs" {
  type = number
}

experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py"
    workdir = "."
    env = {
      API_TOKEN = var.token
      EPOCHS    = var.epochs
    }
  }
}
"""


def _trial_env(tmp_path: Path, **environ: str) -> dict[str, str]:
    cfg = write(tmp_path / "cfg", {"main.hcl": MAIN, "trial.py": TRIAL})
    result = run_cli(cfg, "apply", "--auto-approve", env=cli_env(**environ))
    assert result.code == 0, result.text
    return json.loads(next(cfg.rglob("env.json")).read_text())


def test_trial_gets_no_tunectl_inputs_or_settings(tmp_path: Path) -> None:
    env = _trial_env(
        tmp_path,
        TUNECTL_VAR_token="tok-from-env-5e1f",
        TUNECTL_VAR_epochs="3",
        TUNECTL_VAR_unused="x",
        TUNECTL_DEBUG="1",
        TUNECTL_CACHE_DIR=str(tmp_path / "cache"),
        TUNECTL_METRICS_FILE=str(tmp_path / "shared-metrics.jsonl"),
        USER_SETTING="kept",
    )
    leaked = sorted(k for k in env if k.startswith("TUNECTL_VAR_"))
    assert leaked == [], f"the trial inherited {leaked}"
    for name in ("TUNECTL_DEBUG", "TUNECTL_CACHE_DIR", "TUNECTL_METRICS_FILE"):
        assert name not in env, f"the trial inherited tunectl's own setting {name}"
    # What the trial needs arrives: its env map (the secret included) ...
    assert env["API_TOKEN"] == "tok-from-env-5e1f"
    assert env["EPOCHS"] == "3"
    # ... the variables tunectl sets for each trial ...
    for name in ("TUNECTL_TRIAL_KEY", "TUNECTL_TASK_DIR", "TUNECTL_MODEL_DIR"):
        assert env.get(name), f"{name} missing from the trial's environment"
    # ... and the rest of the user's environment, as Terraform's local-exec passes it.
    assert env["USER_SETTING"] == "kept"
    assert env.get("PATH")


def test_trial_env_can_set_a_tunectl_name_explicitly(tmp_path: Path) -> None:
    # Stripping applies to what is inherited; a name the configuration passes on purpose
    # (here through a variable given with --var) reaches the trial.
    hcl = MAIN.replace(
        "EPOCHS    = var.epochs", 'EPOCHS    = var.epochs\n      TUNECTL_METRICS_FILE = "m.jsonl"'
    )
    cfg = write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})
    result = run_cli(
        cfg,
        "apply",
        "--auto-approve",
        "--var",
        "token=t0k3n-on-the-command-line",
        "--var",
        "epochs=2",
        env=cli_env(TUNECTL_METRICS_FILE="/tmp/elsewhere.jsonl"),
    )
    assert result.code == 0, result.text
    env = json.loads(next(cfg.rglob("env.json")).read_text())
    assert env["TUNECTL_METRICS_FILE"] == "m.jsonl"
    assert env["API_TOKEN"] == "t0k3n-on-the-command-line"
    assert not any(k.startswith("TUNECTL_VAR_") for k in env)
