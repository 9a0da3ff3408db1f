"""`template { source, destination }` from the command line: a trial's configuration files
are rendered with its values before it starts, hostile values stay data, and bad templates
are located diagnostics."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli.test_apply import apply, trials
from tests.conftest import run_cli, write

# Values that would break out of a naively substituted file: close the JSON string and
# add a key, start a new YAML line, smuggle a placeholder, a backslash and a quote.
HOSTILE = [
    'adam", "evil": true, "x": "',
    "sgd\nevil: true",
    "${trial.id}",
    "back\\slash 'single' \"double\" # not a comment",
]

TRIAL = """\
import shutil, sys
n, model_dir = sys.argv[1], sys.argv[2]
shutil.copy(f"{model_dir}/config.json", f"seen-{n}.json")
shutil.copy(f"{model_dir}/config.yaml", f"seen-{n}.yaml")
print("acc=0.5")
"""

JSON_TPL = """\
{
  "optimizer": ${param.opt},
  "lr": ${param.lr},
  "trial": ${trial.number},
  "experiment": ${experiment.name},
  "literal": "$${param.opt}"
}
"""

YAML_TPL = """\
# rendered by tunectl for ${trial.id}
optimizer: ${param.opt}
lr: ${param.lr}
"""


def hcl(values: list[str], templates: str) -> str:
    choices = json.dumps(values).replace("${", "$${")  # an HCL literal, not a placeholder
    return textwrap.dedent(
        """\
        experiment "demo" {
          algorithm "grid" {
            seed = 1
          }
          objective {
            metric    = "acc"
            direction = "maximize"
          }
          max_trials     = %d
          max_concurrent = 2
          param "opt" {
            type   = "choice"
            values = %s
          }
          param "lr" {
            type   = "choice"
            values = [1e-05]
          }
          trial {
            command = "python3 trial.py ${trial.number} ${trial.model_dir}"
        %s
          }
        }
        """
    ) % (len(values), choices, textwrap.indent(templates, "    "))


BLOCKS = """\
template {
  source      = "config.json.tpl"
  destination = "${trial.model_dir}/config.json"
}
template {
  source      = "templates/config.yaml.tpl"
  destination = "${trial.model_dir}/config.yaml"
}
"""


def setup(tmp_path: Path, main: str, **files: str) -> Path:
    base = {"main.hcl": main, "trial.py": TRIAL, "config.json.tpl": JSON_TPL}
    base["templates/config.yaml.tpl"] = YAML_TPL
    base.update(files)
    return write(tmp_path / "cfg", base)


def test_hostile_values_stay_data(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    directory = setup(tmp_path, hcl(HOSTILE, BLOCKS))
    assert run_cli(directory, "validate").code == 0
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert sorted(t["params"]["opt"] for t in records) == sorted(HOSTILE)
    for record in records:
        n = record["number"]
        seen = json.loads((directory / f"seen-{n}.json").read_text())
        assert seen == {
            "optimizer": record["params"]["opt"],
            "lr": 1e-05,
            "trial": n,
            "experiment": "demo",
            "literal": "${param.opt}",
        }
        text = (directory / f"seen-{n}.yaml").read_text()
        assert yaml.safe_load(text) == {"optimizer": record["params"]["opt"], "lr": 1e-05}
        assert text.startswith(f'# rendered by tunectl for "demo-g1-t{n}"\n')


def test_plan_shows_a_template_edit(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl(["adam"], BLOCKS))
    assert apply(directory).code == 0
    assert run_cli(directory, "plan", "--detailed-exitcode").code == 0
    (directory / "config.json.tpl").write_text(JSON_TPL.replace('"lr"', '"learning_rate"'))
    plan = run_cli(directory, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "template" in plan.out


def test_text_format_refuses_a_line_break(tmp_path: Path) -> None:
    text_block = BLOCKS.replace(
        'destination = "${trial.model_dir}/config.yaml"',
        'destination = "${trial.model_dir}/config.yaml"\n  format      = "text"',
    )
    directory = setup(tmp_path, hcl(["sgd\nevil: true"], text_block))
    result = apply(directory)
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "Error: Unsafe placeholder value" in result.text
    assert "param.opt holds a line break" in result.text


@pytest.mark.parametrize(
    ("files", "blocks", "summary", "where"),
    [
        (
            {"config.json.tpl": '{\n  "a": 1,\n  "b": ${param.nope}\n}\n'},
            BLOCKS,
            "Error: Invalid template placeholder",
            "on config.json.tpl line 3",
        ),
        (
            {"config.json.tpl": '{\n  "a": ${HOME}\n}\n'},
            BLOCKS,
            "Error: Invalid template placeholder",
            "on config.json.tpl line 2",
        ),
        (
            {},
            BLOCKS.replace("config.json.tpl", "missing.tpl"),
            "Error: Cannot read template",
            "on main.hcl line 21",
        ),
        (
            {},
            BLOCKS.replace('"${trial.model_dir}/config.json"', '"config.json"'),
            "Error: Template destination shared by trials",
            "on main.hcl line 23",
        ),
        (
            {},
            BLOCKS.replace('source      = "config.json.tpl"\n', ""),
            "Missing required argument",
            "on main.hcl line 21",
        ),
        (
            {},
            BLOCKS.replace(
                '"${trial.model_dir}/config.json"', '"${trial.model_dir}/${param.nope}"'
            ),
            "Error: Invalid template placeholder",
            "on main.hcl line 23",
        ),
        (
            {},
            BLOCKS.replace('source      = "config.json.tpl"', 'source = "${param.opt}.tpl"'),
            "Error: Value not known until a trial is created",
            "on main.hcl line 22",
        ),
        (
            {},
            BLOCKS.replace('"${trial.model_dir}/config.json"', '"${trial.model_dir}/"'),
            "Error: Template destination is a directory",
            "on main.hcl line 23",
        ),
    ],
    ids=[
        "undeclared-param",
        "foreign-placeholder",
        "missing-file",
        "shared-destination",
        "no-source",
        "undeclared-param-in-destination",
        "placeholder-in-source",
        "the-model-directory",
    ],
)
def test_bad_templates_are_located_diagnostics(tmp_path, files, blocks, summary, where) -> None:
    directory = setup(tmp_path, hcl(["adam"], blocks), **files)
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert summary in result.text, result.text
    assert where in result.text, result.text


def test_a_sensitive_variable_cannot_name_a_template_file(tmp_path: Path) -> None:
    secret = (
        'variable "dir" {\n  type      = string\n  sensitive = true\n  default   = "s3cr3t"\n}\n'
    )
    blocks = BLOCKS.replace('"${trial.model_dir}/config.json"', '"${var.dir}/${trial.id}.json"')
    directory = setup(tmp_path, secret + hcl(["adam"], blocks))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Sensitive value in a template block" in result.text
    assert "on main.hcl line 28" in result.text
    assert "s3cr3t" not in result.text
