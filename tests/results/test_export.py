"""`tunectl export` and `tunectl dashboard`: the experiment as a real Optuna study."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from tests.conftest import cli_env, run_cli
from tests.results.conftest import shown


def _importances(study: optuna.Study) -> dict[str, float]:
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


def test_exported_study_opens_with_load_study_and_matches_the_state(
    applied: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_cli(applied, "export", "experiment.demo", "--storage", url)
    assert result.code == 0, result.text
    assert f'as the Optuna study "demo" to {url}' in result.out

    study = optuna.load_study(study_name="demo", storage=url)
    state = {t["number"]: t for t in shown(applied, "experiment.demo")}
    best = shown(applied)["experiments"]["demo"]["best"]
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.best_trial.number == best["number"]
    assert study.best_value == best["value"]
    assert study.best_params == best["params"]
    assert study.best_trial.user_attrs["model_uri"] == best["model_uri"]
    assert study.user_attrs["tunectl_address"] == "experiment.demo"

    states = {"complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == len(state)
    for t in trials:
        record = state[t.user_attrs["tunectl_number"]]
        assert t.number == record["number"]
        assert t.user_attrs["tunectl_trial_id"] == record["id"]
        assert t.state.name == states[record["status"]]
        if record["status"] != "failed":
            assert t.params == record["params"]  # real values: opt is "adam" or "sgd"
            assert set(t.intermediate_values) <= {1, 2, 3, 4} and t.intermediate_values
        if record["status"] == "complete":
            assert t.value == record["value"]
            assert t.intermediate_values[4] == record["value"]
            assert t.user_attrs["metric:loss"] == record["values"]["loss"]
        assert t.datetime_start is not None and t.datetime_complete is not None
    dists = study.best_trial.distributions
    assert dists["opt"] == optuna.distributions.CategoricalDistribution(["adam", "sgd"])
    assert dists["layers"] == optuna.distributions.IntDistribution(1, 3)
    assert dists["x"] == optuna.distributions.FloatDistribution(0, 1)

    # The same importances as the study rebuilt straight from the state.
    from tunectl.engine.results import load_results
    from tunectl.operations.study import rebuild_study
    from tunectl.states import State

    with State.open(applied / "state" / "tunectl.db", create=False) as db:
        from_state = rebuild_study(load_results(db, "experiment.demo"))
    assert from_state.best_trial.number == study.best_trial.number
    assert _importances(study) == _importances(from_state)
    assert set(_importances(study)) == {"x", "layers", "opt"}


def test_journal_file_duplicate_name_and_overwrite(applied: Path, tmp_path: Path) -> None:
    path = tmp_path / "study.log"
    result = run_cli(applied, "export", "experiment.demo", "--storage", str(path))
    assert result.code == 0, result.text
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    assert len(optuna.load_study(study_name="demo", storage=storage).trials) == 10

    again = run_cli(applied, "export", "experiment.demo", "--storage", f"journal://{path}")
    assert again.code == 1
    assert "Study already exists" in again.err and "--overwrite" in again.err
    renamed = run_cli(
        applied, "export", "experiment.demo", "--storage", str(path), "--study-name", "second"
    )
    assert renamed.code == 0, renamed.text
    replaced = run_cli(applied, "export", "experiment.demo", "--storage", str(path), "--overwrite")
    assert replaced.code == 0, replaced.text
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == ["demo", "second"]


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("study.db", "is not a storage URL"),
        ("nosuchdb://x", "Cannot open the storage"),
        ("journal:///nonexistent/dir/study.log", "Cannot open the storage"),
        ("sqlite:////nonexistent/dir/study.db", "Cannot open the storage"),
    ],
)
def test_bad_storage(applied: Path, storage: str, message: str) -> None:
    result = run_cli(applied, "export", "experiment.demo", "--storage", storage)
    assert result.code == 1
    assert message in result.err and "Traceback" not in result.err


def test_export_needs_a_storage(applied: Path) -> None:
    result = run_cli(applied, "export", "experiment.demo")
    assert result.code == 1 and "--storage" in result.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_serves_the_study(applied: Path) -> None:
    pytest.importorskip("optuna_dashboard")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tunectl",
            "-C",
            str(applied),
            "dashboard",
            "experiment.demo",
            "--port",
            str(port),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        # A shell's background job ignores SIGINT, and so would the child: restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.3)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "timeout"
        (study,) = body["study_summaries"]
        assert study["study_name"] == "demo"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=5
        ) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) == 10
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
    assert proc.returncode == 0 and out.rstrip().endswith("Stopped."), (out, err)


def test_dashboard_without_the_extra(applied: Path, tmp_path: Path) -> None:
    # A package that fails to import stands for optuna-dashboard not being installed.
    fake = tmp_path / "site" / "optuna_dashboard"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run_cli(
        applied, "dashboard", "experiment.demo", env=cli_env(PYTHONPATH=str(fake.parent))
    )
    assert result.code == 1
    assert "optuna-dashboard is not installed" in result.err
    assert "pip install 'tunectl[dashboard]'" in result.err
    assert "Traceback" not in result.err
