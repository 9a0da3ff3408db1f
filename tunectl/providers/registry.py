"""Discovery of provider plugins through the `tunectl.providers` entry-point group.

Built-in and third-party providers register the same way. Entry points are listed
cheaply; a provider's module is imported only when the configuration names it. A plugin
that fails to import is reported as a diagnostic for configurations that use it, and shown
as broken by `tunectl providers`; it never breaks other providers.

`register` adds a provider class to this process only, without an entry point: tests use
it for `tunectl.testing.fake.FakeProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from tunectl.providers.base import Provider

GROUP = "tunectl.providers"


@dataclass(frozen=True)
class ProviderEntry:
    name: str
    value: str  # "module:Class"
    distribution: str
    version: str


# Providers registered in this process by `register`, by name.
_registered: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> Callable[[], None]:
    """Make `cls` the provider named `cls.name` in this process (over an installed one of
    that name); returns the function that undoes it."""
    previous = _registered.get(cls.name)
    _registered[cls.name] = cls

    def undo() -> None:
        if previous is None:
            _registered.pop(cls.name, None)
        else:
            _registered[cls.name] = previous

    return undo


def entries() -> dict[str, ProviderEntry]:
    found = dict(_installed())
    for name, cls in _registered.items():
        found[name] = ProviderEntry(name, f"{cls.__module__}:{cls.__qualname__}", "-", cls.version)
    return found


@cache
def _installed() -> dict[str, ProviderEntry]:
    found: dict[str, ProviderEntry] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist
        found[ep.name] = ProviderEntry(
            name=ep.name,
            value=ep.value,
            distribution=dist.name if dist else "?",
            version=dist.version if dist else "?",
        )
    return found


class ProviderLoadError(Exception):
    """The provider is installed but its module cannot be imported."""


def load(name: str) -> type[Provider]:
    """The provider class registered as `name`; KeyError when none is installed."""
    if name in _registered:
        return _registered[name]
    return _load_installed(name)


@cache
def _load_installed(name: str) -> type[Provider]:
    entry = _installed()[name]
    try:
        (ep,) = [e for e in metadata.entry_points(group=GROUP) if e.name == name]
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not crash tunectl
        raise ProviderLoadError(
            f"the provider {name!r} ({entry.distribution} {entry.version}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ProviderLoadError(f"{entry.value} is not a tunectl Provider class")
    return cls
