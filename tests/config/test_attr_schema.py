"""The one attribute-schema type (`tunectl.hcl.schema.AttrSpec`), shared by tunectl's own
blocks and by providers: typed collections check their elements, and a wrong element is
an error located where the element is written.

The CLI cases use the local provider (`gpus`, a `list(string)`) and a provider installed
for the test only (a distribution on PYTHONPATH registering the `tunectl.providers` entry
point, as any third-party provider does), which declares `list(number)` and `map(string)`
attributes in its provider block and in trials.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tunectl.config import schema as config_schema
from tunectl.hcl.schema import AttrSpec, ElementError, convert, type_words
from tunectl.providers import base

EXPERIMENT = """\
experiment "demo" {
  max_trials = 1
  algorithm "random" {}
  objective {
    metric    = "score"
    direction = "maximize"
  }
  param "x" {
    type = "int"
    low  = 1
    high = 3
  }
  trial {
    provider = "%(provider)s"
    command  = "echo score=1"
%(trial)s
  }
}
"""

TYPED_PROVIDER = """\
from tunectl.providers.base import AttrSpec, Provider


class TypedProvider(Provider):
    name = "typed"
    config_schema = (
        AttrSpec("zones", "list(string)"),
        AttrSpec("weights", "list(number)"),
        AttrSpec("labels", "map(string)"),
    )
    trial_schema = (
        AttrSpec("mounts", "list(string)"),
        AttrSpec("shares", "list(number)"),
        AttrSpec("tags", "map(string)"),
    )

    def submit(self, request):
        raise NotImplementedError

    def find(self, keys):
        raise NotImplementedError

    def poll(self, handles):
        raise NotImplementedError

    def read_log(self, handle, cursor):
        raise NotImplementedError

    def cancel(self, handle):
        raise NotImplementedError
"""


def experiment(provider: str, trial: str = "") -> str:
    return EXPERIMENT % {"provider": provider, "trial": textwrap.indent(trial, "    ")}


@pytest.fixture(scope="module")
def typed_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The CLI's environment with the "typed" provider installed."""
    site = tmp_path_factory.mktemp("site")
    (site / "typedprov.py").write_text(TYPED_PROVIDER)
    info = site / "typedprov-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: typedprov\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[tunectl.providers]\ntyped = typedprov:TypedProvider\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return cli_env(PYTHONPATH=path)


# -- one type ---------------------------------------------------------------------------


def test_providers_and_core_share_one_attribute_type() -> None:
    assert base.AttrSpec is AttrSpec
    spec = config_schema.EXPERIMENT_SCHEMA.attrs["max_trials"]
    assert isinstance(spec, AttrSpec) and (spec.name, spec.type, spec.required) == (
        "max_trials",
        "int",
        True,
    )
    assert AttrSpec("zone").type == "string"  # what providers have always written


def test_typed_collections_convert_each_element() -> None:
    assert convert(["a", 1, True], "list(string)") == ["a", "1", "true"]
    assert convert([1, "2.5"], "list(number)") == [1, 2.5]
    assert convert({"a": 1}, "map(string)") == {"a": "1"}
    with pytest.raises(ElementError) as list_error:
        convert(["a", ["b"]], "list(string)")
    assert (list_error.value.where, str(list_error.value)) == (
        1,
        "element 1: a string is required, but got list",
    )
    with pytest.raises(ElementError) as number_error:
        convert([1, "many"], "list(number)")
    assert "element 1: a number is required, but got string" == str(number_error.value)
    with pytest.raises(ElementError) as map_error:
        convert({"ok": "x", "bad": {"y": 1}}, "map(string)")
    assert map_error.value.where == "bad"
    with pytest.raises(ValueError, match="a list of strings is required, but got string"):
        convert("a", "list(string)")
    assert type_words("map(number)") == "a map of numbers"


def test_tunectl_types_extend_the_hcl_ones() -> None:
    assert config_schema.convert("90s", "duration") == 90.0
    assert config_schema.convert(["python", 3], "command") == ["python", "3"]
    assert config_schema.convert([1, 2], "list(string)") == ["1", "2"]
    with pytest.raises(ValueError, match='a duration such as "30m"'):
        config_schema.convert(True, "duration")


# -- from the CLI -------------------------------------------------------------------------


def test_a_wrong_element_of_a_list_of_strings_is_located(tmp_path: Path) -> None:
    hcl = 'provider "local" {\n  gpus = [\n    "0",\n    ["1"],\n  ]\n}\n\n' + experiment("local")
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Incorrect attribute value type" in result.err, result.err
    assert 'on main.hcl line 4, in provider "local":' in result.err, result.err
    assert '4:     ["1"],' in result.err
    assert 'Inappropriate value for "gpus": element 1: a string is required, but got list.' in (
        result.err
    )
    assert result.err.count("Error:") == 1, result.err
    assert "Traceback" not in result.text

    fine = 'provider "local" {\n  gpus = ["0", 1]\n}\n\n' + experiment("local")
    directory = write(tmp_path / "ok", {"main.hcl": fine})
    assert run_cli(directory, "validate").code == 0


@pytest.mark.parametrize(
    ("attribute", "value", "words"),
    [
        ("zones", '["a", {}]', "element 1: a string is required, but got map"),
        ("weights", '[1, "heavy"]', "element 1: a number is required, but got string"),
        ("labels", "{ team = [1] }", 'element "team": a string is required, but got list'),
    ],
)
def test_provider_block_elements_are_checked(
    tmp_path: Path, typed_env: dict[str, str], attribute: str, value: str, words: str
) -> None:
    hcl = f'provider "typed" {{\n  {attribute} = {value}\n}}\n\n' + experiment("typed")
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = run_cli(directory, "validate", env=typed_env)
    assert result.code == 1, result.text
    assert 'on main.hcl line 2, in provider "typed":' in result.err, result.err
    assert f'Inappropriate value for "{attribute}": {words}.' in result.err, result.err
    assert result.err.count("Error:") == 1, result.err


@pytest.mark.parametrize(
    ("attribute", "value", "words"),
    [
        ("mounts", '["/data", ["/x"]]', "element 1: a string is required, but got list"),
        ("shares", "[0.5, true]", "element 1: a number is required, but got bool"),
        ("tags", '{ me = "x", cost = {} }', 'element "cost": a string is required, but got map'),
    ],
)
def test_trial_elements_are_checked(
    tmp_path: Path, typed_env: dict[str, str], attribute: str, value: str, words: str
) -> None:
    hcl = experiment("typed", f"{attribute} = {value}")
    directory = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = run_cli(directory, "validate", env=typed_env)
    assert result.code == 1, result.text
    assert 'on main.hcl line 16, in experiment "demo":' in result.err, result.err
    assert f'Inappropriate value for "{attribute}": {words}.' in result.err, result.err
    assert result.err.count("Error:") == 1, result.err


def test_well_typed_collections_are_valid(tmp_path: Path, typed_env: dict[str, str]) -> None:
    provider = 'provider "typed" {\n  zones = ["a", 2]\n  weights = [1, "2.5"]\n}\n\n'
    trial = 'mounts = ["/data"]\nshares = [1]\ntags = { owner = "me", n = 3 }'
    directory = write(tmp_path / "cfg", {"main.hcl": provider + experiment("typed", trial)})
    result = run_cli(directory, "validate", env=typed_env)
    assert result.code == 0, result.text


def test_a_wrong_map_element_is_pointed_at(tmp_path: Path, typed_env: dict[str, str]) -> None:
    provider = 'provider "typed" {\n  labels = {\n    team = "ml"\n    cost = [1]\n  }\n}\n\n'
    directory = write(tmp_path / "cfg", {"main.hcl": provider + experiment("typed")})
    result = run_cli(directory, "validate", "--json", env=typed_env)
    assert result.code == 1, result.text
    (diag,) = json.loads(result.out)["diagnostics"]
    assert diag["range"]["start"]["line"] == 4, diag
    assert 'element "cost"' in diag["detail"]


def test_variables_convert_with_the_same_types(tmp_path: Path) -> None:
    hcl = 'variable "ids" {\n  type    = list(number)\n  default = [1, "two"]\n}\n\n'
    directory = write(tmp_path / "cfg", {"main.hcl": hcl + experiment("local")})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Invalid default value for variable" in result.err, result.err
    assert "element 1: a number is required, but got string." in result.err
    write(directory, {"main.hcl": hcl.replace('"two"', '"2"') + experiment("local")})
    assert run_cli(directory, "validate").code == 0
