"""docs/pai-automl.md keeps in step with the schema: every HCL path it cites
(`experiment.trial.image`, `experiment.algorithm.tpe.gamma`, `provider.dlc.region`, ...)
and every placeholder (`${trial.model_dir}`) exists in tunectl, and it covers every part
of PAI AutoML's configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tunectl.config.schema import METRICS_READS, ROOT_SCHEMA, STORAGE_SCHEMAS
from tunectl.hcl.schema import BlockSchema
from tunectl.providers import registry
from tunectl.search.algorithms import ALGORITHMS
from tunectl.search.params import PARAM_TYPES
from tunectl.search.pruners import PRUNERS

DOC = Path(REPO) / "docs" / "pai-automl.md"
ROOTS = ("experiment", "provider", "storage")
PLACEHOLDERS = {"trial.id", "trial.number", "trial.model_dir", "trial.params_json"}
PLACEHOLDERS |= {"experiment.name", "trial.parent_model_dir"}


def spans(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def cited_paths(text: str) -> list[str]:
    return sorted(
        {s for s in spans(text) if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", s)}
        & {s for s in spans(text) if s.split(".")[0] in ROOTS}
    )


def _providers() -> dict:
    return {name: registry.load(name) for name in ("local", "dlc", "maxcompute")}


def _trial_setting(name: str) -> bool:
    """A provider's trial setting or task body (`image`, `pai`, `sql`)."""
    return any(
        name in {a.name for a in p.trial_schema} | {b.name for b in p.task_bodies}
        for p in _providers().values()
    )


def resolves(path: str) -> bool:
    """Whether `path` names an attribute, block, label or setting tunectl's schema has."""
    root, *rest = path.split(".")
    if root == "provider":
        provider = _providers().get(rest[0])
        return provider is not None and (
            len(rest) == 1
            or (len(rest) == 2 and rest[1] in {a.name for a in provider.config_schema})
        )
    if root == "storage":
        specs = STORAGE_SCHEMAS.get(rest[0])
        return specs is not None and (len(rest) == 1 or rest[1:] in [[s.name] for s in specs])
    schema: BlockSchema = ROOT_SCHEMA.blocks[root].schema
    trail = [root]
    while rest:
        name, *rest = rest
        if name in schema.attrs:
            return not rest
        nested = schema.blocks.get(name)
        if nested is None:
            if trail[-1] in ("trial", "task") or trail[-2:-1] == ["task"]:
                return not rest and _trial_setting(name)
            if trail[-1] == "param":
                return not rest and name in PARAM_TYPES
            return False
        trail.append(name)
        if nested.label_choices and rest:
            label, *rest = rest
            if label not in nested.label_choices:
                return False
            registry_ = {"algorithm": ALGORITHMS, "early_stopping": PRUNERS}.get(name)
            if registry_ is not None:
                return not rest or (len(rest) == 1 and rest[0] in registry_[label].settings)
            if name == "metrics":
                return not rest or (len(rest) == 1 and rest[0] in METRICS_READS[label])
        schema = nested.schema
    return True


def test_the_resolver_refuses_what_does_not_exist() -> None:
    for good in (
        "experiment.max_trials",
        "experiment.algorithm.tpe.gamma",
        "experiment.trial.metrics.table.sql",
        "experiment.trial.image",
        "provider.dlc.region",
        "storage.s3.bucket",
        "experiment.param.quniform",
        "experiment.schedule.days",
        "experiment.notify.webhook.url",
    ):
        assert resolves(good), good
    for bad in (
        "experiment.max_trial",
        "experiment.algorithm.tpe.gama",
        "experiment.algorithm.hyperopt",
        "experiment.early_stopping.pai.optimize_mode",
        "experiment.trial.metrics.table.path",
        "experiment.trial.imag",
        "experiment.schedule.day",
        "experiment.notify.dingtalk.url",
        "provider.dlc.access_key",
        "provider.maxcompute.access_id",
        "experiment.trial.task.pia",
        "storage.s3.bukket",
        "experiment.param.qrandint",
    ):
        assert not resolves(bad), bad


def test_every_cited_hcl_path_exists() -> None:
    paths = cited_paths(DOC.read_text())
    assert len(paths) > 60  # the check reads the table, not nothing
    missing = [p for p in paths if not resolves(p)]
    assert not missing, f"docs/pai-automl.md cites names the schema does not have: {missing}"


def test_every_cited_placeholder_exists() -> None:
    text = DOC.read_text()
    cited = set(re.findall(r"\$\{((?:trial|experiment|param)\.[a-z_]+)\}", text))
    assert cited - {c for c in cited if c.startswith("param.")} <= PLACEHOLDERS, cited


@pytest.mark.parametrize(
    "part",
    [
        "## Experiment",
        "## Tuner arguments",
        "## Early stopping",
        "## Metrics",
        "## Output, schedule, monitor",
        "## Trial commands and substitution",
        "## MaxCompute",
        "## DLC",
        "## Search space",
    ],
)
def test_every_part_of_pai_automls_configuration_has_a_section(part: str) -> None:
    assert f"\n{part}" in DOC.read_text()


def test_every_algorithm_pai_names_and_every_nni_type_is_covered() -> None:
    text = DOC.read_text()
    for tuner in ("TPE", "Random", "GridSearch", "Evolution", "GP", "PBT"):
        assert f"| {tuner} |" in text, tuner
    for nni_type in (
        "choice",
        "randint",
        "uniform",
        "quniform",
        "loguniform",
        "qloguniform",
        "normal",
        "qnormal",
        "lognormal",
        "qlognormal",
    ):
        assert f"| `{nni_type}` |" in text, nni_type
    for arg in ("start_step", "moving_avg", "proportion", "patience", "earlystop", "platform"):
        assert f"| `{arg}` |" in text, arg
