"""tunectl's schema: the block schemas of every block, and its own attribute types.

The tables here say what each block of the language (SPEC 2) may hold; `load.py` checks
the whole configuration against `ROOT_SCHEMA` before decoding anything. The generic
machinery (`AttrSpec`, `BlockSchema`, `check_body`, `Reader`) is HCL's, in
`tunectl.hcl.schema`; this module adds the types only tunectl has: "duration" (`"30m"`,
or seconds) and "command" (a shell string or an argv list), and a `Reader` that knows
them and allows the placeholders of a trial (`${param.*}`, `${trial.*}`,
`${experiment.*}`) where a value may wait for its trial.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tunectl.durations import parse_duration
from tunectl.hcl import schema as hcl_schema
from tunectl.hcl.schema import AttrSpec, BlockSchema, NestedBlock, attributes
from tunectl.hcl.values import Template
from tunectl.search.algorithms import ALGORITHMS
from tunectl.search.pruners import PRUNERS

TYPE_WORDS = {
    "duration": 'a duration such as "30m" or "2h"',
    "command": "a string or a list of strings",
}


def convert(value: Any, type_: str) -> Any:
    """`tunectl.hcl.schema.convert`, and tunectl's "duration" and "command" types."""
    if type_ == "duration":
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str):
            return parse_duration(value)
    elif type_ == "command":
        if isinstance(value, str | Template):
            if not str(value).strip():
                raise ValueError("must not be empty")
            return value
        if isinstance(value, list) and value:
            for item in value:
                if not isinstance(item, str | Template | int | float) or isinstance(item, bool):
                    raise ValueError("must be a list of strings")
            return [v if isinstance(v, str | Template) else str(v) for v in value]
    else:
        return hcl_schema.convert(value, type_)
    got = hcl_schema.type_name(value)
    raise ValueError(f"{TYPE_WORDS[type_]} is required, but got {got}")


class Reader(hcl_schema.Reader):
    """A `tunectl.hcl.schema.Reader` that knows tunectl's types and placeholders."""

    TEMPLATE_TYPES: ClassVar[frozenset[str]] = frozenset({"string", "command", "any"})
    DEFERRED_SUMMARY: ClassVar[str] = "Value not known until a trial is created"
    DEFERRED_DETAIL: ClassVar[str] = (
        '"{name}" cannot use ${{param.*}}, ${{trial.*}} or ${{experiment.*}}.'
    )

    def convert(self, value: Any, type_: str) -> Any:
        return convert(value, type_)


def _s(name: str, type_: str = "any", required: bool = False) -> AttrSpec:
    return AttrSpec(name, type_, required=required)


# Blocks whose attributes are read by the code that decodes them (algorithm settings,
# provider settings, ...).
OPEN = BlockSchema(open_attrs=True)

METRICS_KINDS = ("stdout", "json", "tensorboard", "table")
# The attributes each kind of metrics source reads; others are accepted with a warning.
METRICS_READS = {
    "stdout": ("pattern", "name"),
    "json": ("path",),
    "tensorboard": ("logdir", "tag"),
    "table": ("sql",),
}
METRICS_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("pattern", "string"),
        _s("name", "string"),
        _s("path", "string"),
        _s("logdir", "string"),
        _s("sql", "string"),
        _s("tag", "string"),
    )
)
# The attributes of a task (and of a trial, for its tasks) that tunectl reads; any other
# is the provider's (`Provider.trial_schema`).
TASK_ATTRS = (
    _s("provider", "string"),
    _s("command", "command"),
    _s("workdir", "string"),
    _s("env", "map"),
    _s("timeout", "duration"),
)
METRICS_BLOCK = NestedBlock(METRICS_SCHEMA, labels=("kind",), label_choices=METRICS_KINDS)
TEMPLATE_FORMATS = ("json", "text")
TEMPLATE_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("source", "string", required=True),
        _s("destination", "string", required=True),
        _s("format", "string"),
    )
)
TASK_SCHEMA = BlockSchema(
    attrs=attributes(*TASK_ATTRS),
    blocks={"metrics": METRICS_BLOCK},
    open_attrs=True,  # provider-specific attributes, checked against the provider's schema
)
TRIAL_SCHEMA = BlockSchema(
    attrs=attributes(*TASK_ATTRS, _s("retries", "int")),
    blocks={
        "metrics": METRICS_BLOCK,
        "task": NestedBlock(TASK_SCHEMA, labels=("name",)),
        "template": NestedBlock(TEMPLATE_SCHEMA),
    },
    open_attrs=True,
)
PARAM_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("type", "string", required=True),
        _s("low", "number"),
        _s("high", "number"),
        _s("q", "number"),
        _s("mu", "number"),
        _s("sigma", "number"),
        _s("values", "list"),
        _s("step", "number"),
        _s("log", "bool"),
        _s("when", "map"),
    )
)
OBJECTIVE_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("metric", "string"),
        _s("metrics"),  # a map of weights, or a list of names with `directions`
        _s("direction", "string"),  # required unless `directions` (experiment.py)
        _s("directions", "list(string)"),
        _s("goal", "number"),
        _s("reduce", "string"),
        _s("sources_reduce", "string"),
    )
)
SCHEDULE_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("days", "list"), _s("start", "string"), _s("end", "string"), _s("timezone", "string")
    )
)
NOTIFY_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("url", "string", required=True),
        _s("on", "list"),
        _s("format", "string"),
        _s("keyword", "string"),
    )
)
WARM_START_SCHEMA = BlockSchema(attrs=attributes(_s("from", required=True), _s("top", "int")))
LIFECYCLE_SCHEMA = BlockSchema(
    attrs=attributes(_s("prevent_destroy", "bool"), _s("ignore_changes", "list"))
)
EXPERIMENT_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("description", "string"),
        _s("max_trials", "int", required=True),
        _s("max_concurrent", "int"),
        _s("max_failed_trials", "int"),
        _s("max_duration", "duration"),
        _s("max_cost", "number"),
        _s("max_trials_without_improvement", "int"),
        _s("enqueue", "list"),
        _s("warm_start", "bool"),
    ),
    blocks={
        "algorithm": NestedBlock(OPEN, ("name",), 1, True, tuple(ALGORITHMS)),
        "objective": NestedBlock(OBJECTIVE_SCHEMA, (), 1, True),
        "early_stopping": NestedBlock(OPEN, ("name",), 1, False, tuple(PRUNERS)),
        "param": NestedBlock(PARAM_SCHEMA, ("name",)),
        "trial": NestedBlock(TRIAL_SCHEMA, (), 1, True),
        "lifecycle": NestedBlock(LIFECYCLE_SCHEMA, (), 1),
        "schedule": NestedBlock(SCHEDULE_SCHEMA, (), 1),
        "notify": NestedBlock(NOTIFY_SCHEMA, ("kind",), 1, False, ("webhook",)),
        "warm_start": NestedBlock(WARM_START_SCHEMA, (), 1),
    },
)
VARIABLE_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("type"),
        _s("default"),
        _s("description", "string"),
        _s("sensitive", "bool"),
        _s("nullable", "bool"),
    ),
    blocks={
        "validation": NestedBlock(
            BlockSchema(
                attrs=attributes(
                    _s("condition", required=True), _s("error_message", "string", required=True)
                )
            )
        )
    },
)
OUTPUT_SCHEMA = BlockSchema(
    attrs=attributes(
        _s("value", required=True), _s("description", "string"), _s("sensitive", "bool")
    )
)
BACKEND_KINDS = ("local", "s3")
STORAGE_KINDS = ("local", "s3")
ROOT_SCHEMA = BlockSchema(
    blocks={
        "tunectl": NestedBlock(
            BlockSchema(
                attrs=attributes(_s("required_version", "string")),
                blocks={"backend": NestedBlock(OPEN, ("kind",), 1, False, BACKEND_KINDS)},
            ),
            (),
            1,
        ),
        "variable": NestedBlock(OPEN, ("name",)),
        "locals": NestedBlock(OPEN),
        "provider": NestedBlock(OPEN, ("name",)),
        "storage": NestedBlock(OPEN, ("kind",), 1, False, STORAGE_KINDS),
        "experiment": NestedBlock(EXPERIMENT_SCHEMA, ("name",)),
        "output": NestedBlock(OUTPUT_SCHEMA, ("name",)),
    }
)

# The settings of `tunectl { backend "KIND" { ... } }` and `storage "KIND" { ... }`.
BACKEND_SCHEMAS: dict[str, tuple[AttrSpec, ...]] = {
    "local": (AttrSpec("path"),),
    "s3": (
        AttrSpec("bucket"),
        AttrSpec("key"),
        AttrSpec("endpoint"),
        AttrSpec("region"),
        AttrSpec("profile"),
        AttrSpec("force_path_style", "bool"),
        AttrSpec("retry_window"),
    ),
}
STORAGE_SCHEMAS: dict[str, tuple[AttrSpec, ...]] = {
    "local": (AttrSpec("path"), AttrSpec("keep", "any")),
    "s3": (
        AttrSpec("bucket"),
        AttrSpec("prefix"),
        AttrSpec("endpoint"),
        AttrSpec("region"),
        AttrSpec("profile"),
        AttrSpec("force_path_style", "bool"),
        AttrSpec("keep", "any"),
        AttrSpec("retry_window"),
    ),
}
# Checked after the values are read: a null or mistyped value counts as missing.
REQUIRED_SETTINGS = {("backend", "s3"): ("bucket", "key"), ("storage", "s3"): ("bucket",)}
