"""The search space and tuner mapping: every NNI type, names, nested choices, tuner and
assessor arguments, NNI's v1 format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunectl.diags import DiagnosticError
from tunectl.importers import import_nni
from tunectl.importers.hclwriter import render
from tunectl.importers.model import Notes
from tunectl.importers.space import SpaceReader, param_name
from tunectl.importers.tuners import tuner

SPACE = {
    "a": {"_type": "choice", "_value": [1, "x", 2.5]},
    "b": {"_type": "randint", "_value": [1, 6]},
    "c": {"_type": "uniform", "_value": [0, 1]},
    "d": {"_type": "quniform", "_value": [0, 10, 2]},
    "e": {"_type": "loguniform", "_value": [1e-5, 0.1]},
    "f": {"_type": "qloguniform", "_value": [1, 100, 1]},
    "g": {"_type": "normal", "_value": [0, 1]},
    "h": {"_type": "qnormal", "_value": [0, 1, 0.5]},
    "i": {"_type": "lognormal", "_value": [0, 1]},
    "j": {"_type": "qlognormal", "_value": [0, 1, 1]},
}


def write(tmp_path: Path, config: dict, space: dict | None = None) -> Path:
    if space is not None:
        (tmp_path / "space.json").write_text(json.dumps(space))
        config = {"searchSpaceFile": "space.json", **config}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"trialCommand": "python3 t.py", "maxTrialNumber": 3, **config}))
    return path


def test_every_nni_type_becomes_a_param_block(tmp_path: Path) -> None:
    text = import_nni(write(tmp_path, {"tuner": {"name": "Random"}}, SPACE), tmp_path).text
    assert 'param "a" {\n    type   = "choice"\n    values = [1, "x", 2.5]\n  }' in text
    assert (
        'param "d" {\n    type = "quniform"\n    low  = 0\n    high = 10\n    q    = 2\n  }' in text
    )
    assert (
        'param "j" {\n    type  = "qlognormal"\n    mu    = 0\n    sigma = 1\n    q     = 1\n  }'
        in text
    )
    assert 'algorithm "random" {}' in text


def test_names_placeholders_and_renames() -> None:
    assert param_name("${lr}") == "lr"
    assert param_name("conv size") == "conv_size"
    assert param_name("1st") == "p_1st"
    notes = Notes()
    reader = SpaceReader(Path("s.json"), notes, "searchSpace")
    reader.read({"a b": SPACE["c"], "a_b": SPACE["c"], "${lr}": SPACE["e"]})
    assert reader.names == {"a b": "a_b_2", "a_b": "a_b", "${lr}": "lr"}
    assert [n.source for n in notes] == ["searchSpace.a b"]


def test_nested_choice_records_how_to_nest_back() -> None:
    reader = SpaceReader(Path("s.json"), Notes(), "searchSpace")
    blocks = reader.read(
        {
            "opt": {
                "_type": "choice",
                "_value": [{"_name": "sgd", "m": SPACE["c"]}, {"_name": "adam"}],
            }
        }
    )
    assert [b.labels for b in blocks] == [("opt",), ("m",)]
    assert reader.nested == {"opt": {"m": "m"}}
    assert ("attr", ("when", {"opt": "sgd"})) in blocks[1].items


@pytest.mark.parametrize(
    ("spec", "summary"),
    [
        ({"_type": "uniform", "_value": [0]}, "Invalid search space"),
        ({"_type": "uniform"}, "Invalid search space"),
        ({"_type": "choice", "_value": []}, "Invalid search space"),
        ({"_type": "choice", "_value": [{"_name": "a"}, 3]}, "Invalid search space"),
        ({"_type": "mutable_layer", "_value": {}}, "Unknown parameter type"),
        ({"_type": "uniform", "_value": [0, float("inf")]}, "Invalid search space"),
        ({"_type": "choice", "_value": [1, float("nan")]}, "Invalid search space"),
    ],
)
def test_malformed_search_spaces(spec: dict, summary: str) -> None:
    with pytest.raises(DiagnosticError) as caught:
        SpaceReader(Path("s.json"), Notes(), "searchSpace").read({"p": spec})
    assert caught.value.diags[0].summary == summary


def test_tuner_arguments_map_or_are_noted(tmp_path: Path) -> None:
    tuner = {
        "name": "GPTuner",
        "classArgs": {"optimize_mode": "minimize", "cold_start_num": 5, "utility": "ei"},
    }
    result = import_nni(write(tmp_path, {"tuner": tuner}, SPACE), tmp_path)
    assert 'algorithm "gp" {\n    n_startup_trials = 5\n  }' in result.text
    assert 'direction = "minimize"' in result.text
    notes = {n.source: n.why for n in result.notes}
    assert "GPSampler" in notes["tuner.classArgs.utility"]
    evolution = {
        "name": "Evolution",
        "classArgs": {"population_size": 1, "optimize_mode": "maximize"},
    }
    result = import_nni(write(tmp_path, {"tuner": evolution}, SPACE), tmp_path)
    assert "population_size" not in result.text
    assert (
        "at least 2" in {n.source: n.why for n in result.notes}["tuner.classArgs.population_size"]
    )


def test_tpe_without_optimize_mode_is_nni_s_minimize_with_a_note(tmp_path: Path) -> None:
    result = import_nni(write(tmp_path, {"tuner": {"name": "TPE"}}, SPACE), tmp_path)
    assert 'direction = "minimize"' in result.text
    assert any(n.source == "tuner.classArgs.optimize_mode" for n in result.notes)


def test_pai_assessor_and_curvefitting(tmp_path: Path) -> None:
    tuner = {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}
    pai = {"name": "PAIAssessor", "classArgs": {"start_step": 2, "patience": 3, "platform": "DLC"}}
    result = import_nni(write(tmp_path, {"tuner": tuner, "assessor": pai}, SPACE), tmp_path)
    assert 'early_stopping "pai" {\n    start_step = 2\n    patience   = 3\n  }' in result.text
    curve = {"name": "Curvefitting", "classArgs": {"epoch_num": 20}}
    result = import_nni(write(tmp_path, {"tuner": tuner, "assessor": curve}, SPACE), tmp_path)
    assert "early_stopping" not in result.text
    assert any(n.source == "assessor" for n in result.notes)


def test_nni_v1_format_is_read_as_v2(tmp_path: Path) -> None:
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    (tmp_path / "config.yml").write_text(
        "authorName: default\nexperimentName: example_mnist\ntrialConcurrency: 1\n"
        "maxExecDuration: 1h\nmaxTrialNum: 10\ntrainingServicePlatform: local\n"
        "searchSpacePath: space.json\nuseAnnotation: false\n"
        "tuner:\n  builtinTunerName: TPE\n  classArgs:\n    optimize_mode: maximize\n"
        "trial:\n  command: python3 mnist.py\n  codeDir: .\n  gpuNum: 0\n"
    )
    result = import_nni(tmp_path / "config.yml", tmp_path)
    assert 'experiment "example_mnist"' in result.text
    assert 'max_duration   = "1h"' in result.text
    assert 'command  = "python3 mnist.py"' in result.text
    assert [n.source for n in result.notes] == ["(file)"]


def test_workdir_is_the_trial_code_directory_relative_to_the_output(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    path = write(tmp_path, {"trialCodeDirectory": "code", "tuner": {"name": "TPE"}}, SPACE)
    out = tmp_path / "hcl"
    assert 'workdir  = "../code"' in import_nni(path, out).text


def test_the_assessor_s_optimize_mode_gives_the_direction(tmp_path: Path) -> None:
    assessor = {"name": "Medianstop", "classArgs": {"optimize_mode": "maximize"}}
    config = {"tuner": {"name": "TPE"}, "assessor": assessor}
    result = import_nni(write(tmp_path, config, SPACE), tmp_path)
    assert 'direction = "maximize"' in result.text
    assert not any("optimize_mode" in n.source for n in result.notes)


def test_durations_in_nni_forms(tmp_path: Path) -> None:
    config = {"tuner": {"name": "TPE"}, "maxExperimentDuration": 90, "maxTrialDuration": "0.5h"}
    text = " ".join(import_nni(write(tmp_path, config, SPACE), tmp_path).text.split())
    assert 'max_duration = "90s"' in text and 'timeout = "0.5h"' in text
    with pytest.raises(DiagnosticError) as caught:
        import_nni(write(tmp_path, {**config, "maxTrialDuration": "soon"}, SPACE), tmp_path)
    assert caught.value.diags[0].summary == "Invalid duration"


def test_nni_pbt_tuner_becomes_algorithm_pbt() -> None:
    notes = Notes()
    block, direction = tuner(
        {
            "name": "PBTTuner",
            "classArgs": {
                "optimize_mode": "maximize",
                "population_size": 8,
                "fraction": 0.25,
                "factors": [0.8, 1.2],
                "all_checkpoint_dir": "/tmp/ckpt",
            },
        },
        "tuner",
        notes,
        "classArgs",
    )
    assert block.labels == ("pbt",) and direction == "maximize"
    text = render([block], [])
    assert "population = 8" in text and "quantile   = 0.25" in text
    why = {n.source: n.why for n in notes}
    assert "0.8 or 1.2" in why["tuner.classArgs.factors"]
    assert "parent_model_dir" in why["tuner.classArgs.all_checkpoint_dir"]
    assert "multiple of population" in why["tuner.name"]
