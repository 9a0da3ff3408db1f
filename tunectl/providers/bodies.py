"""Task bodies: what a task runs, and how a placeholder's value is quoted inside it.

A provider declares the bodies its tasks take (`Provider.task_bodies`): each `BodySpec`
names an attribute of the task block and the kinds it accepts, one per shape (a string or
a list). The kind owns the quoting rules: core renders every `${param.*}` / `${trial.*}`
through it (`tunectl.engine.trials.build_request`) and asks it, at `validate`, which
placeholders sit where no quoting is safe. Core never assumes a shell.

Kinds shipped with tunectl:

* `SHELL` — a string run as `/bin/sh -c BODY`: values are quoted for where they sit, and
  unsafe positions are refused (`tunectl.providers.shell`);
* `ARGV` — a list run without a shell: each element is one argument, values go in as they
  are;
* `TEXT` — a string handed over as data (the test provider's scripts): values go in as
  they are.

A provider with another language (SQL string literals, XFlow `-Dkey=value` arguments)
subclasses `BodyKind` with that language's rules and declares it on its own body name.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tunectl.hcl.expr import Path, Template
from tunectl.providers.shell import UnsafePlaceholder, command_line, placeholder_slots

Shape = Literal["string", "list"]
Resolve = Callable[[Path], object]


class BodyKind(abc.ABC):
    """The quoting rules of one body language. Implementations are stateless."""

    name: ClassVar[str]
    shape: ClassVar[Shape]

    @abc.abstractmethod
    def refusals(self, value: Any) -> list[str]:
        """Why each placeholder of `value` that no quoting makes safe is refused (shown by
        `validate`); empty when every placeholder can be rendered."""

    @abc.abstractmethod
    def render(self, value: Any, resolve: Resolve) -> str | list[str]:
        """`value` with each placeholder replaced by its quoted value. Raises
        `UnsafePlaceholder` for a placeholder `refusals` reports."""


def _text(value: Any, resolve: Resolve) -> str:
    if isinstance(value, Template):
        return value.render(resolve)
    return str(value)


class ShellKind(BodyKind):
    """A POSIX shell command line; see `tunectl.providers.shell` for the rules."""

    name = "shell"
    shape = "string"

    def refusals(self, value: Any) -> list[str]:
        if not isinstance(value, Template):
            return []
        return [s.refusal for s in placeholder_slots(value.parts) if s.refusal is not None]

    def render(self, value: Any, resolve: Resolve) -> str:
        if not isinstance(value, Template):
            return str(value)
        return command_line(value, resolve)


class ArgvKind(BodyKind):
    """A program and its arguments, run without a shell: nothing is re-read as code."""

    name = "argv"
    shape = "list"

    def refusals(self, value: Any) -> list[str]:
        return []

    def render(self, value: Any, resolve: Resolve) -> list[str]:
        return [_text(part, resolve) for part in value]


class TextKind(BodyKind):
    """Text handed over as data, never parsed by a shell: values go in verbatim."""

    name = "text"
    shape = "string"

    def refusals(self, value: Any) -> list[str]:
        return []

    def render(self, value: Any, resolve: Resolve) -> str:
        return _text(value, resolve)


SHELL = ShellKind()
ARGV = ArgvKind()
TEXT = TextKind()


@dataclass(frozen=True)
class BodySpec:
    """One body attribute of a task block, and the kinds it accepts (one per shape).

    `noun` names the body in messages ("Unsafe placeholder in a command").
    """

    name: str
    kinds: Sequence[BodyKind]
    noun: str = ""
    description: str = ""

    def kind_for(self, value: Any) -> BodyKind:
        """The kind that renders `value`: by its shape (a list, else a string)."""
        shape: Shape = "list" if isinstance(value, list | tuple) else "string"
        for kind in self.kinds:
            if kind.shape == shape:
                return kind
        raise ValueError(f'"{self.name}" cannot be a {shape}')

    def render(self, value: Any, resolve: Resolve) -> str | list[str]:
        return self.kind_for(value).render(value, resolve)


COMMAND = BodySpec(
    "command",
    (SHELL, ARGV),
    noun="a command",
    description="A shell command line (a string) or a program and its arguments (a list).",
)

__all__ = [
    "ARGV",
    "COMMAND",
    "SHELL",
    "TEXT",
    "BodyKind",
    "BodySpec",
    "UnsafePlaceholder",
]
