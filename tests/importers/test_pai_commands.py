"""PAI's trial command lines: placeholders, `dlc submit` flags, `PAI -name` bodies."""

from __future__ import annotations

from tunectl.importers.commands import dlc_submit, pai_command, placeholders, unquote_pai
from tunectl.importers.model import Notes
from tunectl.providers import registry

KEYS = {"${lr}": "lr", "${batch_size}": "batch_size"}


def test_placeholders_become_tunectl_references() -> None:
    notes = Notes()
    text = placeholders(
        "run --lr ${lr} --out ${NNI_OUTPUT_DIR}/${exp_id}_${trial_id} ${params} $HOME",
        KEYS,
        "cmd1",
        notes,
    )
    assert str(text) == (
        "run --lr ${param.lr} --out ${trial.model_dir}/${experiment.name}_${trial.id} "
        "$${params} $HOME"
    )
    assert [n.source for n in notes] == ["cmd1"] and "${params}" in notes[0].why


def test_dlc_submit_with_quota_resources_and_roles() -> None:
    notes = Notes()
    job = dlc_submit(
        "dlc submit tfjob --name=x --workers 2 --worker_cpu=4 --worker_gpu=1 "
        "--worker_memory=8Gi --ps=1 --ps_spec=ecs.g6.xlarge --worker_image=img:1 "
        "--resource_id=quota-1 --priority=5 --job_max_running_time_minutes=90 "
        "--code_source=code-1 --code_branch=main --data_sources=d-1,d-2 "
        "--command='python train.py --lr ${lr}' --vpc_id=vpc-1 --bogus=1",
        KEYS,
        "platform_config.cmd1",
        notes,
    )
    assert job is not None
    assert str(job.command) == "python train.py --lr ${param.lr}"
    takes_vpc = "user_vpc" in {a.name for a in registry.load("dlc").trial_schema}
    assert job.settings.pop("user_vpc", None) == ({"vpc_id": "vpc-1"} if takes_vpc else None)
    assert job.settings == {
        "job_type": "TFJob",
        "image": "img:1",
        "worker": {"count": 2, "cpu": 4, "gpu": 1, "memory": "8Gi"},
        "ps": {"count": 1, "ecs_spec": "ecs.g6.xlarge"},
        "resource_id": "quota-1",
        "priority": 5,
        "max_running_time": "90m",
        "code_source": {"id": "code-1", "branch": "main"},
        "data_sources": [{"id": "d-1"}, {"id": "d-2"}],
    }
    # A DLC provider that takes user_vpc (a newer one) gets the VPC; else it is noted.
    assert [n.source for n in notes] == [
        "platform_config.cmd1 --name",
        *([] if takes_vpc else ["platform_config.cmd1 --vpc_id"]),
        "platform_config.cmd1 --bogus",
    ]


def test_not_a_dlc_submit_line() -> None:
    assert dlc_submit("python train.py", KEYS, "cmd1", Notes()) is None
    notes = Notes()
    assert dlc_submit("dlc submit pytorch --command='unclosed", KEYS, "cmd1", notes) is None
    assert "cannot be read" in notes[0].why


def test_pai_lines() -> None:
    assert pai_command("PAI -name ps_smart\n -project foo;") == "-name ps_smart -project foo"
    assert pai_command("pai -name=evaluate -project=algo_public") == (
        "-name=evaluate -project=algo_public"
    )
    assert pai_command("INSERT OVERWRITE TABLE t SELECT 1;") is None
    assert unquote_pai("-name=easy_rec_ext -Dconfig='oss://b/c_${exp_id}.config' -Dx='a b'") == (
        "-name easy_rec_ext -Dconfig=oss://b/c_${exp_id}.config -Dx='a b'"
    )
