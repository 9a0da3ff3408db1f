"""`max_cost` on MaxCompute: counted only where a price is known (`price_per_hour`), as
pay-as-you-go SQL is billed by the data it reads; refused at validate otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = """\
provider "maxcompute" {{
  project  = "p_budget"
  endpoint = "http://127.0.0.1:9/api"
  {price}
}}

experiment "mcx" {{
  algorithm "random" {{
    seed = 2
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials = 3
  max_cost   = 10
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    provider = "maxcompute"
    timeout  = "30m"
    task "score" {{
      sql = "select ${{param.x}} as acc"
      metrics "table" {{
        sql = "select acc from score"
      }}
    }}
  }}
}}
"""


def validate(tmp_path: Path, price: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "main.hcl").write_text(CONFIG.format(price=price))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    return subprocess.run(
        [sys.executable, "-m", "tunectl", "-C", str(tmp_path), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "NO_COLOR": "1"},
    )


def test_max_cost_without_a_price_is_refused_where_it_is_written(tmp_path: Path) -> None:
    result = validate(tmp_path, "")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "Error: Invalid max_cost" in result.stderr
    assert "main.hcl line 16" in result.stderr, result.stderr
    assert "max_cost   = 10" in result.stderr
    assert "the maxcompute provider does not know the price" in result.stderr
    assert '"price_per_hour" in the provider "maxcompute" block' in result.stderr


def test_max_cost_with_a_price_per_hour_is_accepted(tmp_path: Path) -> None:
    result = validate(tmp_path, "price_per_hour = 4")
    assert result.returncode == 0, result.stderr
    bad = validate(tmp_path, "price_per_hour = -1")
    assert bad.returncode == 1 and "Invalid price" in bad.stderr, bad.stderr
