"""Terraform's semantics and SPEC 6's decisions, from the command line.

`max_duration` is a total kept in the state across applies; `prevent_destroy` is read
from the configuration; `init` needs no variable values the backend does not use; the
default `workdir` is the configuration directory and `${trial.model_dir}` exists before
a trial starts; provider blocks are checked by their provider at `validate`; plan's
"K at a time" is bounded by the provider's capacity.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.cli.test_apply import TRIAL, config
from tests.conftest import run_cli, write


def setup(tmp_path: Path, hcl: str, **files: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL, **files})


def experiment(directory: Path, name: str = "demo") -> dict:
    result = run_cli(directory, "show", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)["experiments"][name]


def trials(directory: Path) -> list[dict]:
    result = run_cli(directory, "show", "experiment.demo", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


# -- max_duration across applies -----------------------------------------------------------


def test_max_duration_is_counted_across_applies(tmp_path: Path) -> None:
    # Each trial sleeps 1.5 s; the budget is 2 s of the experiment's own time.
    hcl = config(
        max_trials=50,
        concurrent=1,
        args="steps=1 sleep=1.5",
        extra='max_duration = "2s"',
    )
    directory = setup(tmp_path, hcl)
    first = run_cli(directory, "apply", "--auto-approve", "--once")
    assert first.code == 0, first.text
    assert experiment(directory)["status"] == "running"
    # The trial keeps running between the passes, and its time counts.
    time.sleep(2.5)
    second = run_cli(directory, "apply", "--auto-approve", "--once")
    assert second.code == 0, second.text
    state = experiment(directory)
    assert state["status"] == "stopped", second.text
    ran = trials(directory)
    assert len(ran) <= 2, ran  # not a fresh 2 s per apply
    assert "reached max_duration" in second.out
    # Stopped by its budget: nothing left to do, and plan says so.
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out, plan.text
    again = run_cli(directory, "apply", "--auto-approve", "--once")
    assert again.code == 0 and "No changes" in again.out, again.text
    assert len(trials(directory)) == len(ran)

    # Raising max_duration is an in-place update that lets the experiment continue.
    (directory / "main.hcl").write_text(hcl.replace('"2s"', '"1h"'))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "# experiment.demo will be updated in-place" in plan.out
    assert '~ max_duration' in plan.out and '"2s" -> "1h"' in plan.out, plan.out
    assert "max_duration is now 1h and" in plan.out
    assert "the stopped experiment continues" in plan.out
    assert "will run up to" in plan.out
    resumed = run_cli(directory, "apply", "--auto-approve", "--once")
    assert resumed.code == 0, resumed.text
    assert experiment(directory)["status"] == "running"
    assert len(trials(directory)) == len(ran) + 1
    # Tidy up: the trial started above ends with the experiment.
    assert run_cli(directory, "destroy", "--auto-approve").code == 0


def test_max_duration_total_survives_a_finished_experiment(tmp_path: Path) -> None:
    # Two trials of ~5.5 s use 11 s (more on a loaded machine) of a 20 s budget. Raising
    # max_trials resumes the experiment with what it has left (one or two more trials, the
    # last one stopped by the budget), not with a fresh 20 s (four more).
    hcl = config(
        max_trials=2,
        concurrent=1,
        args="steps=1 sleep=5",
        extra='max_duration = "20s"',
    )
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert experiment(directory)["status"] == "succeeded"
    time.sleep(3)  # an idle experiment's clock is paused: this time does not count
    (directory / "main.hcl").write_text(hcl.replace("max_trials     = 2", "max_trials     = 20"))
    plan = run_cli(directory, "plan")
    assert "the new settings let the succeeded experiment continue" in plan.out, plan.out
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert experiment(directory)["status"] == "stopped", result.out
    assert 3 <= len(trials(directory)) <= 4, trials(directory)


# -- prevent_destroy -----------------------------------------------------------------------


def test_prevent_destroy_is_read_from_the_configuration(tmp_path: Path) -> None:
    lifecycle = "lifecycle {\n    prevent_destroy = true\n  }"
    directory = setup(tmp_path, config(max_trials=1, extra=lifecycle))
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    refused = run_cli(directory, "destroy", "--auto-approve")
    assert refused.code == 1, refused.text
    assert "prevent_destroy" in refused.text and "Remove prevent_destroy" in refused.text
    assert experiment(directory)["status"] == "succeeded"
    # As the error says: remove it from the configuration, and destroy proceeds.
    (directory / "main.hcl").write_text(config(max_trials=1))
    result = run_cli(directory, "destroy", "--auto-approve")
    assert result.code == 0, result.text
    assert "Destroy complete! 1 experiment destroyed." in result.out
    shown = json.loads(run_cli(directory, "show", "--json").out)
    assert shown["experiments"] == {}


def test_prevent_destroy_added_after_apply_protects(tmp_path: Path) -> None:
    # The other way round: the state was written without it, the configuration has it.
    directory = setup(tmp_path, config(max_trials=1))
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    lifecycle = "lifecycle {\n    prevent_destroy = true\n  }"
    (directory / "main.hcl").write_text(config(max_trials=1, extra=lifecycle))
    refused = run_cli(directory, "destroy", "--auto-approve")
    assert refused.code == 1 and "prevent_destroy" in refused.text, refused.text
    plan = run_cli(directory, "plan", "--destroy")
    assert plan.code == 1 and "prevent_destroy" in plan.text, plan.text


# -- init ----------------------------------------------------------------------------------

VARIABLES = """\
variable "max_trials" {
  type = number
}
variable "tag" {
  type = string
}
"""


def test_init_needs_no_variable_values(tmp_path: Path) -> None:
    hcl = VARIABLES + config().replace("max_trials     = 4", "max_trials     = var.max_trials")
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "init")
    assert result.code == 0, result.text
    assert "- local:" in result.out and "successfully initialized" in result.out
    assert (directory / "state" / "tunectl.db").exists()
    # Commands that evaluate the experiments still need them, with Terraform's message.
    plan = run_cli(directory, "plan")
    assert plan.code == 1 and "Error: No value for required variable" in plan.err
    assert run_cli(directory, "plan", "--var", "max_trials=2", "--var", "tag=x").code == 0


def test_init_needs_the_variables_the_backend_uses(tmp_path: Path) -> None:
    backend = 'tunectl {\n  backend "local" {\n    path = "${var.tag}/tunectl.db"\n  }\n}\n'
    hcl = VARIABLES + backend + config().replace("= 4", "= var.max_trials", 1)
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "init")
    assert result.code == 1, result.text
    assert "Error: No value for required variable" in result.err
    assert 'variable "tag"' in result.err and "the backend uses it" in result.err
    assert '"max_trials"' not in result.err  # only what the backend needs is asked for
    result = run_cli(directory, "init", "--var", "tag=elsewhere")
    assert result.code == 0, result.text
    assert (directory / "elsewhere" / "tunectl.db").exists()


def test_init_still_reports_other_errors(tmp_path: Path) -> None:
    hcl = VARIABLES + config().replace("max_trials", "max_trails")
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "init")
    assert result.code == 1 and "Error: Unsupported argument" in result.err, result.text
    assert "Traceback" not in result.text


# -- workdir and model_dir -----------------------------------------------------------------

TRAIN = """\
import os, sys
out = sys.argv[1]
# ${trial.model_dir} exists before the trial starts: no mkdir needed.
assert os.path.isdir(out), out
with open(os.path.join(out, "model.txt"), "w") as f:
    f.write(os.getcwd())
print("acc=0.5", flush=True)
"""


def test_default_workdir_is_the_configuration_directory(tmp_path: Path) -> None:
    hcl = config(max_trials=2).replace(
        'command = "python3 trial.py id=${trial.id} x=${param.x} steps=1"\n    workdir = "."',
        'command = "python train.py ${trial.model_dir}"',
    )
    assert "workdir" not in hcl
    directory = setup(tmp_path, hcl, **{"train.py": TRAIN})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    ran = trials(directory)
    assert [t["status"] for t in ran] == ["complete", "complete"], ran
    for trial in ran:
        model = Path(trial["model_uri"].removeprefix("file://")) / "model.txt"
        assert model.read_text() == str(directory.resolve())


def test_relative_workdir_is_relative_to_the_configuration(tmp_path: Path) -> None:
    hcl = config(max_trials=1).replace(
        'command = "python3 trial.py id=${trial.id} x=${param.x} steps=1"\n    workdir = "."',
        'command = "python train.py ${trial.model_dir}"\n    workdir = "code"',
    )
    directory = setup(tmp_path, hcl, **{"code/train.py": TRAIN})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    (trial,) = trials(directory)
    model = Path(trial["model_uri"].removeprefix("file://")) / "model.txt"
    assert model.read_text() == str((directory / "code").resolve())


# -- provider blocks at validate -----------------------------------------------------------


def provider_block(body: str) -> str:
    return f'provider "local" {{\n  {body}\n}}\n\n'


def test_local_slots_are_checked_at_validate(tmp_path: Path) -> None:
    for value, words in (
        ("-3", "must be a positive integer, not -3"),
        ("0", "must be a positive integer, not 0"),
    ):
        directory = setup(tmp_path / value, provider_block(f"slots = {value}") + config())
        for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
            result = run_cli(directory, *command)
            assert result.code == 1, (command, result.text)
            assert "Error: Invalid slots" in result.err, result.text
            assert "on main.hcl line 2, in provider \"local\":" in result.err, result.err
            assert f"2:   slots = {value}" in result.err and words in result.err
            assert "Traceback" not in result.text
        assert not (directory / "state" / "tunectl.db").exists()
    for value in ("2.5", '"four"', "true"):
        directory = setup(tmp_path / "t", provider_block(f"slots = {value}") + config())
        result = run_cli(directory, "validate")
        assert result.code == 1, (value, result.text)
        assert "on main.hcl line 2" in result.err and "slots" in result.err, result.err
        assert "Traceback" not in result.text
    directory = setup(tmp_path / "ok", provider_block("slots = 3") + config())
    assert run_cli(directory, "validate").code == 0


def test_validate_json_carries_the_provider_diagnostic(tmp_path: Path) -> None:
    hcl = provider_block('gpus = ["0", "0"]') + config()
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "validate", "--json")
    assert result.code == 1, result.text
    (diag,) = json.loads(result.out)["diagnostics"]
    assert diag["summary"] == "Invalid gpus" and diag["range"]["start"]["line"] == 2


def test_dlc_provider_block_is_checked_at_validate(tmp_path: Path) -> None:
    dlc_trial = (
        'workdir = "."\n    provider = "dlc"\n    image = "img:1"\n'
        '    worker = { count = 1, ecs_spec = "ecs.g6.xlarge" }'
    )
    hcl = 'provider "dlc" {\n  region = "cn-hangzhou"\n  log_interval = -1\n}\n\n' + config(
        trial_extra=dlc_trial.removeprefix('workdir = "."\n    ')
    )
    directory = setup(tmp_path, hcl)
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "log_interval" in result.err and "on main.hcl line 3" in result.err, result.err


# -- plan's "K at a time" ------------------------------------------------------------------


def test_plan_at_a_time_accounts_for_slots(tmp_path: Path) -> None:
    directory = setup(tmp_path, provider_block("slots = 2") + config(max_trials=6, concurrent=4))
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert "will run up to 6 trials, 2 at a time" in plan.out, plan.out
    intent = json.loads(run_cli(directory, "plan", "--json").out)["changes"][0]["intent"]
    assert intent["max_concurrent"] == 2
    directory = setup(tmp_path / "wide", provider_block("slots = 8") + config(concurrent=4))
    assert "4 at a time" in run_cli(directory, "plan").out
