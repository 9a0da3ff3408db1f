"""NNI's search space (`{"KEY": {"_type": T, "_value": V}}`) as `param` blocks.

NNI's types are tunectl's, with the same semantics (docs/language.md, "Parameters"), so
each key becomes one `param` block. A PAI key written as a placeholder (`${lr}`) becomes
`param "lr"`. A key that is not a tunectl name is renamed (and noted: the trial then gets
the new name). A nested `choice` (options that are maps with `_name`) becomes a choice of
the option names, and each option's own parameters become parameters that exist `when`
that option is chosen: the trial gets them flat, not nested in the option (noted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunectl.importers.hclwriter import Block
from tunectl.importers.model import Notes, fail
from tunectl.names import is_valid_name

# _type -> the names of its _value items, in order (the last ones optional: none here)
SHAPES: dict[str, tuple[str, ...]] = {
    "randint": ("low", "high"),
    "uniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "loguniform": ("low", "high"),
    "qloguniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
}
TYPES = ("choice", *SHAPES)
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def param_name(key: str) -> str:
    """The tunectl name of a search-space key: `${lr}` -> `lr`, `conv size` -> `conv_size`."""
    whole = PLACEHOLDER.fullmatch(key.strip())
    text = whole.group(1) if whole else key
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text.strip()).strip("_")[:64]
    if not name or not name[0].isalpha():
        name = ("p_" + name)[:64]
    return name


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class SpaceReader:
    """Turns one search space into param blocks; `names` maps each key to its param name."""

    def __init__(self, path: Path, notes: Notes, where: str) -> None:
        self.path = path
        self.notes = notes
        self.where = where
        self.names: dict[str, str] = {}
        self.blocks: list[Block] = []
        # nested choices: param -> {inner key: inner param}, for the nni module to nest
        self.nested: dict[str, dict[str, str]] = {}
        self.reserved: set[str] = set()

    def read(self, space: Any) -> list[Block]:
        if not isinstance(space, Mapping) or not space:
            fail(
                "Invalid search space",
                f"The search space in {self.path.name} must be a non-empty mapping of "
                'parameter names to {"_type": ..., "_value": ...}.',
                self.path,
            )
        # A key that is a name already keeps it; a renamed key yields to it.
        self.reserved = {str(k) for k in space if param_name(str(k)) == str(k)}
        for key, spec in space.items():
            self._param(str(key), spec, None)
        return self.blocks

    def _name(self, key: str) -> str:
        name = param_name(key)
        taken = set(self.names.values()) | (self.reserved - {key})
        base, n = name, 2
        while name in taken:
            name = f"{base}_{n}"[:64]
            n += 1
        if name != key and PLACEHOLDER.fullmatch(key.strip()) is None:
            self.notes.add(
                f"{self.where}.{key}",
                f'"{key}" is not a tunectl name: it is param "{name}", and the trial gets '
                f'it as "{name}".',
            )
        if not is_valid_name(name):  # pragma: no cover - param_name always makes one
            fail("Invalid parameter name", f'"{key}" cannot be made a tunectl name.')
        self.names[key] = name
        return name

    def _param(self, key: str, spec: Any, when: dict[str, Any] | None) -> None:
        where = f"{self.where}.{key}"
        if not isinstance(spec, Mapping) or "_type" not in spec or "_value" not in spec:
            fail(
                "Invalid search space",
                f'Parameter "{key}" in {self.path.name} must be {{"_type": ..., "_value": ...}}}}.',
                self.path,
            )
        type_, value = spec["_type"], spec["_value"]
        if type_ not in TYPES:
            fail(
                "Unknown parameter type",
                f'Parameter "{key}" in {self.path.name} has _type {type_!r}; the types are '
                + ", ".join(TYPES)
                + ".",
                self.path,
            )
        name = self._name(key)
        block = Block("param", (name,))
        self.blocks.append(block)
        block.set("type", type_)
        if type_ == "choice":
            self._choice(name, key, block, value, where)
        else:
            shape = SHAPES[type_]
            if (
                not isinstance(value, list)
                or len(value) != len(shape)
                or not all(_number(v) for v in value)
            ):
                fail(
                    "Invalid search space",
                    f'Parameter "{key}" ({type_}) in {self.path.name} needs _value = '
                    f"[{', '.join(shape)}] (numbers), not {value!r}.",
                    self.path,
                )
            for attr, v in zip(shape, value, strict=True):
                block.set(attr, v)
        if when:
            block.set("when", when)

    def _choice(self, name: str, key: str, block: Block, value: Any, where: str) -> None:
        if not isinstance(value, list) or not value:
            fail(
                "Invalid search space",
                f'Parameter "{key}" (choice) in {self.path.name} needs a non-empty list of '
                "options as _value.",
                self.path,
            )
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            fail(
                "Invalid search space",
                f'Parameter "{key}" (choice) in {self.path.name} has a NaN or infinite option.',
                self.path,
            )
        nested = [v for v in value if isinstance(v, Mapping)]
        if not nested:
            block.set("values", list(value))
            return
        if len(nested) != len(value) or not all("_name" in v for v in nested):
            fail(
                "Invalid search space",
                f'Parameter "{key}" in {self.path.name} mixes nested options (maps with '
                "_name) and plain values, or has a nested option without _name.",
                self.path,
            )
        block.set("values", [option["_name"] for option in nested])
        self.notes.add(
            where,
            "a nested choice: its options' parameters are parameters of their own that "
            f"exist when {name} is that option (when = {{ {name} = OPTION }}); the nni "
            "module nests them back as NNI gives them (TUNECTL_NNI_NESTED), tunectl.report "
            "and ${trial.params_json} see them flat.",
        )
        inner_names = self.nested.setdefault(name, {})
        for option in nested:
            for inner, spec in option.items():
                if inner != "_name":
                    self._param(str(inner), spec, {name: option["_name"]})
                    inner_names[str(inner)] = self.names[str(inner)]
