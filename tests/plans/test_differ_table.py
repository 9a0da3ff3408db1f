"""The differ, specified by SPEC section 3's table.

Each row is one field as SPEC (and docs/language.md "Plans", where SPEC is silent) names
it, one edit of a configuration, and what the plan must do with it: update in place (`~`),
force replacement (`-/+`, the attribute marked `# forces replacement`), and nothing at all
when the changed path is listed in `lifecycle.ignore_changes`. The table was written from
SPEC, not from the differ; the differ is checked against it through a real configuration,
`canonical`, `make_plan` and the human renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tunectl.config.load import load_config
from tunectl.config.model import Config
from tunectl.plans.change import Action, Plan
from tunectl.plans.differ import DiffOptions, StateView, canonical, make_plan
from tunectl.providers import registry
from tunectl.search.stopping import Progress
from tunectl.status import ExperimentStatus
from tunectl.views.plan_human import render_plan

BASE = """
experiment "mnist" {
  description = "base"
  algorithm "tpe" {
    seed = 42
  }
  objective {
    metric    = "val_acc"
    direction = "maximize"
    goal      = 0.99
    reduce    = "best"
  }
  max_trials                     = 40
  max_concurrent                 = 4
  max_failed_trials              = 5
  max_duration                   = "2h"
  max_trials_without_improvement = 20
  early_stopping "median" {
    start_step = 2
  }
  param "lr" {
    type = "loguniform"
    low  = 1e-5
    high = 1e-1
  }
  trial {
    provider = "local"
    command  = "python train.py --lr ${param.lr}"
    workdir  = "."
    env      = { EPOCHS = "5" }
    timeout  = "30m"
    retries  = 2
    metrics "stdout" {
      pattern = "val_acc=([0-9.eE+-]+)"
    }
  }
  lifecycle {
    ignore_changes = IGNORED
  }
}
"""

# The same experiment on PAI-DLC, whose provider lists `image` as forcing replacement.
DLC = 'provider "dlc" {\n  region = "cn-hangzhou"\n  workspace_id = "ws1"\n}\n' + BASE.replace(
    'provider = "local"', 'provider = "dlc"'
).replace('    workdir  = "."\n', "").replace(
    '    env      = { EPOCHS = "5" }\n',
    '    env      = { EPOCHS = "5" }\n'
    '    image    = "pytorch:2.1"\n'
    '    worker   = { count = 1, ecs_spec = "ecs.gn6i-c4g1.xlarge" }\n',
)

UPDATE, REPLACE = Action.UPDATE, Action.REPLACE


@dataclass(frozen=True)
class Row:
    field: str  # as SPEC section 3 names it
    old: str  # text of BASE (or DLC) ...
    new: str  # ... replaced by this
    paths: tuple[str, ...]  # the changed attributes the plan shows, by canonical path
    action: Action
    base: str = BASE

    @property
    def id(self) -> str:
        return f"{self.field}: {' '.join(self.new.split())}"


TABLE = [
    # -- update in place: limits and stop conditions, how far the same study goes --
    Row("description", '"base"', '"new"', ("description",), UPDATE),
    Row("description", 'description = "base"\n', "", ("description",), UPDATE),
    Row("max_trials", "= 40", "= 80", ("max_trials",), UPDATE),
    Row("max_concurrent", "= 4\n", "= 8\n", ("max_concurrent",), UPDATE),
    Row("max_failed_trials", "= 5\n", "= 10\n", ("max_failed_trials",), UPDATE),
    Row("max_duration", '"2h"', '"3h"', ("max_duration",), UPDATE),
    Row(
        "max_duration",
        '  max_duration                   = "2h"\n',
        "",
        ("max_duration",),
        UPDATE,
    ),
    Row("goal", "= 0.99", "= 0.995", ("objective.goal",), UPDATE),
    Row("goal", "      = 0.99\n", "      = null\n", ("objective.goal",), UPDATE),
    Row(
        "max_trials_without_improvement",
        "= 20",
        "= 30",
        ("max_trials_without_improvement",),
        UPDATE,
    ),
    Row("timeout", '"30m"', '"1h"', ("trial.timeout",), UPDATE),
    # enqueue (docs/language.md "Known configurations first"): sets added run next.
    Row(
        "enqueue",
        "  early_stopping",
        "  enqueue = [{ lr = 0.001 }]\n  early_stopping",
        ("enqueue",),
        UPDATE,
    ),
    # warm_start (docs/language.md "Warm starts"): what a new generation starts with.
    Row(
        "warm_start",
        "  early_stopping",
        "  warm_start = true\n  early_stopping",
        ("warm_start.carry",),
        UPDATE,
    ),
    Row("retries", "retries  = 2", "retries  = 3", ("trial.retries",), UPDATE),
    Row(
        "early_stopping", "start_step = 2", "start_step = 3", ("early_stopping.start_step",), UPDATE
    ),
    Row(
        "early_stopping",
        'early_stopping "median" {\n    start_step = 2\n  }',
        'early_stopping "hyperband" {}',
        ("early_stopping.name", "early_stopping.start_step"),
        UPDATE,
    ),
    # -- replace: what a trial computes or how it is judged --
    Row("param", "high = 1e-1", "high = 5e-1", ("param.lr.high",), REPLACE),
    Row(
        "param",
        "  trial {\n",
        '  param "bs" {\n    type   = "choice"\n    values = [32, 64]\n  }\n  trial {\n',
        ("param.bs.type", "param.bs.values"),
        REPLACE,
    ),
    Row("objective metric", '"val_acc"\n', '"val_loss"\n', ("objective.metric",), REPLACE),
    Row("objective direction", '"maximize"', '"minimize"', ("objective.direction",), REPLACE),
    Row("algorithm", 'algorithm "tpe"', 'algorithm "random"', ("algorithm.name",), REPLACE),
    Row("algorithm", "seed = 42", "seed = 7", ("algorithm.seed",), REPLACE),
    Row(
        "trial command",
        '"python train.py --lr ${param.lr}"',
        '"python train2.py --lr ${param.lr}"',
        ("trial.task.main.command",),
        REPLACE,
    ),
    Row(
        "trial provider",
        'provider "dlc"',
        'provider "dlc"',
        ("trial.provider",),
        REPLACE,
        base=DLC.replace('provider = "dlc"', 'provider = "PROVIDER"'),
    ),
    Row("image", '"pytorch:2.1"', '"pytorch:2.2"', ("trial.task.main.image",), REPLACE, DLC),
    Row(
        "image",
        'ecs_spec = "ecs.gn6i-c4g1.xlarge" }',
        'ecs_spec = "ecs.gn6i-c4g1.xlarge", image = "pytorch:2.2" }',
        ("trial.task.main.worker.image",),
        REPLACE,
        DLC,
    ),
    # -- where SPEC is silent: docs/language.md "Plans" --
    Row("objective reduce", '"best"', '"final"', ("objective.reduce",), REPLACE),
    Row(
        "trial workdir", 'workdir  = "."', 'workdir  = "src"', ("trial.task.main.workdir",), REPLACE
    ),
    Row("trial env", '"5" }', '"6" }', ("trial.task.main.env",), REPLACE),
    Row("trial metrics", "val_acc=(", "acc=(", ("trial.task.main.metrics",), REPLACE),
    Row(
        "lifecycle",
        "    ignore_changes = IGNORED\n",
        "    ignore_changes = IGNORED\n    prevent_destroy = true\n",
        ("lifecycle.prevent_destroy",),
        UPDATE,
    ),
    Row(
        "provider setting not listed",
        "{ count = 1,",
        "{ count = 2,",
        ("trial.task.main.worker.count",),
        UPDATE,
        DLC,
    ),
]


def _config(tmp_path: Path, text: str, ignored: tuple[str, ...] = ()) -> Config:
    listed = "[" + ", ".join(f'"{p}"' for p in ignored) + "]"
    directory = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    (directory / "main.hcl").write_text(text.replace("IGNORED", listed), encoding="utf-8")
    return load_config(directory, environ={})


def _replace_keys(provider: str) -> tuple[str, ...]:
    try:
        return registry.load(provider).replace_on_change
    except (KeyError, registry.ProviderLoadError):
        return ()


def _view(config: Config, status: ExperimentStatus = ExperimentStatus.RUNNING) -> StateView:
    return StateView(
        name="mnist",
        config=canonical(config.experiments["mnist"]),
        status=status,
        progress=Progress(complete=12, running=2, asked=14),
        running_trials=2,
    )


def _plan(before: Config, after: Config | None, **options: object) -> Plan:
    return make_plan(
        after,
        {"mnist": _view(before)},
        DiffOptions(**options),  # type: ignore[arg-type]
        replace_keys=_replace_keys,
        space_size=lambda exp: None,
    )


def _texts(row: Row) -> tuple[str, str]:
    if row.field == "trial provider":
        # local -> dlc: the same experiment moved to another provider.
        before = row.base.replace('"PROVIDER"', '"local"')
        after = row.base.replace('"PROVIDER"', '"dlc"')
        return before, after
    assert row.old in row.base, row.old
    return row.base, row.base.replace(row.old, row.new, 1)


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_spec_table(tmp_path: Path, row: Row) -> None:
    before_text, after_text = _texts(row)
    if row.field == "trial provider":
        pytest.importorskip("tunectl_local")
        before_text = before_text.replace(
            '    image    = "pytorch:2.1"\n    worker   = { count = 1, ecs_spec = '
            '"ecs.gn6i-c4g1.xlarge" }\n',
            "",
        )
    before = _config(tmp_path, before_text)
    after = _config(tmp_path, after_text)
    plan = _plan(before, after)
    (change,) = plan.changes
    shown = {a.path for a in change.attrs}
    assert set(row.paths) <= shown, (row.paths, shown)
    assert change.action is row.action, change.attrs
    text = render_plan(plan, color=False)
    if row.action is UPDATE:
        assert not any(a.forces_replacement for a in change.attrs), change.attrs
        assert "# experiment.mnist will be updated in-place" in text
        assert '  ~ experiment "mnist" {' in text
        assert "forces replacement" not in text
        assert plan.counts == (0, 1, 0)
        # The same study continues: its trials count, and apply may start more.
        assert change.intent is not None and change.intent.done == 12
    else:
        forcing = {a.path for a in change.attrs if a.forces_replacement}
        assert set(row.paths) <= forcing, change.attrs
        assert "# experiment.mnist must be replaced" in text
        assert '-/+ experiment "mnist" {' in text
        for path in row.paths:
            (line,) = [ln for ln in text.splitlines() if ln.strip()[2:].startswith(path + " ")]
            assert line.endswith("# forces replacement"), line
        assert plan.counts == (1, 0, 1)
        # A new study: none of the old trials count.
        assert change.intent is not None and change.intent.done == 0
        assert "This stops 2 running trial(s)." in change.consequences


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_ignore_changes_hides_every_field(tmp_path: Path, row: Row) -> None:
    before_text, after_text = _texts(row)
    if row.field == "trial provider":
        before_text = before_text.replace(
            '    image    = "pytorch:2.1"\n    worker   = { count = 1, ecs_spec = '
            '"ecs.gn6i-c4g1.xlarge" }\n',
            "",
        )
    # ignore_changes was applied before the field changed (changing it is an update itself).
    before = _config(tmp_path, before_text, ignored=row.paths)
    after = _config(tmp_path, after_text, ignored=row.paths)
    plan = _plan(before, after)
    (change,) = plan.changes
    assert [a.path for a in change.attrs if a.path in row.paths] == []
    if row.field != "trial provider":  # moving provider also changes the task's settings
        assert change.action is Action.NOOP, change.attrs
        assert not plan.has_changes


def test_ignore_changes_by_block_name(tmp_path: Path) -> None:
    # A block's name covers every path under it.
    before = _config(tmp_path, BASE, ignored=("param", "early_stopping"))
    text = BASE.replace("high = 1e-1", "high = 5e-1").replace("start_step = 2", "start_step = 3")
    plan = _plan(before, _config(tmp_path, text, ignored=("param", "early_stopping")))
    assert plan.changes[0].action is Action.NOOP


def test_new_block_is_created_and_removed_block_destroyed(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE)
    created = make_plan(
        config, {}, DiffOptions(), replace_keys=_replace_keys, space_size=lambda exp: None
    )
    assert [(c.address, c.action) for c in created.changes] == [("experiment.mnist", Action.CREATE)]
    assert '  + experiment "mnist" {' in render_plan(created, color=False)
    assert created.counts == (1, 0, 0)

    removed = _plan(config, _config(tmp_path, 'provider "local" {}\n'))
    assert [c.action for c in removed.changes] == [Action.DESTROY]
    assert '  - experiment "mnist" {' in render_plan(removed, color=False)
    assert removed.counts == (0, 0, 1)

    destroyed = _plan(config, config, destroy=True)
    assert [c.action for c in destroyed.changes] == [Action.DESTROY]


def test_replace_option_forces_replacement_of_an_unchanged_experiment(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE)
    plan = _plan(config, config, replace=["experiment.mnist"])
    (change,) = plan.changes
    assert change.action is Action.REPLACE and change.attrs == []
    assert change.reasons == ["replacement requested with --replace"]


def test_raising_max_trials_of_a_finished_experiment_continues_it(tmp_path: Path) -> None:
    before = _config(tmp_path, BASE)
    after = _config(tmp_path, BASE.replace("= 40", "= 80"))
    view = _view(before, ExperimentStatus.SUCCEEDED)
    view.progress = Progress(complete=40, asked=40)
    plan = make_plan(
        after,
        {"mnist": view},
        DiffOptions(),
        replace_keys=_replace_keys,
        space_size=lambda exp: None,
    )
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.intent is not None and change.intent.to_run == 40
    assert change.intent.status is ExperimentStatus.RUNNING
    assert change.reasons == ["the new settings let the succeeded experiment continue"]
