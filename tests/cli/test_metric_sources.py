"""Several metric sources per trial from the command line (PAI's list of `metric_source`
with `source_list_final_mode`): each task is a source (a cross-validation fold here),
reduced by `reduce`, then across the sources by `sources_reduce`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

# Each fold prints its accuracy per step: fold k's series is FOLDS[k].
FOLDS = {1: [0.5, 0.7, 0.6], 2: [0.8, 0.9, 0.85], 3: [0.4, 0.3, 0.45]}
FOLD = f"""\
import sys
k = int(sys.argv[1])
for value in {FOLDS!r}[k]:
    print(f"acc={{value}}", flush=True)
"""


def hcl(reduce: str, sources: str, extra_task: str = "") -> str:
    tasks = "\n".join(
        f'    task "fold{k}" {{\n      command = "python3 fold.py {k}"\n    }}' for k in FOLDS
    )
    return f"""\
experiment "cv" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric         = "acc"
    direction      = "maximize"
    reduce         = "{reduce}"
    sources_reduce = "{sources}"
  }}
  max_trials = 1
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    workdir = "."
{tasks}
{extra_task}
  }}
}}
"""


def expected(reduce: str, sources: str) -> float:
    pick = {"final": lambda v: v[-1], "best": max, "avg": lambda v: sum(v) / len(v)}
    per_fold = [pick[reduce](values) for values in FOLDS.values()]
    return pick[sources](per_fold)


@pytest.mark.parametrize(
    ("reduce", "sources"),
    [("final", "final"), ("final", "avg"), ("best", "best"), ("avg", "avg"), ("best", "avg")],
)
def test_sources_are_reduced_one_by_one_then_across(
    tmp_path: Path, reduce: str, sources: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": hcl(reduce, sources), "fold.py": FOLD})
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert f'+ sources_reduce = "{sources}"' in plan.out, plan.out
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    shown = run_cli(directory, "show", "experiment.cv", "--json")
    (trial,) = json.loads(shown.out)
    assert trial["status"] == "complete", trial
    assert trial["value"] == pytest.approx(expected(reduce, sources))
    # Each source's value, and the metric across them under its own name.
    values = trial["values"]
    assert values["acc"] == pytest.approx(expected(reduce, sources)), values
    pick = {"final": lambda v: v[-1], "best": max, "avg": lambda v: sum(v) / len(v)}
    for k, series in FOLDS.items():
        assert values[f"fold{k}/acc"] == pytest.approx(pick[reduce](series)), values


def test_a_task_that_reports_nothing_is_not_a_source(tmp_path: Path) -> None:
    prepare = '    task "prepare" {\n      command = "true"\n    }'
    text = hcl("final", "avg").replace('    task "fold1"', prepare + '\n    task "fold1"', 1)
    directory = write(tmp_path / "cfg", {"main.hcl": text, "fold.py": FOLD})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    (trial,) = json.loads(run_cli(directory, "show", "experiment.cv", "--json").out)
    assert trial["value"] == pytest.approx(expected("final", "avg"))


def test_a_bad_sources_reduce_is_a_clear_error(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": hcl("final", "mean"), "fold.py": FOLD})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert 'sources_reduce must be "final", "best" or "avg", got "mean"' in result.err
    assert "Traceback" not in result.err


def test_one_task_is_one_source_and_validate_says_so(tmp_path: Path) -> None:
    text = hcl("final", "avg")
    start = text.index('    task "fold2"')
    text = text[:start] + text[text.index("  }\n}\n") :]
    directory = write(tmp_path / "cfg", {"main.hcl": text, "fold.py": FOLD})
    result = run_cli(directory, "validate")
    assert result.code == 0, result.text
    assert "sources_reduce has no effect" in result.out + result.err, result.text
