"""The study rebuilt from a state (`tunectl.operations.study`): every parameter type's
distribution holds the values trials saw, every trial state maps, running trials survive
a database storage, and the results' ordering rules."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from tunectl.diags import DiagnosticError
from tunectl.engine.results import load_results, select
from tunectl.operations.study import export, external_distribution, rebuild_study
from tunectl.search.model import ParamSpec
from tunectl.search.space import internal_distribution, to_external
from tunectl.states import ExperimentRecord, MetricRecord, State, TaskRecord, TrialRecord
from tunectl.status import TaskRecordStatus, TrialStatus

SPECS = [
    ParamSpec("c", "choice", values=("a", 2, True, None)),
    ParamSpec("r", "randint", low=1, high=5),
    ParamSpec("u", "uniform", low=-1, high=1),
    ParamSpec("q", "quniform", low=0.05, high=1, q=0.1),
    ParamSpec("lu", "loguniform", low=1e-4, high=1),
    ParamSpec("ql", "qloguniform", low=1, high=100, q=5),
    ParamSpec("n", "normal", mu=0, sigma=2),
    ParamSpec("qn", "qnormal", mu=10, sigma=3, q=2),
    ParamSpec("ln", "lognormal", mu=0, sigma=1),
    ParamSpec("qln", "qlognormal", mu=2, sigma=1, q=1),
    ParamSpec("i", "int", low=2, high=20, step=3),
    ParamSpec("f", "float", low=0, high=1, step=0.25),
    ParamSpec("fl", "float", low=1e-3, high=10, log=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.type + "-" + p.name)
def test_every_external_value_is_in_its_distribution(spec: ParamSpec) -> None:
    dist = external_distribution(spec)
    kind, kw = internal_distribution(spec)
    if kind == "categorical":
        internals = list(kw["choices"])
    elif kind == "int":
        internals = list(range(kw["low"], kw["high"] + 1, kw["step"]))
    else:
        low, high = kw["low"], kw["high"]
        internals = [low + (high - low) * k / 50 for k in range(51)]
    for internal in internals:
        value = to_external(spec, internal)
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            assert value in dist.choices
        else:
            assert dist.low - 1e-9 <= value <= dist.high + 1e-9, (internal, value, dist)
    if spec.type == "choice":
        assert list(dist.choices) == ["a", 2, True, None]  # values, not indices


BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z: fixed times, for the golden files


def _state(path: Path) -> State:
    state = State.open(path, create=True)
    config = {
        "objective": {"direction": "minimize", "metric": "loss", "reduce": "final"},
        "param": {"x": {"type": "uniform", "low": 0, "high": 1},
                  "opt": {"type": "choice", "values": ["adam", "sgd"]}},
    }  # fmt: skip
    state.put_experiment(ExperimentRecord(name="e", config=config, created_at=BASE))
    now = BASE
    rows = [
        (0, TrialStatus.COMPLETE, 0.5, {"x": 0.2, "opt": "adam"}, [0.9, 0.7, 0.5]),
        (1, TrialStatus.COMPLETE, 0.3, {"x": 0.4, "opt": "sgd"}, [0.8, 0.3]),
        (2, TrialStatus.PRUNED, None, {"x": 0.9, "opt": "sgd"}, [1.5, 1.4]),
        (3, TrialStatus.FAILED, None, {"x": 0.1, "opt": "adam"}, []),
        (4, TrialStatus.RUNNING, None, {"x": 0.5, "opt": "adam"}, [0.6]),
        (5, TrialStatus.PENDING, None, {"x": 0.6, "opt": "sgd"}, []),
        (6, TrialStatus.COMPLETE, 0.3, {"x": 0.45, "opt": "sgd"}, [0.3]),
    ]
    for number, status, value, params, curve in rows:
        ended = status.ended
        state.add_trial(
            TrialRecord(
                experiment="e",
                number=number,
                id=f"e-g1-t{number}",
                params=params,
                status=status,
                value=value,
                values={"loss": value} if value is not None else {},
                created_at=now + number,
                started_at=None if status == TrialStatus.PENDING else now + number,
                finished_at=now + number + 2 if ended else None,
                model_uri=f"file:///models/{number}" if value is not None else None,
                attempt=1 if number == 3 else 0,
                last_step=1 if status == TrialStatus.PRUNED else None,
            )
        )
        state.add_metrics(
            [
                MetricRecord("e", number, "loss", step, v, now)
                for step, v in enumerate(curve, start=1)
            ]
        )
        if status != TrialStatus.PENDING:
            state.add_task(
                TaskRecord(
                    key=f"k{number}", experiment="e", trial_number=number, task_index=0,
                    task_name="main", attempt=0, provider="local", handle_id=f"h{number}",
                    status=TaskRecordStatus.RUNNING, submitted_at=now,
                )
            )  # fmt: skip
    return state


def test_states_values_and_attributes_map(tmp_path: Path) -> None:
    with _state(tmp_path / "tunectl.db") as state:
        results = load_results(state, "experiment.e")
    assert results.best == 1  # the first of equal values, as Optuna's best trial
    url = f"sqlite:///{tmp_path / 'study.db'}"
    export(results, url, None, overwrite=False)
    study = optuna.load_study(study_name="e", storage=url)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.metric_names == ["loss"]
    t = {trial.number: trial for trial in study.trials}
    names = {n: t[n].state.name for n in t}
    assert names == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED", 3: "FAIL", 4: "RUNNING",
                     5: "RUNNING", 6: "COMPLETE"}  # fmt: skip
    assert study.best_trial.number == 1 and study.best_value == 0.3
    # A pruned trial keeps the curve up to where it was pruned, and its last value.
    assert t[2].intermediate_values == {1: 1.5} and t[2].value == 1.5
    assert t[4].intermediate_values == {1: 0.6} and t[4].datetime_complete is None
    assert t[3].user_attrs["attempts"] == 2 and t[3].user_attrs["task_ids"] == ["h3"]
    assert t[5].user_attrs["task_ids"] == []
    assert t[0].params == {"x": 0.2, "opt": "adam"}
    assert t[0].user_attrs["model_uri"] == "file:///models/0"
    assert math.isclose((t[0].datetime_complete - t[0].datetime_start).total_seconds(), 2)


def test_selection_rules(tmp_path: Path) -> None:
    with _state(tmp_path / "tunectl.db") as state:
        results = load_results(state, "experiment.e")
    # Minimize: lowest first, equal values in number order, no value last.
    assert [t.number for t in select(results)] == [1, 6, 0, 2, 3, 4, 5]
    assert [t.number for t in select(results, reverse=True)][:4] == [0, 6, 1, 2]
    assert [t.number for t in select(results, sort="opt")][:3] == [0, 3, 4]
    assert [t.number for t in select(results, states=["running", "pending"])] == [4, 5]
    assert [t.number for t in select(results, sort="number", top=2)] == [0, 1]
    with pytest.raises(DiagnosticError):
        select(results, sort="nope")


def test_rebuilt_study_in_memory_equals_the_exported_one(tmp_path: Path) -> None:
    with _state(tmp_path / "tunectl.db") as state:
        results = load_results(state, "experiment.e")
    memory = rebuild_study(results)
    url = f"sqlite:///{tmp_path / 'again.db'}"
    stored = export(results, url, "again", overwrite=True)
    assert [(t.state, t.value, t.params) for t in memory.trials] == [
        (t.state, t.value, t.params) for t in stored.trials
    ]


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("name", "render"),
    [("trials_table.txt", "render_table"), ("trials.csv", "render_csv")],
)
def test_golden_renderings(tmp_path: Path, name: str, render: str) -> None:
    """The human table and the CSV, byte for byte (regenerate with TUNECTL_GOLDEN=1)."""
    import os

    from tunectl.views import trials as view

    with _state(tmp_path / "tunectl.db") as state:
        results = load_results(state, "experiment.e")
    text = getattr(view, render)(results, select(results), now=BASE + 60)
    path = GOLDEN / name
    if os.environ.get("TUNECTL_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n")
    assert text.rstrip("\n") == path.read_text().rstrip("\n")
