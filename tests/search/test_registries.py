"""Tests for the registries of tunectl.search: adding an entry is the whole change.

A fake algorithm, early-stopping rule and parameter type are added to their registries, and
each validates, builds its Optuna object and runs in the engine with no other edit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tunectl.config.model import Experiment, Objective, TrialSpec
from tunectl.engine.search import SearchEngine, make_pruner, make_sampler
from tunectl.search.algorithms import ALGORITHMS, AlgorithmEntry
from tunectl.search.model import Algorithm, EarlyStopping, ParamSpec
from tunectl.search.params import PARAM_TYPES, ParamType
from tunectl.search.pruners import PRUNERS, PrunerEntry, validate_pruner
from tunectl.search.settings import Setting, whole
from tunectl.search.space import to_external, validate_param, validate_space

BUILT: list[dict] = []


def _build_fake(samplers, settings, seed, base_seed):
    BUILT.append(dict(settings))
    return samplers.RandomSampler(seed=seed)


FAKE = AlgorithmEntry(
    "fake",
    "RandomSampler under another name, for tests",
    _build_fake,
    {"seed": Setting(whole(0)), "width": Setting(whole(1), 3, "how wide")},
)


def experiment(algorithm: Algorithm, early: EarlyStopping | None = None, params=None):
    return Experiment(
        name="exp",
        algorithm=algorithm,
        objective=Objective("minimize", metric="loss"),
        params=tuple(params or (ParamSpec("x", "uniform", low=0, high=1),)),
        trial=TrialSpec("local", ()),
        early_stopping=early or EarlyStopping(),
    )


def test_a_new_algorithm_validates_builds_and_runs(monkeypatch):
    monkeypatch.setitem(ALGORITHMS, "fake", FAKE)
    params = [ParamSpec("x", "uniform", low=0, high=1)]
    assert validate_space(Algorithm("fake", (("seed", 1), ("width", 5))), params) == []
    [(_, sentence)] = validate_space(Algorithm("fake", (("widht", 5),)), params)
    assert '"widht" is not a setting of the "fake" algorithm. Did you mean "width"?' in sentence
    [(_, sentence)] = validate_space(Algorithm("fake", (("width", 0),)), params)
    assert "width of the" in sentence and "at least 1" in sentence

    BUILT.clear()
    sampler = make_sampler(Algorithm("fake", (("seed", 1),)), seed=3)
    assert type(sampler).__name__ == "RandomSampler"
    assert BUILT == [{"seed": 1, "width": 3}]  # the default filled in
    engine = SearchEngine(experiment(Algorithm("fake", (("seed", 1),))), [])
    first = engine.ask(0).params
    again = SearchEngine(experiment(Algorithm("fake", (("seed", 1),))), []).ask(0).params
    assert first == again and 0 <= first["x"] <= 1


def test_a_new_algorithm_is_accepted_by_validate(tmp_path):
    """The configuration's schema reads the registry: registering before tunectl loads a
    configuration is all it takes for `validate` to accept the name."""
    (tmp_path / "main.hcl").write_text(
        'experiment "e" {\n  algorithm "fake" {\n    width = 2\n  }\n'
        '  objective {\n    metric = "loss"\n    direction = "minimize"\n  }\n'
        '  max_trials = 2\n  param "x" {\n    type = "uniform"\n    low = 0\n    high = 1\n  }\n'
        '  trial {\n    command = "true"\n  }\n}\n'
    )
    code = (
        "import sys, tests.search.test_registries as t\n"
        "from tunectl.search.algorithms import ALGORITHMS\n"
        "ALGORITHMS['fake'] = t.FAKE\n"
        "from tunectl.config.load import load_config\n"
        "from tunectl.engine.search import SearchEngine\n"
        "exp = load_config(__import__('pathlib').Path(sys.argv[1])).experiments['e']\n"
        "print(exp.algorithm, SearchEngine(exp, []).ask(0).params)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Algorithm(name='fake', settings=(('width', 2),))" in proc.stdout


def test_a_new_pruner_validates_and_builds(monkeypatch):
    import optuna

    def build(pruners, s):
        return pruners.MedianPruner(n_warmup_steps=int(s["patience"]))

    entry = PrunerEntry("patient", "MedianPruner", build, {"patience": Setting(whole(0), 2)})
    monkeypatch.setitem(PRUNERS, "patient", entry)
    assert validate_pruner(EarlyStopping("patient", (("patience", 4),))) == []
    [sentence] = validate_pruner(EarlyStopping("patient", (("patience", -1),)))
    assert 'patience of early_stopping "patient" must be a whole number' in sentence
    pruner = make_pruner(EarlyStopping("patient"))
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    engine = SearchEngine(experiment(Algorithm("random"), EarlyStopping("patient")), [])
    engine.ask(0)
    assert engine.report(0, 1, 0.5) is False


def test_a_new_parameter_type_validates_and_runs(monkeypatch):
    doubled = ParamType(
        "doubled",
        "an integer from low to high, times two",
        ("low", "high"),
        lambda p, discrete: (
            "int",
            {"low": int(p.low), "high": int(p.high), "step": 1, "log": False},
        ),
        lambda p, x: 2 * int(x),
        count=lambda p: int(p.high) - int(p.low) + 1,
        controller=True,
    )
    monkeypatch.setitem(PARAM_TYPES, "doubled", doubled)
    p = ParamSpec("d", "doubled", low=1, high=3)
    assert validate_param(p) == []
    assert validate_param(ParamSpec("d", "doubled", low=1)) == [
        'type "doubled" needs high: add it.'
    ]
    assert to_external(p, 2) == 4
    engine = SearchEngine(experiment(Algorithm("grid", (("seed", 1),)), params=[p]), [])
    seen = {engine.ask(n).params["d"] for n in range(3)}
    assert seen == {2, 4, 6} and engine.exhausted()


@pytest.mark.parametrize(
    ("registry", "section"),
    [(ALGORITHMS, "algorithm"), (PRUNERS, "early_stopping")],
)
def test_every_entry_is_documented(registry, section):
    """docs/language.md lists every entry with its documentation line."""
    text = (Path(REPO) / "docs" / "language.md").read_text()
    for name, entry in registry.items():
        assert f"| `{name}` | {entry.doc} |" in text, (section, name)
