"""The loader decodes every body a provider declares, and the engine renders each by its
kind: a provider with XFlow and SQL bodies and no command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tunectl.config.load import load_config
from tunectl.diags import DiagnosticError
from tunectl.engine.trials import Placeholders, build_request, metrics_queries
from tunectl.providers.base import Capabilities, MetricSource
from tunectl.providers.bodies import SQL_BACKSLASH, XFLOW, BodySpec, ListOf, query_kind
from tunectl.testing.fake import FakeProvider


class XFlowProvider(FakeProvider):
    """Tasks are a PAI command and SQL statements; metrics come from tables."""

    name = "xflow"
    capabilities = Capabilities(metric_sources=frozenset({MetricSource.TABLE}))
    task_bodies = (
        BodySpec("sql", (SQL_BACKSLASH, ListOf(SQL_BACKSLASH)), noun="a query"),
        BodySpec("pai", (XFLOW,), noun="a PAI command"),
    )


@pytest.fixture(autouse=True)
def providers() -> Iterator[None]:
    undo = XFlowProvider.install()
    yield
    undo()


EXPERIMENT = """\
experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "auc"
    direction = "maximize"
  }
  max_trials = 1
  param "trees" {
    type = "randint"
    low  = 1
    high = 100
  }
  param "label" {
    type   = "choice"
    values = ["y", "z"]
  }
  param "depth" {
    type   = "choice"
    values = [3, 5]
  }
  trial {
    provider = "xflow"
%s
  }
}
"""


def load(tmp_path: Path, trial: str):
    (tmp_path / "main.hcl").write_text(EXPERIMENT % trial)
    return load_config(tmp_path).experiments["demo"]


def errors(tmp_path: Path, trial: str) -> list[tuple[str, str]]:
    with pytest.raises(DiagnosticError) as caught:
        load(tmp_path, trial)
    return [(d.summary, d.detail) for d in caught.value.diags]


def test_every_declared_body_is_decoded_and_rendered_by_its_kind(tmp_path: Path) -> None:
    trial = """\
    pai = "-name xgboost -project algo_public -DtreeCount=${param.trees} -Dlabel=${param.label}"
    sql = ["drop table if exists eval_${trial.number}", "select '${param.label}', ${param.depth}"]
    metrics "table" {
      sql = "select auc from eval_${trial.number} where label = '${param.label}'"
    }"""
    exp = load(tmp_path, trial)
    (task,) = exp.trial.tasks
    assert task.command is None and [n for n, _ in task.bodies] == ["sql", "pai"]
    values = {"trees": 7, "label": 'it\'s "x" -Devil=1', "depth": 5}
    placeholders = Placeholders(exp, 0, 3, values, "")
    request = build_request(
        exp,
        task,
        key="k",
        placeholders=placeholders,
        config_dir=tmp_path,
        model_dir="",
        trial_number=3,
        bodies=XFlowProvider.task_bodies,
    )
    assert request.bodies == {
        "sql": ["drop table if exists eval_3", "select 'it\\'s \"x\" -Devil=1', 5"],
        "pai": '-name xgboost -project algo_public -DtreeCount="7" '
        '-Dlabel="it\'s \\"x\\" -Devil=1"',
    }
    assert metrics_queries(task, placeholders) == (
        "select auc from eval_3 where label = 'it''s \"x\" -Devil=1'",
    )
    # In the provider's dialect (that of its sql body): backslash escapes.
    kind = query_kind(XFlowProvider.task_bodies)
    assert kind is SQL_BACKSLASH
    assert metrics_queries(
        task, Placeholders(exp, 0, 3, {**values, "label": "\\' or 1"}, ""), kind
    ) == ("select auc from eval_3 where label = '\\\\\\' or 1'",)


def test_unsafe_placements_are_refused_at_validate(tmp_path: Path) -> None:
    assert errors(tmp_path, '    pai = "-name ${param.label}"')[0][0] == (
        "Placeholder in an unsafe position"
    )
    found = errors(tmp_path, '    sql = "select * from t_${param.label}"')
    assert found[0][0] == "Placeholder in an unsafe position"
    assert 'param "label" can take a value that is not a number' in found[0][1]
    # A number-typed parameter (a choice of numbers too) may sit outside a literal.
    load(tmp_path, '    sql = "select ${param.trees} * ${param.depth}"')


def test_a_task_needs_one_of_the_provider_s_bodies(tmp_path: Path) -> None:
    (found,) = errors(tmp_path, '    task "a" {\n      timeout = "1m"\n    }')
    assert found == ("Missing required argument", 'task "a" needs one of sql, pai.')
    found2 = errors(tmp_path, '    command = "echo 1"')
    assert (
        "Unsupported argument",
        'The xflow provider\'s tasks take one of sql, pai, not "command".',
    ) in found2
