"""Algorithms whose packages are extras: without them, `validate` names the extra.

The package is hidden from a real `tunectl` process by a shim package earlier on
PYTHONPATH whose import fails, as it would when the package is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write

CONFIG = """\
experiment "demo" {
  algorithm "%s" {
    seed = 1
  }
  objective {
    metric    = "loss"
    direction = "minimize"
  }
  max_trials = 2
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "true"
  }
}
"""


def hiding(tmp_path: Path, *modules: str) -> dict[str, str]:
    shim = tmp_path / "shim"
    for module in modules:
        write(shim / module, {"__init__.py": f'raise ImportError("no module named {module}")\n'})
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH", "")) if p)
    return cli_env(PYTHONPATH=path)


@pytest.mark.parametrize(
    ("algorithm", "module", "label"),
    [
        ("cmaes", "cmaes", "cmaes"),
        ("qmc", "scipy", "SciPy"),
        ("gp", "scipy", "SciPy"),
        ("gp", "torch", "PyTorch"),
    ],
)
def test_validate_names_the_missing_extra(tmp_path, algorithm, module, label):
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG % algorithm})
    result = run_cli(directory, "validate", "--json", env=hiding(tmp_path, module))
    assert result.code == 1, result.text
    [diag] = json.loads(result.out)["diagnostics"]
    assert diag["summary"] == "Invalid search space"
    assert f'The "{algorithm}" algorithm needs' in diag["detail"] and label in diag["detail"]
    assert f"pip install 'tunectl[{algorithm}]'" in diag["detail"]


def test_validate_passes_with_the_extra(tmp_path):
    pytest.importorskip("cmaes")
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG % "cmaes"})
    result = run_cli(directory, "validate", "--json", env=hiding(tmp_path, "torch"))
    assert result.code == 0, result.text


def test_apply_refuses_before_running_anything(tmp_path):
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG % "cmaes"})
    result = run_cli(directory, "apply", "--auto-approve", env=hiding(tmp_path, "cmaes"))
    assert result.code == 1, result.text
    assert "Invalid search space" in result.text
    assert "pip install 'tunectl[cmaes]'" in result.text
