"""`tunectl trials`: the table, its sorting and filters, CSV, JSON, and bad input."""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.results.conftest import shown


def _rows(out: str) -> list[list[str]]:
    """The table's rows (after the header line), split on runs of spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("trial"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_table_best_first_with_marker_curves_and_tasks(applied: Path) -> None:
    result = run_cli(applied, "trials", "experiment.demo")
    assert result.code == 0, result.text
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0].startswith("experiment.demo (succeeded): 10 trials, maximize acc")
    header = next(line for line in lines if line.startswith("trial")).split()
    assert header == [
        "trial", "state", "layers", "opt", "x", "acc", "loss", "curve", "duration", "tries",
        "task",
    ]  # fmt: skip
    rows = _rows(result.out)
    assert len(rows) == 10
    best = shown(applied)["experiments"]["demo"]["best"]
    # Best first, marked; values never increase down the complete trials.
    assert rows[0][0] == f"*{best['number']}"
    assert [r[0] for r in rows].count(f"*{best['number']}") == 1
    complete = [float(r[5]) for r in rows if r[1] == "complete"]
    assert complete == sorted(complete, reverse=True)
    # Real values of the choice parameter, a sparkline per trial that reported, task ids.
    assert {r[3] for r in rows} <= {"adam", "sgd"}
    assert any(set(r[7]) <= set("▁▂▃▄▅▆▇█") and len(r[7]) >= 2 for r in rows)
    assert all(r[-1].startswith("tk-") for r in rows)
    assert f"* best: trial {best['number']}, acc = " in result.out
    assert "model: " in result.out


def test_state_top_sort_and_reverse(applied: Path) -> None:
    every = json.loads(run_cli(applied, "trials", "experiment.demo", "--json").out)["trials"]
    pruned = [t["number"] for t in every if t["state"] == "pruned"]
    result = run_cli(applied, "trials", "experiment.demo", "--state", "pruned")
    assert result.code == 0, result.text
    assert sorted(int(r[0].lstrip("*")) for r in _rows(result.out)) == sorted(pruned)

    result = run_cli(
        applied, "trials", "experiment.demo", "--state", "complete,pruned", "--top", "3"
    )
    assert result.code == 0 and len(_rows(result.out)) == 3

    result = run_cli(applied, "trials", "experiment.demo", "--sort", "number")
    numbers = [int(r[0].lstrip("*")) for r in _rows(result.out)]
    assert numbers == sorted(numbers) == list(range(10))

    result = run_cli(applied, "trials", "experiment.demo", "--sort", "x", "--reverse")
    xs = [float(r[4]) for r in _rows(result.out)]
    assert xs == sorted(xs, reverse=True)


def test_json_document(applied: Path) -> None:
    result = run_cli(applied, "trials", "experiment.demo", "--json")
    assert result.code == 0, result.text
    doc = json.loads(result.out)
    assert doc["format_version"] == "1.1"
    assert doc["experiment"] == "experiment.demo"
    assert doc["objective"] == {
        "name": "acc",
        "direction": "maximize",
        "metric": "acc",
        "metrics": {},
        "reduce": "final",
    }
    assert doc["params"]["opt"] == {"type": "choice", "values": ["adam", "sgd"]}
    trials = doc["trials"]
    state = {t["number"]: t for t in shown(applied, "experiment.demo")}
    assert {t["number"] for t in trials} == set(state)
    assert [t["number"] for t in trials if t["best"]] == [doc["best_trial"]]
    assert doc["best_trial"] == shown(applied)["experiments"]["demo"]["best"]["number"]
    for t in trials:
        assert t["params"] == state[t["number"]]["params"]  # real values, not indices
        assert t["params"]["opt"] in ("adam", "sgd")
        assert t["state"] == state[t["number"]]["status"]
        assert t["id"] == state[t["number"]]["id"]
        for key in ("created", "started", "finished"):
            if t[key] is not None:
                assert t[key].endswith("Z")
                assert datetime.datetime.fromisoformat(t[key]).tzinfo is not None
        assert t["attempts"] == 1 and t["tasks"][0]["id"].startswith("tk-")
        assert t["duration_seconds"] >= 0
        if t["state"] == "complete":
            assert t["value"] == state[t["number"]]["value"]
            assert [s for s, _ in t["intermediate_values"]] == [1, 2, 3, 4]
            assert t["model_uri"]


def test_csv_has_optuna_column_names(applied: Path) -> None:
    result = run_cli(applied, "trials", "experiment.demo", "--csv", "--sort", "number")
    assert result.code == 0, result.text
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == 10
    assert list(rows[0])[:8] == [
        "number", "value", "datetime_start", "datetime_complete", "duration_seconds",
        "params_layers", "params_opt", "params_x",
    ]  # fmt: skip
    assert {"metrics_acc", "metrics_loss", "state", "task_id", "model_uri"} <= set(rows[0])
    assert [int(r["number"]) for r in rows] == list(range(10))
    assert sum(r["best"] == "true" for r in rows) == 1
    assert all(r["params_opt"] in ("adam", "sgd") for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "finished"], '"finished" is not a trial state'),
        (["--sort", "speed"], '"speed" is not a sort key of experiment.demo'),
        (["--top", "0"], "--top must be at least 1"),
        (["--csv", "--json"], "Use --csv or --json, not both"),
    ],
)
def test_bad_options(applied: Path, args: list[str], message: str) -> None:
    result = run_cli(applied, "trials", "experiment.demo", *args)
    assert result.code == 1
    assert message in result.err and "Traceback" not in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    ("address", "summary"),
    [
        ("experiment.nope", "No such experiment"),
        ("demo", "Invalid address"),
        ("experiment.demo.trial[1]", ""),
    ],
)
def test_bad_addresses(applied: Path, address: str, summary: str) -> None:
    for command in (["trials"], ["export", "--storage", "sqlite:///x.db"], ["report"]):
        result = run_cli(applied, *command, address)
        assert result.code == 1, (command, result.text)
        assert result.err.startswith("\nError: ") and summary in result.err
        assert "Traceback" not in result.err and "internal error" not in result.err
    assert not (applied / "x.db").exists()


def test_an_experiment_without_trials(tmp_path: Path) -> None:
    from tests.conftest import write
    from tests.results.conftest import CONFIG, TRIAL

    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG, "trial.py": TRIAL})
    result = run_cli(directory, "trials", "experiment.demo")
    assert result.code == 1 and "state" in result.err.lower()
