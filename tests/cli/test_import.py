"""`tunectl import nni` and `tunectl import pai` from the CLI, on NNI's and PAI AutoML's
documented example configurations (tests/importers/fixtures): the HCL they write is
formatted, validates and plans; the NNI one applies with NNI's trial script unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "importers" / "fixtures"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_nni_mnist_imports_validates_plans_and_applies_with_the_nni_trial_unchanged(
    tmp_path: Path,
) -> None:
    work = copy("nni-mnist", tmp_path)
    trial_code = (work / "mnist.py").read_text()
    r = run_cli(work, "import", "nni", "config.yml")
    assert r.code == 0, r.text
    assert "Wrote main.hcl." in r.out
    assert "Everything was carried over." in r.out
    hcl = (work / "main.hcl").read_text()
    assert 'experiment "nni-mnist"' in hcl
    assert 'algorithm "tpe" {}' in hcl
    assert 'TUNECTL_PARAMS   = "${trial.params_json}"' in hcl
    assert run_cli(work, "fmt", "--check").code == 0
    r = run_cli(work, "validate")
    assert r.code == 0 and "Success! The configuration is valid." in r.out, r.text
    r = run_cli(work, "plan")
    assert r.code == 0, r.text
    assert "will run up to 10 trials, 1 at a time" in r.out
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in r.out

    r = run_cli(work, "apply", "--auto-approve", timeout=300)
    assert r.code == 0, r.text
    assert "succeeded: reached max_trials" in r.out
    assert (work / "mnist.py").read_text() == trial_code
    r = run_cli(work, "show", "experiment.nni-mnist", "--json")
    assert r.code == 0, r.text
    trials = json.loads(r.out)
    assert len(trials) == 10 and all(t["status"] == "complete" for t in trials)
    # NNI's three epochs are steps 1-3 of the learning curve; the final result is the value
    r = run_cli(work, "show", "experiment.nni-mnist.trial[0]", "--json")
    metrics = json.loads(r.out)["metrics"]
    assert [(m["name"], m["step"]) for m in metrics] == [
        ("default", 1),
        ("default", 2),
        ("default", 3),
        ("default", None),
    ]
    logs = run_cli(work, "logs", "experiment.nni-mnist", "--trial", "0", "--all")
    assert '@tunectl {"metrics":{"default":' in logs.out
    assert "'lr':" in logs.out  # the script printed its merged parameters


def test_nni_reference_config_json_with_a_nested_choice(tmp_path: Path) -> None:
    work = copy("nni-reference", tmp_path)
    r = run_cli(work, "import", "nni", "config.json", "-o", "hpo.hcl")
    assert r.code == 0, r.text
    assert "Wrote hpo.hcl." in r.out
    assert "tuner.classArgs.tpe_args.constant_liar_type" in r.out
    assert "tuner.classArgs.tpe_args.prior_weight: 0 is not prior_weight here" in r.out
    assert "searchSpace.optimizer: a nested choice" in r.out
    hcl = (work / "hpo.hcl").read_text()
    assert 'early_stopping "median" {\n    start_step = 5\n  }' in hcl
    assert 'when = { optimizer = "sgd" }' in hcl
    assert run_cli(work, "fmt", "--check").code == 0
    assert run_cli(work, "validate").code == 0
    r = run_cli(work, "plan")
    assert r.code == 0 and "will run up to 100 trials, 2 at a time" in r.out, r.text


@pytest.mark.parametrize(
    ("fixture", "expect"),
    [
        (
            "pai-maxcompute",
            [
                'provider "maxcompute" {',
                'pai = "-name ps_smart -project foo"',
                'sql = "INSERT OVERWRITE TABLE my_table;"',
                "sql = \"select * from my_metrics where pt='${experiment.name}_${trial.id}';\"",
                "metrics   = { auc = 0.25, precision = 0.25, recall = 0.5 }",
                'early_stopping "pai" {',
            ],
        ),
        (
            "pai-dlc",
            [
                'provider "dlc" {',
                'region       = "cn-shanghai"',
                'workspace_id = "255705"',
                'image        = "registry-vpc.cn-shanghai.aliyuncs.com/mybigpai/nni:0.0.3"',
                'worker       = { count = 1, ecs_spec = "ecs.gn6v-c10g1.20xlarge" }',
                'data_sources = [{ id = "d-m7rsmu350pf2kz3ue3" }]',
                "--data.imgs_per_gpu ${param.batch_size} --optimizer.lr ${param.lr}",
                'pattern = "validation: accuracy=([0-9\\\\.]+)"',
            ],
        ),
    ],
)
def test_pai_examples_import_validate_and_plan(
    tmp_path: Path, fixture: str, expect: list[str]
) -> None:
    work = copy(fixture, tmp_path)
    r = run_cli(work, "import", "pai", "experiment.json")
    assert r.code == 0, r.text
    assert "credentials are never written to HCL" in r.out
    hcl = (work / "main.hcl").read_text()
    for line in expect:
        assert line in hcl, line
    assert "AccessKey" not in hcl and "access_key" not in hcl
    assert run_cli(work, "fmt", "--check").code == 0
    r = run_cli(work, "validate")
    assert r.code == 0 and "Success!" in r.out, r.text
    r = run_cli(work, "plan")
    assert r.code == 0 and "Plan: 1 to add, 0 to change, 0 to destroy." in r.out, r.text


def test_out_dash_prints_the_hcl_and_reports_on_stderr(tmp_path: Path) -> None:
    work = copy("pai-maxcompute", tmp_path)
    r = run_cli(work, "import", "pai", "experiment.json", "-o", "-")
    assert r.code == 0, r.text
    assert r.out.startswith("# Imported from experiment.json")
    assert "odps_config.access_key" in r.err
    assert not (work / "main.hcl").exists()


def _bad(tmp_path: Path, files: dict[str, str], *args: str) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    r = run_cli(tmp_path, "import", *args)
    assert r.code == 1, r.text
    assert "Traceback" not in r.text and "internal error" not in r.text, r.text
    assert r.err.lstrip().startswith("Error: "), r.err
    assert not (tmp_path / "main.hcl").exists()
    return r.err


CONFIG = "searchSpaceFile: space.json\ntrialCommand: python3 t.py\nmaxTrialNumber: 2\n"
SPACE = '{"lr": {"_type": "uniform", "_value": [0, 1]}}'


def test_unknown_tuner(tmp_path: Path) -> None:
    err = _bad(
        tmp_path,
        {"config.yml": CONFIG + "tuner:\n  name: Hyperopt2\n", "space.json": SPACE},
        "nni",
        "config.yml",
    )
    assert "Error: Unknown tuner" in err
    assert 'tuner.name is "Hyperopt2"' in err and "TPE, Random, GridSearch, Evolution, GP" in err


def test_tuner_without_an_equivalent(tmp_path: Path) -> None:
    err = _bad(
        tmp_path,
        {"config.yml": CONFIG + "tuner:\n  name: SMAC\n", "space.json": SPACE},
        "nni",
        "config.yml",
    )
    assert "Error: Unsupported tuner" in err and "Optuna has no SMAC sampler" in err


def test_malformed_yaml(tmp_path: Path) -> None:
    err = _bad(
        tmp_path, {"config.yml": "tuner:\n  name: [TPE\ntrialCommand: x\n"}, "nni", "config.yml"
    )
    assert "Error: Malformed NNI configuration" in err
    assert "config.yml is not valid YAML" in err and "line " in err


def test_missing_search_space_file(tmp_path: Path) -> None:
    err = _bad(tmp_path, {"config.yml": CONFIG + "tuner:\n  name: TPE\n"}, "nni", "config.yml")
    assert "Error: Missing search space file" in err
    assert "space.json does not exist" in err


def test_missing_configuration_file(tmp_path: Path) -> None:
    err = _bad(tmp_path, {}, "pai", "nowhere.json")
    assert "Error: Missing PAI AutoML configuration" in err


def test_malformed_pai_json_and_unknown_parameter_type(tmp_path: Path) -> None:
    err = _bad(tmp_path, {"e.json": '{"yml_config": {'}, "pai", "e.json")
    assert "Error: Malformed PAI AutoML configuration" in err and "line 1" in err
    bad = {
        "platform_config": {"name": "LOCAL", "cmd": ["python t.py --lr ${lr}"]},
        "search_space": {"${lr}": {"_type": "qrandint", "_value": [0, 1]}},
    }
    err = _bad(tmp_path, {"f.json": json.dumps(bad)}, "pai", "f.json")
    assert "Error: Unknown parameter type" in err and "'qrandint'" in err


def test_a_section_that_is_not_an_object_is_a_clear_error(tmp_path: Path) -> None:
    bad = {
        "platform_config": {"name": "DLC", "cmd": ["dlc submit pytorchjob --command x"]},
        "dlc_config": "abc",
        "search_space": {"${lr}": {"_type": "uniform", "_value": [0, 1]}},
    }
    err = _bad(tmp_path, {"g.json": json.dumps(bad)}, "pai", "g.json")
    assert "Error: Malformed PAI AutoML configuration" in err
    assert "dlc_config must be an object" in err and "Traceback" not in err


def test_an_existing_output_is_not_overwritten_without_force(tmp_path: Path) -> None:
    work = copy("nni-mnist", tmp_path)
    (work / "main.hcl").write_text("# mine\n")
    r = run_cli(work, "import", "nni", "config.yml")
    assert r.code == 1 and "Error: Output file exists" in r.err, r.text
    assert (work / "main.hcl").read_text() == "# mine\n"
    r = run_cli(work, "import", "nni", "config.yml", "--force")
    assert r.code == 0, r.text


def test_nni_dlc_training_service_imports_to_the_dlc_provider(tmp_path: Path) -> None:
    work = copy("nni-dlc", tmp_path)
    r = run_cli(work, "import", "nni", "config.yml")
    assert r.code == 0, r.text
    assert "trainingService.accessKeySecret: credentials are never written" in r.out
    hcl = " ".join((work / "main.hcl").read_text().split())
    assert 'provider = "dlc"' in hcl and 'job_type = "PyTorchJob"' in hcl
    assert 'worker = { count = 1, ecs_spec = "ecs.c6.large" }' in hcl
    assert 'mount_path = "/root/data/"' in hcl
    assert "ak_key" not in hcl
    assert run_cli(work, "fmt", "--check").code == 0
    assert run_cli(work, "validate").code == 0
    r = run_cli(work, "plan")
    assert r.code == 0 and "Plan: 1 to add" in r.out, r.text


def test_pai_easyrec_example_notes_what_the_trial_cannot_get(tmp_path: Path) -> None:
    work = copy("pai-easyrec", tmp_path)
    r = run_cli(work, "import", "pai", "experiment.json")
    assert r.code == 0, r.text
    assert "search_space.${embedding_dim}: no command uses it" in r.out
    assert 'event files on OSS are read through storage "s3" (bucket automl-test)' in r.out
    assert "params_config: none" in r.out
    hcl = (work / "main.hcl").read_text()
    assert "-Dmodel_dir=oss://automl-test/easyrec/model/model_${experiment.name}_${trial.id}" in hcl
    assert (
        'logdir = "oss://automl-test/easyrec/model/model_${experiment.name}_${trial.id}/eval_val/"'
        in hcl
    )
    assert 'endpoint = "https://oss-cn-beijing.aliyuncs.com"' in hcl  # the region of odps_config
    assert run_cli(work, "fmt", "--check").code == 0
    assert run_cli(work, "validate").code == 0
