"""tunectl's `nni` module, run as a trial runs it: a fresh interpreter with tunectl and
tunectl/trialpath on its path, the parameters in TUNECTL_PARAMS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tunectl import trialpath

ROOT = Path(trialpath.DIRECTORY).parents[1]


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TUNECTL_", "NNI_"))}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), trialpath.DIRECTORY])
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )


def test_parameters_and_results_speak_the_report_protocol() -> None:
    code = (
        "import nni\n"
        "p = nni.get_next_parameter()\n"
        "print(sorted(p.items()))\n"
        "nni.report_intermediate_result(0.5)\n"
        "nni.report_intermediate_result({'default': 0.6, 'loss': 1, 'note': 'x'})\n"
        "nni.report_final_result(p['lr'] * 10)\n"
        "print(nni.get_trial_id(), nni.get_experiment_id(), nni.get_sequence_id())\n"
        "print(nni.get_current_parameter('lr'), nni.__file__)\n"
    )
    r = run(
        code,
        TUNECTL_PARAMS=json.dumps({"lr": 0.01, "opt": "sgd"}),
        NNI_TRIAL_JOB_ID="e-g1-t3",
        NNI_EXP_ID="e",
        NNI_TRIAL_SEQ_ID="3",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "[('lr', 0.01), ('opt', 'sgd')]"
    assert lines[1] == '@tunectl {"metrics":{"default":0.5},"step":1}'
    assert lines[2] == '@tunectl {"metrics":{"default":0.6,"loss":1.0},"step":2}'
    assert lines[3] == '@tunectl {"metrics":{"default":0.1},"step":null}'
    assert lines[4] == "e-g1-t3 e 3"
    assert lines[5].startswith("0.01 ") and "trialpath" in lines[5]


def test_nested_choices_are_nested_back() -> None:
    r = run(
        "import nni; print(nni.get_next_parameter())",
        TUNECTL_PARAMS=json.dumps({"opt": "sgd", "m": 0.9, "lr": 1}),
        TUNECTL_NNI_NESTED=json.dumps({"opt": {"momentum": "m"}}),
    )
    assert r.stdout.strip() == "{'opt': {'_name': 'sgd', 'momentum': 0.9}, 'lr': 1}", r.stderr


def test_without_parameters_it_says_what_to_set() -> None:
    r = run("import nni; print(nni.get_next_parameter())")
    assert r.returncode == 0 and r.stdout.strip() == "{}"
    assert "TUNECTL_PARAMS is not set" in r.stderr


def test_bad_results_raise_value_errors() -> None:
    r = run("import nni; nni.report_final_result({'loss': 1})")
    assert r.returncode == 1 and "must hold a 'default' entry" in r.stderr
    r = run("import nni; nni.report_final_result(float('nan'))")
    assert r.returncode == 1 and "finite number" in r.stderr


def test_merge_parameter_casts_to_the_argparse_types() -> None:
    code = (
        "import argparse\n"
        "from nni.utils import merge_parameter\n"
        "ns = argparse.Namespace(lr=0.1, epochs=3, name='a')\n"
        "print(vars(merge_parameter(ns, {'lr': 1, 'epochs': 5})))\n"
        "merge_parameter(ns, {'nope': 1})\n"
    )
    r = run(code)
    assert r.stdout.strip() == "{'lr': 1.0, 'epochs': 5, 'name': 'a'}"
    assert "Key 'nope' not found" in r.stderr
