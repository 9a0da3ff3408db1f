"""No injection through placeholders: hostile `choice` values, from the command line.

Each experiment draws every hostile value once (grid search) and runs `rec.py`, which
writes the argv, `$VAL` and working directory it received to `out/<trial id>.<task>.json`.
The tests then check that no value ran a command (no `PWNED` file anywhere) and that every
position received the value byte for byte; positions no quoting makes safe are refused by
`tunectl validate` with a located diagnostic.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, Server

from tests.conftest import cli_env, run_cli, write

HOSTILE = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "\ntouch PWNED",
    "\\",
    "$HOME",
    "*",
]

RECORDER = """\
import json, os, sys
from pathlib import Path
out = Path(__file__).resolve().parent / "out"
out.mkdir(exist_ok=True)
trial, task = sys.argv[1], sys.argv[2]
record = {"argv": sys.argv[3:], "env": os.environ.get("VAL"), "cwd": os.getcwd()}
(out / f"{trial}.{task}.json").write_text(json.dumps(record))
print("acc=1")
"""


def hcl_list(values: list[str]) -> str:
    # JSON string syntax is HCL's, as long as no value holds `${` or `%{`.
    assert not any("${" in v or "%{" in v for v in values)
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def experiment(values: list[str], trial: str, provider: str = "") -> str:
    return f"""\
{provider}
experiment "inj" {{
  algorithm "grid" {{}}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {len(values)}
  max_concurrent = 3
  param "s" {{
    type   = "choice"
    values = {hcl_list(values)}
  }}
  trial {{
{trial}
  }}
}}
"""


# Each task: its block, and the argv `rec.py` must receive for a value v.
TASKS = {
    "unquoted": (
        r'command = "python3 rec.py ${trial.id} unquoted ${param.s}"',
        lambda v: [v],
    ),
    "glued": (
        r'command = "python3 rec.py ${trial.id} glued --x=${param.s} pre${param.s}post"',
        lambda v: ["--x=" + v, "pre" + v + "post"],
    ),
    "single": (
        r"""command = "python3 rec.py ${trial.id} single '${param.s}' 'a ${param.s} b'" """,
        lambda v: [v, "a " + v + " b"],
    ),
    "double": (
        r'command = "python3 rec.py ${trial.id} double \"${param.s}\" \"a ${param.s} b\""',
        lambda v: [v, "a " + v + " b"],
    ),
    "subst": (
        r'command = "python3 rec.py ${trial.id} subst'
        r""" \"$(printf '%s.' ${param.s})\" \"$(printf '%s.' '${param.s}')\""""
        r""" \"$(printf '%s.' \"${param.s}\")\"" """,
        lambda v: [v + "."] * 3,
    ),
    "env": (
        r'command = "python3 rec.py ${trial.id} env \"$VAL\""',
        lambda v: [v],
    ),
    "list": (
        r'command = ["python3", "rec.py", "${trial.id}", "list", "${param.s}", "--x=${param.s}"]',
        lambda v: [v, "--x=" + v],
    ),
}


def pwned(tmp_path: Path) -> list[Path]:
    return list(tmp_path.rglob("PWNED"))


def records(directory: Path) -> dict[str, dict]:
    return {
        p.name[: -len(".json")]: json.loads(p.read_text()) for p in (directory / "out").iterdir()
    }


def values_by_trial(directory: Path, env: dict | None = None) -> dict[str, str]:
    shown = run_cli(directory, "show", "experiment.inj", "--json", env=env)
    assert shown.code == 0, shown.text
    trials = json.loads(shown.out)
    assert all(t["status"] == "complete" for t in trials), trials
    return {t["id"]: t["params"]["s"] for t in trials}


def test_hostile_values_reach_every_task_position_exactly(tmp_path: Path) -> None:
    tasks = "\n".join(
        f'    task "{name}" {{\n      {block}\n      workdir = "."\n'
        f'      env = {{ VAL = "${{param.s}}" }}\n    }}'
        for name, (block, _) in TASKS.items()
    )
    directory = write(
        tmp_path / "cfg", {"main.hcl": experiment(HOSTILE, tasks), "rec.py": RECORDER}
    )
    checked = run_cli(directory, "validate")
    assert checked.code == 0, checked.text
    applied = run_cli(directory, "apply", "--auto-approve", timeout=300)
    assert applied.code == 0, applied.text
    assert pwned(tmp_path) == []

    by_trial = values_by_trial(directory)
    assert sorted(by_trial.values()) == sorted(HOSTILE)
    got = records(directory)
    for trial, value in by_trial.items():
        for name, (_, expected) in TASKS.items():
            record = got[f"{trial}.{name}"]
            assert record["argv"] == expected(value), (name, value, record)
            assert record["env"] == value, (name, value, record)
    assert len(got) == len(HOSTILE) * len(TASKS)


def test_hostile_values_in_workdir_and_trial_command(tmp_path: Path) -> None:
    # A workdir value is one directory name: anything but `/`, `.`, `..` and control
    # characters (the newline value is refused, below).
    values = [v for v in HOSTILE if "\n" not in v]
    trial = (
        '    command = "python3 ../../rec.py ${trial.id} workdir ${param.s} \\"${param.s}\\""\n'
        '    workdir = "runs/${param.s}"'
    )
    directory = write(tmp_path / "cfg", {"main.hcl": experiment(values, trial), "rec.py": RECORDER})
    for value in values:
        (directory / "runs" / value).mkdir(parents=True)
    applied = run_cli(directory, "apply", "--auto-approve", timeout=300)
    assert applied.code == 0, applied.text
    assert pwned(tmp_path) == []
    got = records(directory)
    for trial_id, value in values_by_trial(directory).items():
        record = got[f"{trial_id}.workdir"]
        assert record["argv"] == [value, value]
        assert record["cwd"] == str((directory / "runs" / value).resolve())


def test_hostile_values_on_dlc(tmp_path: Path) -> None:
    """DLC runs one shell line (`cd WORKDIR && COMMAND`): every value in it is quoted."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    values = [v for v in HOSTILE if "\n" not in v]
    with Server(capacity=8, phase_seconds=0.02) as server:
        provider = f"""\
provider "dlc" {{
  region       = "cn-hangzhou"
  workspace_id = "ws-test"
  endpoint     = "{server.endpoint}"
  protocol     = "http"
  log_interval = 0
}}"""
        trial = """\
    provider = "dlc"
    image    = "registry.example.com/train:1"
    worker   = { count = 1, ecs_spec = "ecs.g6.xlarge" }
    workdir  = "runs/${param.s}"
    env      = { VAL = "${param.s}" }
    task "shell" {
      # The dlc provider asks for image in every task block too, today.
      image   = "registry.example.com/train:1"
      worker  = { count = 1, ecs_spec = "ecs.g6.xlarge" }
      command = "python3 ../../rec.py ${trial.id} shell ${param.s} '${param.s}' \\"$VAL\\""
    }
    task "list" {
      image   = "registry.example.com/train:1"
      worker  = { count = 1, ecs_spec = "ecs.g6.xlarge" }
      command = ["python3", "../../rec.py", "${trial.id}", "list", "${param.s}"]
    }"""
        directory = write(
            tmp_path / "cfg",
            {"main.hcl": experiment(values, trial, provider), "rec.py": RECORDER},
        )
        for value in values:
            (directory / "runs" / value).mkdir(parents=True)
        env = cli_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
        )
        applied = run_cli(directory, "apply", "--auto-approve", env=env, timeout=300)
        assert applied.code == 0, applied.text
        by_trial = values_by_trial(directory, env)
    assert pwned(tmp_path) == []
    got = records(directory)
    for trial_id, value in by_trial.items():
        assert got[f"{trial_id}.shell"]["argv"] == [value, value, value]
        assert got[f"{trial_id}.list"]["argv"] == [value]
        assert got[f"{trial_id}.shell"]["cwd"] == str((directory / "runs" / value).resolve())


def test_a_list_command_cannot_pass_bash_exec_an_option_on_dlc(tmp_path: Path) -> None:
    """`exec -c touch PWNED` would run `touch` under bash: a list command never does."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    trial = """\
    provider = "dlc"
    image    = "registry.example.com/train:1"
    worker   = { count = 1, ecs_spec = "ecs.g6.xlarge" }
    command  = ["${param.s}", "touch", "PWNED"]"""
    with Server(capacity=8, phase_seconds=0.02) as server:
        provider = (
            f'provider "dlc" {{\n  region = "cn-hangzhou"\n  workspace_id = "ws-test"\n'
            f'  endpoint = "{server.endpoint}"\n  protocol = "http"\n  log_interval = 0\n}}'
        )
        directory = write(tmp_path / "cfg", {"main.hcl": experiment(["-c"], trial, provider)})
        env = cli_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
        )
        applied = run_cli(directory, "apply", "--auto-approve", env=env, timeout=300)
        assert "Traceback" not in applied.text
        with server.emulator.lock:
            lines = [str(job.spec["UserCommand"]) for job in server.emulator.jobs.values()]
    assert len(lines) == 1
    assert pwned(tmp_path) == []  # under the emulator's /bin/sh
    bash = shutil.which("bash")
    if bash:  # DLC images often run the line under bash
        ran = subprocess.run([bash, "-c", lines[0]], cwd=tmp_path, capture_output=True)
        assert ran.returncode == 127, ran
        assert pwned(tmp_path) == []


# -- refused at validate ------------------------------------------------------------

REFUSED = [
    ('command = "echo `echo ${param.s}`"', "inside backquotes"),
    # `var.*` is literal text of the command (a `$` written in HCL needs `$${`).
    ('command = "echo ${var.d}{HOME:-${param.s}}"', "inside a ${...} expansion"),
    ('command = "echo $((1 + ${param.s}))"', "inside arithmetic"),
    ("command = \"echo $'${param.s}'\"", "inside a $'...' string"),
    ('command = "echo hi # ${param.s}"', "in a comment"),
    ('command = "cat <<EOF\\n${param.s}\\nEOF"', "in a here-document"),
    ('command = "echo \\\\${param.s}"', "directly after a backslash"),
    ('command = "echo ${var.d}${param.s}"', "directly after a $"),
    ('command = "eval echo ${param.s}"', "in the arguments of eval"),
    ('command = "[[ ${param.s} -eq 1 ]] && echo"', "in the arguments of [[ ... ]]"),
]


def refused_config(trial_lines: str, values: list[str] | None = None) -> str:
    dollar = 'variable "d" {\n  default = "$"\n}'
    return experiment(values or ["a", "b"], trial_lines, dollar)


def line_of(directory: Path, needle: str) -> int:
    lines = (directory / "main.hcl").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def assert_refused(directory: Path, summary: str, *details: str) -> str:
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert f"Error: {summary}" in result.err
    where = line_of(directory, "command =")
    assert f'on main.hcl line {where}, in experiment "inj":' in result.err, result.err
    assert "Traceback" not in result.text
    flat = " ".join(result.err.split())
    for detail in details:
        assert detail in flat, result.err
    return result.err


@pytest.mark.parametrize(("command", "reason"), REFUSED)
def test_unsafe_positions_are_refused_at_validate(
    tmp_path: Path, command: str, reason: str
) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": refused_config("    " + command)})
    err = assert_refused(
        directory,
        "Placeholder in an unsafe position",
        f"${{param.s}} sits {reason}",
        'pass the value through env (env = { VALUE = "${param.s}" }, then "$VALUE"',
        "or use a list command",
    )
    assert command.split(" = ", 1)[1][:20] in err  # the source line is shown


def test_plan_refuses_too_and_leaves_no_state(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg", {"main.hcl": refused_config('    command = "echo `${param.s}`"')}
    )
    planned = run_cli(directory, "plan")
    assert planned.code == 1 and "Error: Placeholder in an unsafe position" in planned.err
    assert not (directory / "state" / "tunectl.db").exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("..", "cannot be part of a path: it is only dots"),
        (".", "cannot be part of a path: it is only dots"),
        ("a/b", "cannot be part of a path: it contains a /"),
        ("/etc", "cannot be part of a path: it contains a /"),
        ("a\nb", "cannot be part of a path: it contains a control character"),
    ],
)
def test_workdir_values_that_climb_out_are_refused(
    tmp_path: Path, value: str, problem: str
) -> None:
    trial = '    command = "true"\n    workdir = "runs/${param.s}"'
    directory = write(tmp_path / "cfg", {"main.hcl": refused_config(trial, ["ok", value])})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Parameter value cannot be placed here" in result.err
    where = line_of(directory, "workdir =")
    assert f'on main.hcl line {where}, in experiment "inj":' in result.err
    flat = " ".join(result.err.split())
    assert f"of param.s {problem}" in flat, result.err
    assert "Change the parameter's values" in flat


def test_params_json_is_no_directory_name(tmp_path: Path) -> None:
    trial = '    command = "true"\n    workdir = "runs/${trial.params_json}"'
    directory = write(tmp_path / "cfg", {"main.hcl": refused_config(trial)})
    result = run_cli(directory, "validate")
    assert result.code == 1
    assert "trial.params_json is JSON text, which cannot be part of a path" in result.err


def test_nul_in_a_value_is_refused(tmp_path: Path) -> None:
    hcl = refused_config('    command = ["echo", "${param.s}"]').replace(
        '["a", "b"]', '["a", "b\\u0000c"]'
    )
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Parameter value cannot be placed here" in result.err
    assert "contains a NUL byte" in result.err


def test_a_metrics_pattern_takes_no_placeholder(tmp_path: Path) -> None:
    trial = (
        '    command = "true"\n'
        '    metrics "stdout" {\n'
        '      pattern = "${param.s}=([0-9.]+)"\n'
        "    }"
    )
    directory = write(tmp_path / "cfg", {"main.hcl": refused_config(trial)})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Placeholder in a metrics pattern" in result.err
    assert f"on main.hcl line {line_of(directory, 'pattern =')}," in result.err
