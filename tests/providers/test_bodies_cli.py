"""Non-shell task bodies and `metrics "table"`, from the command line: `tunectl validate`
and `tunectl apply` run as processes, with `FakeProvider` registered in that process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# `provider = "fake"` loads FakeProvider in the tunectl process; its tasks print their
# command, and a table query returns their `sql` statements as rows.
LAUNCH = (
    "import sys; from tunectl.testing.fake import FakeProvider; FakeProvider.install(); "
    "from tunectl.cli.main import run; sys.argv[0] = 'tunectl'; run()"
)

EXPERIMENT = """\
experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = 2
  max_concurrent = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  param "name" {
    type   = "choice"
    values = ["a'b", "c"]
  }
  trial {
%s
  }
}
"""


def tunectl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, trial: str) -> Path:
    (tmp_path / "main.hcl").write_text(EXPERIMENT % trial)
    return tmp_path


def test_validate_accepts_a_sql_body_and_a_table_metric(tmp_path: Path) -> None:
    trial = """\
    provider = "fake"
    sql      = ["create table t_${trial.number} as select '${param.name}' as n", "acc=1"]
    metrics "table" {
      sql = "select acc from eval_${trial.number} where n = '${param.name}'"
    }"""
    done = tunectl(write(tmp_path, trial), "validate")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("trial", "summary", "line"),
    [
        (  # a string parameter outside a string literal
            '    provider = "fake"\n    sql      = "select * from t_${param.name}"',
            "Placeholder in an unsafe position",
            "sql",
        ),
        (  # in a comment
            '    provider = "fake"\n    sql      = "select 1 -- ${param.x}"',
            "Placeholder in an unsafe position",
            "sql",
        ),
        (  # the metrics query follows the same rules
            '    provider = "fake"\n    command  = "acc=1"\n'
            '    metrics "table" {\n      sql = "select acc from ${trial.id}"\n    }',
            "Placeholder in an unsafe position",
            "sql",
        ),
        (  # the local provider reads no table
            '    command = "echo acc=1"\n    metrics "table" {\n      sql = "select 1"\n    }',
            "Unsupported metrics source",
            'metrics "table"',
        ),
        (  # a body the provider does not declare
            '    command = "echo acc=1"\n    sql     = "select 1"',
            "Unsupported argument",
            "sql",
        ),
    ],
)
def test_validate_refuses_unsafe_bodies_located(
    tmp_path: Path, trial: str, summary: str, line: str
) -> None:
    done = tunectl(write(tmp_path, trial), "validate", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    found = json.loads(done.stdout)["diagnostics"]
    assert [d["summary"] for d in found] == [summary], found
    where = found[0]["range"]["start"]["line"]
    assert line in (tmp_path / "main.hcl").read_text().splitlines()[where - 1]


def test_apply_reads_metrics_from_the_table(tmp_path: Path) -> None:
    trial = """\
    provider = "fake"
    sql      = ["select '${param.name}'", "acc=${param.x} step=0", "acc=${param.x}"]
    metrics "table" {
      sql = "select acc from eval_${trial.number}"
    }"""
    done = tunectl(write(tmp_path, trial), "apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = tunectl(tmp_path, "show", "--json", "experiment.demo")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    trials = json.loads(shown.stdout)
    assert [t["status"] for t in trials] == ["complete", "complete"]
    for t in trials:
        assert t["value"] == pytest.approx(t["params"]["x"])
    # The fake returns the task's statements as rows: the first shows how it was rendered
    # (skipped, not being name=value), the SQL literal escaped by SQL rules.
    assert "select 'a''b'" in done.stdout
