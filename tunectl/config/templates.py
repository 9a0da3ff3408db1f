"""`template` blocks of a trial: configuration files rendered with each trial's values.

```hcl
trial {
  command = "python train.py --config ${trial.model_dir}/config.yaml"
  template {
    source      = "config.yaml.tpl"                  # beside the *.hcl files
    destination = "${trial.model_dir}/config.yaml"   # the trial's own file
    format      = "json"                             # json (the default) | text
  }
}
```

PAI AutoML's `params_src_dst_filepath`. The template language is placeholders only: a
template file may hold `${param.NAME}`, `${trial.id}`, `${trial.number}`,
`${trial.model_dir}`, `${trial.params_json}` and `${experiment.name}`, and `$${` for a
literal `${`. Nothing else is evaluated — no functions, expressions or directives — and
substitution is one pass, so a value's text is never read as a placeholder. How a value is
written (`format`):

* `json`: as a JSON literal — a string in double quotes with `"`, `\\`, newlines and
  control characters escaped, a number or boolean as itself, an inactive conditional
  parameter as `null`. A JSON literal is also a YAML (flow) scalar and a Python literal, so
  in JSON, YAML and Python files a value stays one value, whatever text it holds.
* `text`: the value's text as it is, for files whose own syntax quotes it (a value inside
  `"..."` in an INI file); a value holding a newline, carriage return or NUL is refused,
  so it can never add a line.

This module decodes the blocks (`decode_templates`) and reads and checks the source files
(`read_templates`: each placeholder must name something, located in the template file);
`tunectl.engine.templates` renders them before a trial's first task starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunectl.config.model import Experiment, FileTemplate
from tunectl.config.schema import TEMPLATE_FORMATS, Reader
from tunectl.config.sensitive import refers_to
from tunectl.diags import Diagnostics, SourceFiles, SourceRange, did_you_mean, error
from tunectl.hcl.expr import Scope
from tunectl.hcl.syntax import Body
from tunectl.hcl.values import Template
from tunectl.search.model import ParamSpec

TRIAL_NAMES = ("id", "number", "model_dir", "params_json", "parent_model_dir")
_NAME = re.compile(r"\s*([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)\s*")
MAX_TEMPLATE = 1 << 20  # bytes: a configuration file, not a data set


@dataclass(frozen=True)
class TemplateSyntaxError(ValueError):
    line: int
    column: int
    message: str


Part = str | tuple[str, str, int]  # literal text, or a placeholder's (root, name, line)


def parse(text: str) -> list[Part]:
    """The literal parts and placeholders of a template's text. Raises
    `TemplateSyntaxError` at a `${` that is not one of the placeholders."""
    parts: list[Part] = []
    pos = 0
    literal: list[str] = []
    while True:
        at = text.find("${", pos)
        if at < 0:
            literal.append(text[pos:])
            break
        if at > 0 and text[at - 1] == "$":  # `$${`: a literal `${`
            literal.append(text[pos : at - 1] + "${")
            pos = at + 2
            continue
        literal.append(text[pos:at])
        end = text.find("}", at)
        inner = text[at + 2 : end] if end >= 0 else ""
        match = _NAME.fullmatch(inner) if end >= 0 and "\n" not in inner else None
        if match is None:
            line = text.count("\n", 0, at) + 1
            column = at - (text.rfind("\n", 0, at) + 1) + 1
            shown = text[at : end + 1] if 0 <= end < at + 60 else text[at : at + 20] + "..."
            raise TemplateSyntaxError(
                line,
                column,
                f"{shown!r} is not a placeholder: a template replaces ${{param.NAME}}, "
                "${trial.id}, ${trial.number}, ${trial.model_dir}, ${trial.params_json} and "
                "${experiment.name} only. Write $${ for a literal ${.",
            )
        parts.append("".join(literal))
        literal = []
        parts.append((match.group(1), match.group(2), text.count("\n", 0, at) + 1))
        pos = end + 1
    parts.append("".join(literal))
    return [p for p in parts if p != ""]


def name_problem(root: str, name: str, params: Mapping[str, ParamSpec]) -> str | None:
    """Why a placeholder names nothing, or None."""
    if root == "param":
        if name not in params:
            return f'"param.{name}" is not a param of this experiment.{did_you_mean(name, params)}'
    elif root == "trial":
        if name not in TRIAL_NAMES:
            return (
                f'"trial.{name}" is not a trial placeholder.{did_you_mean(name, TRIAL_NAMES)} '
                f"Use one of: {', '.join(TRIAL_NAMES)}."
            )
    elif (root, name) != ("experiment", "name"):
        return (
            f'"{root}.{name}" is not a placeholder: a template knows param.NAME, trial.* '
            "and experiment.name."
        )
    return None


def decode_templates(
    body: Body,
    scope: Scope,
    context: str,
    diags: Diagnostics,
    provider: Any,
    per_trial: Callable[[Any], bool],
    params: Mapping[str, ParamSpec],
) -> tuple[FileTemplate, ...]:
    """The `template` blocks of a trial block. `per_trial(destination)` says whether a
    destination is a different file for every trial."""
    out = []
    for block in body.blocks_of("template"):
        reader = Reader(block.body, scope, context, diags)
        hidden = [a for a in block.body.attributes.values() if refers_to(a.expr, scope.sensitive)]
        if hidden:
            # A template's settings are shown in plans and kept in the state.
            reader.fail(
                hidden[0],
                "Sensitive value in a template block",
                "A template's source and destination are shown in plans and kept in the "
                "state; they cannot come from a sensitive variable. Pass a secret to the "
                "trial through env.",
            )
            continue
        source = reader.get("source", "string")
        destination = reader.get("destination", "string")
        fmt = reader.get("format", "string", "json")
        if isinstance(source, Template):
            reader.fail(
                block.body.attributes["source"],
                "Value not known until a trial is created",
                "A template's source is one file for every trial: write its path without "
                "${...}; the values go inside the file.",
            )
            continue
        if fmt not in TEMPLATE_FORMATS:
            reader.fail(
                block.body.attributes.get("format"),
                "Invalid value",
                f'format must be "json" or "text", not "{fmt}".',
            )
            continue
        if not provider.capabilities.local_files:
            diags.append(
                error(
                    "Unsupported block",
                    f"A template is rendered into a file on this machine, and the "
                    f"{provider.name} provider's tasks do not see this machine's files. Pass "
                    "the values in the command or env, or write the file in the task.",
                    block.range,
                    context,
                )
            )
            continue
        if destination is not None and not per_trial(destination):
            reader.fail(
                block.body.attributes["destination"],
                "Template destination shared by trials",
                f'The destination "{destination}" would be the same file for every trial, '
                "and trials running at once would overwrite each other's. Make it unique "
                'per trial: destination = "${trial.model_dir}/config.yaml".',
            )
        if source is None or destination is None:
            continue
        if isinstance(destination, Template) and _names_a_directory(destination):
            reader.fail(
                block.body.attributes["destination"],
                "Template destination is a directory",
                "The destination names the trial's model directory, not a file in it: "
                'add the file\'s name, e.g. destination = "${trial.model_dir}/config.yaml".',
            )
            continue
        if isinstance(destination, Template):
            for root, *rest in destination.references():
                problem = name_problem(str(root), str(rest[0]) if rest else "", params)
                if problem:
                    where = block.body.attributes["destination"]
                    reader.fail(where, "Invalid template placeholder", problem)
        out.append(FileTemplate(str(source), destination, fmt, range=block.range))
    return tuple(out)


def _names_a_directory(destination: Template) -> bool:
    """`${trial.model_dir}` (or with a trailing `/`) alone: the directory, not a file."""
    parts = [p for p in destination.parts if not (isinstance(p, str) and p.strip("/") == "")]
    return len(parts) == 1 and isinstance(parts[0], tuple) and tuple(parts[0]) == (
        "trial",
        "model_dir",
    )


def template_entry(tpl: FileTemplate) -> dict[str, str]:
    """A template as plans compare it: an edit of its file changes its digest."""
    digest = hashlib.sha256(tpl.text.encode()).hexdigest()[:16]
    return {
        "source": tpl.source,
        "destination": str(tpl.destination),
        "format": tpl.format,
        "sha256": digest,
    }


def read_templates(
    exp: Experiment, directory: Path, diags: Diagnostics, sources: SourceFiles
) -> None:
    """Read each template's source file into `exp.trial`, and check its placeholders; a
    problem is a diagnostic located in the `template` block or the template file. The
    text joins `sources`: diagnostics quote its lines, and the configuration's digest
    covers it (a saved plan is stale once a template changes)."""
    if not exp.trial.templates:
        return
    params = {p.name: p for p in exp.params}
    context = f'in experiment "{exp.name}"'
    read = []
    for tpl in exp.trial.templates:
        path = Path(tpl.source)
        path = path if path.is_absolute() else directory / path
        try:
            data = path.read_bytes()
            if len(data) > MAX_TEMPLATE:
                raise ValueError(f"it is larger than {MAX_TEMPLATE >> 20} MiB")
            text = data.decode("utf-8")
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if isinstance(exc, UnicodeDecodeError):
                why = "it is not UTF-8 text"
            diags.append(
                error(
                    "Cannot read template",
                    f'The template source "{tpl.source}" cannot be read: {why}.',
                    tpl.range,
                    context,
                )
            )
            continue
        try:
            parts = parse(text)
        except TemplateSyntaxError as exc:
            where = SourceRange(tpl.source, exc.line, column=exc.column)
            diags.append(error("Invalid template placeholder", exc.message, where, context))
            continue
        for part in parts:
            if isinstance(part, tuple) and (problem := name_problem(part[0], part[1], params)):
                where = SourceRange(tpl.source, part[2])
                diags.append(error("Invalid template placeholder", problem, where, context))
        sources.texts.setdefault(tpl.source, text)
        read.append(replace(tpl, text=text))
    exp.trial = replace(exp.trial, templates=tuple(read))
