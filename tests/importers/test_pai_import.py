"""`import_pai` beyond the documented examples: sections as JSON or YAML text, local
commands with stdout regexes, several DLC jobs, metric types tunectl reads differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunectl.diags import DiagnosticError
from tunectl.importers import import_pai

SPACE = {"${lr}": {"_type": "loguniform", "_value": [0.001, 0.1]}}


def run(tmp_path: Path, config: dict) -> tuple[str, dict[str, str]]:
    path = tmp_path / "e.json"
    path.write_text(json.dumps(config))
    result = import_pai(path, tmp_path)
    return result.text, {n.source: n.why for n in result.notes}


def test_sections_as_text_local_commands_and_stdout_regexes(tmp_path: Path) -> None:
    text, notes = run(
        tmp_path,
        {
            "yml_config": "experiment_name: local_hpo\nmax_trial_number: 3\n"
            "tuner:\n  name: Random\n  class_args: {optimize_mode: minimize}\n",
            "platform_config": json.dumps(
                {
                    "name": "LOCAL",
                    "cmd1": "python prep.py --out ${NNI_OUTPUT_DIR}",
                    "cmd2": "python train.py --lr ${lr} ${tuner_params_list}",
                    "resume": "1",
                }
            ),
            "metric_config": {
                "metric_type": "stdout",
                "metric_source": "cmd2",
                "final_mode": "avg",
                "metric_dict": "{'loss=([0-9.]+)': 1, 'val acc: ([0-9.]+)': -0.5}",
            },
            "search_space": json.dumps(SPACE),
            "schedule_config": {"day": "weekend", "start_time": "22:00", "end_time": "06:00"},
        },
    )
    assert 'experiment "local_hpo"' in text
    assert 'task "cmd1" {\n      command = "python prep.py --out ${trial.model_dir}"' in text
    assert 'command = "python train.py --lr ${param.lr} $${tuner_params_list}"' in text
    assert "retries  = 1" in text
    assert "metrics   = { acc = -0.5, loss = 1 }" in text
    assert 'direction = "minimize"' in text and 'reduce    = "avg"' in text
    assert 'pattern = "val acc: ([0-9.]+)"\n        name    = "acc"' in text
    assert "schedule_config" in notes and "platform_config.cmd2" in notes


def test_several_dlc_jobs_share_the_trial_settings(tmp_path: Path) -> None:
    job = "dlc submit pytorch --worker_image=img:1 --workers=1 --worker_spec=ecs.c6.large"
    text, _ = run(
        tmp_path,
        {
            "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
            "platform_config": {
                "name": "DLC",
                "cmd": [f"{job} --command='python a.py'", f"{job} --priority=3 --command='b'"],
            },
            "metric_config": {"metric_type": "summary", "metric_source": ["oss://b/x/"]},
            "search_space": SPACE,
        },
    )
    trial = text[text.index("  trial {") :]
    assert trial.index('image    = "img:1"') < trial.index('task "cmd1"')
    assert (
        'task "cmd2" {\n      command  = "b"\n      priority = 3\n\n      metrics "tensorboard"'
        in trial
    )
    assert 'region = "cn-hangzhou"' in text


def test_table_and_json_metrics(tmp_path: Path) -> None:
    base = {
        "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
        "platform_config": {"name": "MaxCompute", "cmd": ["PAI -name=x -Dlr='${lr}'"]},
        "odps_config": {"project_name": "p", "end_point": "http://e/api"},
        "search_space": SPACE,
    }
    metric = {
        "metric_type": "json",
        "metric_source": ["m_${trial_id}.jsonl"],
        "metric_dict": {"auc": 1},
    }
    text, _ = run(tmp_path, {**base, "metric_config": metric})
    assert 'pai      = "-name x -Dlr=${param.lr}"' in text
    assert 'path = "m_${trial.id}.jsonl"' in text and 'metric    = "auc"' in text


def test_summary_metrics_read_event_files_on_oss_through_a_storage_block(tmp_path: Path) -> None:
    config = {
        "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
        "platform_config": {
            "name": "DLC",
            "cmd1": "dlc submit pytorch --worker_image=i:1 "
            "--workers=1 --worker_spec=ecs.c6.large --command='python t.py'",
        },
        "dlc_config": {"region": "cn-shanghai", "workspace_id": "12"},
        "oss_config": {"endpoint": "oss-cn-shanghai-internal.aliyuncs.com", "accessKeyID": "k"},
        "metric_config": {
            "metric_type": "summary",
            "metric_source": ["oss://bkt/runs/${exp_id}_${trial_id}/eval/"],
            "metric_dict": {"val/auc": 0.7, "val/acc": 0.3},
        },
        "search_space": SPACE,
    }
    text, notes = run(tmp_path, config)
    assert 'metrics "tensorboard" {\n' in text
    assert 'logdir = "oss://bkt/runs/${experiment.name}_${trial.id}/eval/"' in text
    assert "tag =" not in text  # two tags: every scalar is read, each named by its tag
    assert 'metrics   = { "val/acc" = 0.3, "val/auc" = 0.7 }' in text
    assert 'storage "s3" {\n  bucket   = "bkt"\n' in text
    assert 'endpoint = "https://oss-cn-shanghai-internal.aliyuncs.com"' in text
    assert 'region   = "cn-shanghai"' in text
    assert "AWS_ACCESS_KEY_ID" in notes["metric_config.metric_source"]
    assert "oss_config.accessKeyID" in notes and '"k"' not in text
    # One tag, a local directory: the tag is the objective's metric, no storage block.
    config["metric_config"] = {
        "metric_type": "summary",
        "metric_source": "runs/${trial_id}",
        "metric_dict": {"auc": 1},
    }
    text, _ = run(tmp_path, config)
    assert 'logdir = "runs/${trial.id}"\n      tag    = "auc"' in text
    assert 'metric    = "auc"' in text and "storage" not in text


def test_several_task_sources_are_reduced_across(tmp_path: Path) -> None:
    folds = {f"cmd{n}": f"python cv.py --fold {n} --lr ${{lr}}" for n in (1, 2, 3)}
    config = {
        "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
        "platform_config": {"name": "LOCAL", **folds},
        "metric_config": {
            "metric_type": "stdout",
            "metric_source": ["cmd1", "cmd2", "cmd3"],
            "final_mode": "best",
            "source_list_final_mode": "avg",
            "metric_dict": {"auc=([0-9.]+)": 1},
        },
        "search_space": SPACE,
    }
    text, notes = run(tmp_path, config)
    assert text.count('metrics "stdout" {') == 3
    assert 'reduce         = "best"\n    sources_reduce = "avg"' in text
    assert "metric_config.metric_source" not in notes
    # Sources that are not the trial's tasks: the first is read, saying so.
    config["metric_config"]["metric_source"] = ["cmd1", "/logs/x.log"]
    text, notes = run(tmp_path, config)
    assert "sources_reduce" not in text and text.count('metrics "stdout" {') == 1
    assert "only the first is read" in notes["metric_config.metric_source"]


@pytest.mark.parametrize(
    ("config", "summary"),
    [
        (
            {"platform_config": {"name": "paiflow", "cmd": ["x"]}, "search_space": SPACE},
            "Unsupported platform",
        ),
        ({"platform_config": {"name": "LOCAL"}, "search_space": SPACE}, "Missing commands"),
        ({"platform_config": {"name": "LOCAL", "cmd": ["x"]}}, "Missing search space"),
        ({"search_space": SPACE}, "Missing platform_config"),
        ({"HpoExperimentConfig": "{oops"}, "Malformed PAI AutoML configuration"),
    ],
)
def test_bad_pai_configurations(tmp_path: Path, config: dict, summary: str) -> None:
    with pytest.raises(DiagnosticError) as caught:
        run(tmp_path, config)
    assert caught.value.diags[0].summary == summary


def test_direction_defaults_to_pai_s_maximize_with_a_note(tmp_path: Path) -> None:
    text, notes = run(
        tmp_path,
        {
            "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
            "platform_config": {"name": "LOCAL", "cmd": ["python t.py --lr ${lr}"]},
            "search_space": SPACE,
        },
    )
    assert 'direction = "maximize"' in text
    assert "PAI's default" in notes["yml_config.tuner.optimize_mode"]


def test_schedule_and_monitor_where_the_schema_has_them(tmp_path: Path) -> None:
    from tunectl.config.schema import EXPERIMENT_SCHEMA

    text, notes = run(
        tmp_path,
        {
            "yml_config": {"max_trial_number": 2, "tuner": {"name": "TPE"}},
            "platform_config": {"name": "LOCAL", "cmd": ["python t.py --lr ${lr}"]},
            "search_space": SPACE,
            "schedule_config": {"day": "weekend", "start_time": "22:00", "end_time": "6:00"},
            "monitor_config": {"url": "https://oapi.dingtalk.com/robot/send?access_token=T"},
        },
    )
    assert "access_token" not in text
    if "schedule" in EXPERIMENT_SCHEMA.blocks:
        flat = " ".join(text.split())
        assert 'schedule { days = ["weekend"] start = "22:00" end = "06:00" }' in flat
        assert "timezone" in notes["schedule_config"]
    else:
        assert "schedule" not in text and "none in this version" in notes["schedule_config"]
    assert "monitor_config" in notes and "access_token" not in notes["monitor_config"]
