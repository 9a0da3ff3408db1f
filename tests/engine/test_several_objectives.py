"""Several objectives below the CLI: each trial's vector of values (`engine.objective`),
the Pareto front against Optuna's own (`engine.pareto`), `keep` on the front, the search
engine telling and rebuilding a multi-objective study, and the state's migration."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import optuna
import pytest

from tunectl.config.model import Experiment, Objective, TrialSpec
from tunectl.engine.objective import combine, metric_values, objective_values
from tunectl.engine.pareto import dominates, kept_on_front, pareto_front, ranked
from tunectl.engine.search import PastTrial, SearchEngine
from tunectl.search.model import Algorithm, ParamSpec
from tunectl.states import State, TrialRecord, schema

TWO = Objective(
    "maximize", reduce="best", objectives=(("acc", "maximize"), ("latency", "minimize"))
)


def test_each_objective_is_reduced_toward_its_own_direction() -> None:
    series = {
        "acc": [(1, 0.5), (2, 0.9), (3, 0.8)],
        "latency": [(1, 30.0), (2, 10.0), (3, 20.0)],
        "loss": [(1, 1.0), (2, 0.5)],
    }
    assert objective_values(series, TWO) == [0.9, 10.0]
    final = Objective("maximize", objectives=TWO.objectives)
    assert objective_values(series, final) == [0.8, 20.0]
    assert metric_values(series, TWO)["latency"] == 10.0
    # No single value and no curve (early stopping is refused for several objectives).
    assert combine(series, TWO) == (None, [])
    # A missing objective metric: no values (the trial fails, saying which).
    assert objective_values({"acc": [(1, 0.5)]}, TWO) is None
    assert objective_values(series, Objective("maximize", metric="acc")) is None


def test_each_objective_is_reduced_across_sources() -> None:
    sources = Objective("maximize", sources_reduce="avg", objectives=TWO.objectives)
    series = {
        "fold1/acc": [(None, 0.8)],
        "fold1/latency": [(None, 10.0)],
        "fold2/acc": [(None, 0.6)],
        "fold2/latency": [(None, 30.0)],
    }
    assert objective_values(series, sources) == [pytest.approx(0.7), pytest.approx(20.0)]


@pytest.mark.parametrize("seed", range(20))
def test_the_front_is_optunas(seed: int) -> None:
    rng = random.Random(seed)
    directions = rng.choice(
        [["maximize", "minimize"], ["minimize", "minimize", "maximize"], ["maximize"] * 2]
    )
    # Few distinct values, so ties and duplicates happen.
    points = {
        n: [float(rng.randint(0, 4)) for _ in directions] for n in range(rng.randint(1, 25))
    }
    study = optuna.create_study(directions=directions)
    for n in sorted(points):
        study.add_trial(optuna.trial.create_trial(values=points[n], user_attrs={"n": n}))
    expected = sorted(t.user_attrs["n"] for t in study.best_trials)
    assert pareto_front(points, directions) == expected
    naive = [
        n
        for n in sorted(points)
        if not any(dominates(points[m], points[n], directions) for m in points if m != n)
    ]
    assert naive == expected
    order = ranked(points, directions)
    assert sorted(order) == sorted(points) and set(order[: len(expected)]) == set(expected)


def test_keep_retains_the_front() -> None:
    directions = ["maximize", "minimize"]
    points = {0: [0.9, 10.0], 1: [0.8, 5.0], 2: [0.7, 20.0], 3: [0.85, 8.0], 4: [0.6, 30.0]}
    assert kept_on_front("all", points, directions) is None
    assert kept_on_front("best", points, directions) == {0, 1, 3}
    # Front by front, each by its first objective: 0, 3, 1, then 2, then 4.
    assert ranked(points, directions) == [0, 3, 1, 2, 4]
    assert kept_on_front(4, points, directions) == {0, 1, 2, 3}


def experiment(algorithm: str, **settings: object) -> Experiment:
    return Experiment(
        name="mo",
        algorithm=Algorithm(algorithm, tuple(sorted({"seed": 5, **settings}.items()))),
        objective=TWO,
        params=(ParamSpec("x", "uniform", low=0.0, high=1.0),),
        trial=TrialSpec(provider="local", tasks=()),
    )


@pytest.mark.parametrize(
    ("algorithm", "settings"),
    [
        ("tpe", {"n_startup_trials": 2}),
        ("evolution", {"population_size": 4}),
        ("nsga3", {"population_size": 4}),
        ("random", {}),
    ],
)
def test_a_rebuilt_study_asks_what_the_live_one_asks(algorithm: str, settings: dict) -> None:
    exp = experiment(algorithm, **settings)
    live = SearchEngine(exp, [])
    history: list[PastTrial] = []
    asked = []
    for n in range(10):
        rebuilt = SearchEngine(exp, history)
        suggestion = live.ask(n)
        assert rebuilt.ask(n).params == suggestion.params
        x = suggestion.params["x"]
        values = [1 - (x - 0.6) ** 2, 10 * x]
        state = "failed" if n == 3 else "complete"
        live.tell(n, state, None, values)
        history.append(
            PastTrial(
                n, state, suggestion.internal, None, (), live.system_attrs(n),
                values if state == "complete" else [],
            )
        )  # fmt: skip
        asked.append(x)
    assert len(set(asked)) == 10


def test_the_migration_adds_empty_values_to_older_trials(tmp_path: Path) -> None:
    path = tmp_path / "tunectl.db"
    version = _version_before_objective_values(tmp_path / "probe.db")
    conn = sqlite3.connect(path)
    conn.execute(schema.META_DDL)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", 0), ("lineage", "l"), ("serial", 1), ("config_id", "c")],
    )
    for migration in schema.MIGRATIONS[:version]:
        migration(conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.execute(
        "INSERT INTO experiments (name, generation, config, config_hash, status, stop_reason,"
        " created_at) VALUES ('old', 1, '{}', '', 'succeeded', '', 1.0)"
    )
    conn.execute(
        "INSERT INTO trials (experiment, generation, number, id, params, status, value,"
        ' "values", attempt, task_index, created_at, message, internal, system_attrs)'
        " VALUES ('old', 1, 0, 'old-g1-t0', '{}', 'complete', 0.5, '{}', 0, 0, 1.0, '', '{}',"
        " '{}')"
    )
    conn.commit()
    conn.close()
    with State.open(path, create=False, config_id="c") as state:
        (trial,) = state.list_trials("old")
        assert trial.value == 0.5 and trial.objective_values == []
        state.add_trial(
            TrialRecord("old", 1, "old-g1-t1", {}, objective_values=[0.9, 12.0], generation=1)
        )
        assert state.list_trials("old")[1].objective_values == [0.9, 12.0]


def _version_before_objective_values(path: Path) -> int:
    """The schema version whose trials lack `objective_values` (migrations after it may
    come from elsewhere, so it is found, not assumed)."""
    conn = sqlite3.connect(path)
    conn.execute(schema.META_DDL)
    for version, migration in enumerate(schema.MIGRATIONS):
        migration(conn)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(trials)")}
        if "objective_values" in columns:
            conn.close()
            return version
    raise AssertionError("no migration adds trials.objective_values")
