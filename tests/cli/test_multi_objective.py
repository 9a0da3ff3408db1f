"""Several objectives from the command line: `objective { metrics = [...], directions =
[...] }` applied on the local provider with real processes; the Pareto front in `output`,
`trials` (table, CSV, JSON), the report and an exported Optuna study; the study continued
across applies; `keep = "best"` keeping the front's models; and the mistakes validate
refuses, each located."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.engine.pareto import dominates

# acc is best at x = 0.7; latency grows with x and with k: the two pull apart below 0.7.
TRIAL = """\
import pathlib, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
x, k = float(args["x"]), int(args["k"])
with open("launches.log", "a") as f:
    f.write(args["out"] + "\\n")
time.sleep(float(args.get("s", 0)))
out = pathlib.Path(args["out"])
out.mkdir(parents=True, exist_ok=True)
(out / "model.txt").write_text(args["x"])
acc = 1 - (x - 0.7) ** 2
print(f"acc={acc / 2:.6f}", flush=True)
print(f"acc={acc:.6f}", flush=True)
print(f"latency={10 * x + k:.6f}", flush=True)
"""

DIRECTIONS = ["maximize", "minimize"]


def config(
    *,
    max_trials: int = 10,
    algorithm: str = 'algorithm "tpe" {\n    seed = 3\n    n_startup_trials = 4\n  }',
    objective: str = 'metrics    = ["acc", "latency"]\n    directions = ["maximize", "minimize"]',
    extra: str = "",
    output: str = "experiment.mo.pareto",
    concurrent: int = 2,
    sleep: float = 0,
) -> str:
    return f"""\
storage "local" {{
  keep = "best"
}}

experiment "mo" {{
  {algorithm}
  objective {{
    {objective}
  }}
  max_trials     = {max_trials}
  max_concurrent = {concurrent}
  {extra}
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  param "k" {{
    type   = "choice"
    values = [0, 1, 2]
  }}
  trial {{
    command = "python3 trial.py x=${{param.x}} k=${{param.k}} out=${{trial.model_dir}} s={sleep}"
    workdir = "."
  }}
}}

output "front" {{
  value = {output}
}}
"""


def setup(tmp_path: Path, hcl: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})


def trials_json(directory: Path, *args: str) -> dict:
    result = run_cli(directory, "trials", "experiment.mo", "--json", *args)
    assert result.code == 0, result.text
    return json.loads(result.out)


def vector(trial: dict) -> list[float]:
    return [trial["values"]["acc"], trial["values"]["latency"]]


def check_front(trials: list[dict], front: set[int]) -> None:
    """No member of `front` is dominated; every other complete trial is."""
    complete = {t["number"]: vector(t) for t in trials if t["state"] == "complete"}
    assert front and front <= set(complete)
    for n, values in complete.items():
        dominated = any(dominates(o, values, DIRECTIONS) for m, o in complete.items() if m != n)
        assert dominated == (n not in front), (n, values, front)


def test_two_objectives_apply_and_show_the_pareto_front(tmp_path: Path) -> None:
    directory = setup(tmp_path, config())
    assert run_cli(directory, "validate").code == 0
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert re.search(r"trial \d+ complete: acc [\d.]+, latency [\d.]+", result.out), result.out
    assert "pareto front: trials" in result.out and "best:" not in result.out

    # output: the front as { trial, values, params, model_uri }, checked against trials.
    doc = trials_json(directory)
    assert doc["best_trial"] is None
    assert doc["objective"]["metrics"] == ["acc", "latency"]
    assert doc["objective"]["directions"] == DIRECTIONS
    listed = doc["trials"]
    assert len(listed) == 10 and all(t["state"] == "complete" for t in listed)
    assert all(t["value"] is None and set(t["values"]) == {"acc", "latency"} for t in listed)
    shown = run_cli(directory, "output", "--json")
    assert shown.code == 0, shown.text
    front = json.loads(shown.out)["front"]["value"]
    numbers = {p["trial"] for p in front}
    check_front(listed, numbers)
    by_number = {t["number"]: t for t in listed}
    for p in front:
        assert p["values"] == by_number[p["trial"]]["values"]
        assert p["params"] == by_number[p["trial"]]["params"]
    # trials --json marks the same trials, sorted by the first objective (best first).
    assert {t["number"] for t in listed if t["pareto"]} == numbers
    assert set(doc["pareto_front"]) == numbers
    accs = [t["values"]["acc"] for t in listed]
    assert accs == sorted(accs, reverse=True)

    # The table: a column per objective and a marker on each Pareto-optimal trial.
    table = run_cli(directory, "trials", "experiment.mo")
    assert table.code == 0, table.text
    assert "maximize acc, minimize latency" in table.out
    header = next(line for line in table.out.splitlines() if line.startswith("trial"))
    assert header.split()[:6] == ["trial", "state", "k", "x", "acc", "latency"]
    marked = {int(m) for m in re.findall(r"^\s*\*(\d+)\s", table.out, re.M)}
    assert marked == numbers
    front_line = ", ".join(str(n) for n in sorted(numbers))
    assert f"* pareto front: trials {front_line}" in table.out

    # CSV: values per objective and a pareto column.
    rows = list(csv.DictReader(io.StringIO(run_cli(directory, "trials", "experiment.mo",
                                                   "--csv").out)))  # fmt: skip
    assert {int(r["number"]) for r in rows if r["pareto"] == "true"} == numbers
    assert all(float(r["values_acc"]) == by_number[int(r["number"])]["values"]["acc"]
               for r in rows)  # fmt: skip

    # keep = "best" keeps the models of the front, and only those.
    kept = {t["number"] for t in listed if t["model_uri"]}
    assert kept == numbers

    # Nothing changed: the stored objective reads back as written.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out, plan.text


def test_report_and_export_are_multi_objective(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    pytest.importorskip("sklearn")
    optuna = pytest.importorskip("optuna")
    directory = setup(tmp_path, config(max_trials=6))
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    front = set(trials_json(directory)["pareto_front"])

    report = tmp_path / "report.html"
    result = run_cli(directory, "report", "experiment.mo", "-o", str(report))
    assert result.code == 0, result.text
    page = report.read_text()
    assert "data-plot='pareto'" in page and "Pareto front of acc, latency" in page
    assert "Optimization history of acc" in page
    assert "Pareto front (" in page

    db = tmp_path / "study.db"
    result = run_cli(directory, "export", "experiment.mo", "--storage", f"sqlite:///{db}")
    assert result.code == 0, result.text
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{db}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["acc", "latency"]
    assert {t.user_attrs["tunectl_number"] for t in study.best_trials} == front


@pytest.mark.parametrize(
    "algorithm",
    [
        'algorithm "tpe" {\n    seed = 3\n    n_startup_trials = 3\n  }',
        'algorithm "evolution" {\n    seed = 3\n    population_size = 4\n  }',
    ],
    ids=["tpe", "nsga2"],
)
def test_the_study_continues_across_applies_as_one_run(tmp_path: Path, algorithm: str) -> None:
    """Raising max_trials continues the study rebuilt from the state (values included):
    the trials asked then are the ones one apply of them all asks."""
    one = setup(tmp_path / "one", config(max_trials=8, algorithm=algorithm, concurrent=1))
    assert run_cli(one, "apply", "--auto-approve").code == 0
    two = setup(tmp_path / "two", config(max_trials=4, algorithm=algorithm, concurrent=1))
    assert run_cli(two, "apply", "--auto-approve").code == 0
    (two / "main.hcl").write_text(config(max_trials=8, algorithm=algorithm, concurrent=1))
    result = run_cli(two, "apply", "--auto-approve")
    assert result.code == 0, result.text
    params = [[t["params"] for t in trials_json(d, "--sort", "number")["trials"]]
              for d in (one, two)]  # fmt: skip
    assert len(params[0]) == len(params[1]) == 8
    assert params[0] == params[1]


@pytest.mark.slow
def test_a_killed_apply_resumes_with_every_trials_values(tmp_path: Path) -> None:
    """kill -9 while trials run: the next apply adopts them, tells the rebuilt
    multi-objective study their values, and launches nothing twice."""
    directory = setup(tmp_path, config(max_trials=6, sleep=0.6))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    log = directory / "launches.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # two trials done, the next two running
        if log.exists() and len(log.read_text().split()) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    listed = trials_json(directory, "--sort", "number")["trials"]
    assert [t["number"] for t in listed] == list(range(6))
    assert all(t["state"] == "complete" and t["values"] for t in listed), listed
    launched = log.read_text().split()
    assert len(launched) == len(set(launched)) == 6
    check_front(listed, {t["number"] for t in listed if t["pareto"]})


BAD = {
    "lengths differ": (
        'metrics = ["acc", "latency"]\n    directions = ["maximize"]',
        "",
        "directions has 1 entries but metrics has 2",
        "directions",
    ),
    "unknown direction": (
        'metrics = ["acc", "latency"]\n    directions = ["maximize", "minimise"]',
        "",
        'directions[1] must be "maximize" or "minimize", got "minimise". Did you mean',
        '"minimise"',
    ),
    "no directions": (
        'metrics = ["acc", "latency"]\n    direction = "maximize"',
        "",
        "give one direction per metric",
        "metrics",
    ),
    "one metric": (
        'metrics = ["acc"]\n    directions = ["maximize"]',
        "",
        "Several objectives need at least two metrics",
        "metrics",
    ),
    "goal": (
        'metrics = ["acc", "latency"]\n    directions = ["maximize", "minimize"]\n    goal = 1',
        "",
        "remove goal",
        "goal",
    ),
    "early stopping": (
        None,
        'early_stopping "median" {\n    start_step = 1\n  }',
        "Optuna defines no pruning for several objectives",
        "early_stopping",
    ),
    "without improvement": (
        None,
        "max_trials_without_improvement = 3",
        "no single best trial",
        "max_trials_without_improvement",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=lambda c: c.replace(" ", "-"))
def test_bad_objectives_are_located_diagnostics(tmp_path: Path, case: str) -> None:
    objective, extra, sentence, where = BAD[case]
    kw = {"objective": objective} if objective else {}
    directory = setup(tmp_path, config(extra=extra, **kw))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert sentence in result.err and "Traceback" not in result.text, result.err
    lines = (directory / "main.hcl").read_text().splitlines()
    line = int(re.search(r"on main\.hcl line (\d+)", result.err).group(1))  # type: ignore[union-attr]
    assert where in lines[line - 1], (lines[line - 1], result.err)


def test_an_algorithm_that_cannot_is_refused_naming_those_that_can(tmp_path: Path) -> None:
    algorithm = 'algorithm "cmaes" {\n    seed = 1\n  }'
    directory = setup(tmp_path, config(algorithm=algorithm))
    result = run_cli(directory, "validate")
    assert result.code == 1 and "Traceback" not in result.text, result.text
    assert "Error: Algorithm cannot search several objectives" in result.err
    assert 'on main.hcl line 6, in experiment "mo"' in result.err
    assert "tpe, random" in result.err and "evolution" in result.err
    assert "cmaes," not in result.err.split("Choose one")[1]


def test_outputs_use_pareto_not_best(tmp_path: Path) -> None:
    directory = setup(tmp_path, config(output="experiment.mo.best.value"))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: No single best trial" in result.err
    assert "use experiment.mo.pareto" in result.err
    assert "value = experiment.mo.best.value" in result.err  # the snippet: located
