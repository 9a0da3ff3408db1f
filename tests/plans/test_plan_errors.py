"""Plan-time errors are diagnostics: a summary, the sentence plans always gave, and where
the configuration causes them."""

from __future__ import annotations

from pathlib import Path

from test_differ_table import BASE, _config, _plan, _view

from tunectl.diags import render
from tunectl.plans.differ import DiffOptions, make_plan

PROTECTED = BASE.replace(
    "    ignore_changes = IGNORED\n", "    ignore_changes = IGNORED\n    prevent_destroy = true\n"
)
LIFECYCLE_LINE = PROTECTED.splitlines().index("  lifecycle {") + 1


def test_prevent_destroy_points_at_the_lifecycle_block(tmp_path: Path) -> None:
    config = _config(tmp_path, PROTECTED)
    plan = _plan(config, _config(tmp_path, PROTECTED.replace("high = 1e-1", "high = 5e-1")))
    (diag,) = plan.errors
    assert diag.severity == "error" and diag.summary == "Experiment cannot be destroyed"
    assert diag.detail == (
        "experiment.mnist has lifecycle.prevent_destroy set, but the plan calls for it to be "
        "replaced, which destroys its trials and models. Remove prevent_destroy to allow it, "
        "or undo the change that forces replacement."
    )
    assert diag.subject is not None
    assert (diag.subject.filename, diag.subject.line) == ("main.hcl", LIFECYCLE_LINE)
    assert diag.context == 'in experiment "mnist"'
    assert plan.to_json()["errors"] == [diag.detail]

    destroyed = _plan(config, config, destroy=True)
    (diag,) = destroyed.errors
    assert "the plan calls for it to be destroyed" in diag.detail
    text = render(diag, {"main.hcl": PROTECTED})
    assert f"  {LIFECYCLE_LINE}:   lifecycle {{" in text


def test_unknown_addresses_in_options(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE)
    plan = _plan(
        config,
        config,
        targets=["experiment.nope", "experiment.mnist.trial[3]"],
        replace=["experiment.gone"],
    )
    assert [(d.summary, d.detail, d.subject) for d in plan.errors] == [
        (
            "Invalid --replace address",
            "--replace experiment.gone: no experiment with that address is in the configuration.",
            None,
        ),
        (
            "Invalid --target address",
            "--target experiment.nope: no experiment with that address in the configuration "
            "or the state.",
            None,
        ),
    ]
    # A trial's address targets its experiment; an experiment only in the state is known.
    assert [c.address for c in plan.changes] == ["experiment.mnist"]
    only_state = make_plan(
        None,
        {"mnist": _view(config)},
        DiffOptions(targets=["experiment.mnist"]),
        replace_keys=lambda provider: (),
        space_size=lambda exp: None,
    )
    assert only_state.errors == []
