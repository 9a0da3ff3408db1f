"""Writing HCL for an imported experiment: blocks, attributes and comments, then `fmt`.

Every string is written through `tunectl.hcl.values` (a `Template` keeps its `${...}`
references and escapes a literal `${` as `$${`), and the whole text goes through
`tunectl.hcl.fmt.format_text`, so what the importers write parses and is already in the
layout `tunectl fmt --check` wants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.hcl.fmt import format_text
from tunectl.hcl.values import Template, hcl_text


def literal(text: str) -> Template:
    """`text` as an HCL string with no references (a `${` in it stays text)."""
    return Template([text])


def _strings_as_templates(value: Any) -> Any:
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, list | tuple):
        return [_strings_as_templates(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _strings_as_templates(v) for k, v in value.items()}
    return value


@dataclass
class Block:
    """One HCL block: its type, labels, and items (attributes and blocks) in order."""

    type: str
    labels: tuple[str, ...] = ()
    items: list[tuple[str, Any]] = field(default_factory=list)

    def set(self, name: str, value: Any) -> None:
        """An attribute `name = value`; plain strings are text, `Template`s keep references."""
        self.items.append(("attr", (name, value)))

    def block(self, type_: str, *labels: str) -> Block:
        child = Block(type_, labels)
        self.items.append(("block", child))
        return child

    def lines(self, depth: int = 0) -> list[str]:
        pad = "  " * depth
        head = " ".join([self.type, *(hcl_text(literal(label)) for label in self.labels)])
        if not self.items:
            return [f"{pad}{head} {{}}"]
        out = [f"{pad}{head} {{"]
        previous = ""
        for kind, item in self.items:
            if (kind == "block" and previous in ("attr", "block")) or (
                kind == "attr" and previous == "block"
            ):
                out.append("")
            if kind == "attr":
                name, value = item
                multiline = isinstance(value, Mapping | list) and len(str(value)) > 60
                text = hcl_text(_strings_as_templates(value), multiline=multiline, indent=depth + 1)
                out.append(f"{pad}  {name} = {text}")
            else:
                out.extend(item.lines(depth + 1))
            previous = kind
        out.append(f"{pad}}}")
        return out


def render(blocks: list[Block], header: Sequence[str] = (), filename: str = "main.hcl") -> str:
    """The formatted text of `blocks`, after `header` comment lines."""
    out = [f"# {line}".rstrip() for line in header]
    for block in blocks:
        if out:
            out.append("")
        out.extend(block.lines())
    return format_text("\n".join(out) + "\n", filename)
