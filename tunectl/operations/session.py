"""What the operations share for one command: the configuration, the state backend, the
providers and the model store.

A `Session` loads the configuration on first use, makes the backend its `backend` block
names (`tunectl.states.backend`), instantiates each provider once, and closes them at the
end. It does no operation itself: those are the sibling modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunectl.config.load import load_backend, load_config
from tunectl.config.model import BackendConfig, Config
from tunectl.diags import DiagnosticError, error
from tunectl.engine.models import LocalModelStore, ModelStore
from tunectl.providers import registry
from tunectl.providers.base import Provider
from tunectl.states import State
from tunectl.states.backend import StateBackend, locked, open_backend, state_path, storage_call


def config_id(directory: Path) -> str:
    """Identifies a configuration directory across clones: its path inside the git
    repository (or its own name outside one)."""
    directory = directory.resolve()
    for parent in [directory, *directory.parents]:
        if (parent / ".git").exists():
            rel = directory.relative_to(parent).as_posix()
            return rel if rel != "." else directory.name
    return directory.name


@dataclass
class Session:
    """One command's view of a configuration directory; see the module docstring."""

    directory: Path
    cli_vars: Sequence[str] = ()
    var_files: Sequence[Path] = ()
    lock_timeout: float = 0.0
    _config: Config | None = None
    _providers: dict[str, Provider] = field(default_factory=dict)
    _backend: StateBackend | None = None
    _backend_config: BackendConfig | None = None  # set by `load_for_init` alone

    # -- configuration ------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.directory, self.cli_vars, self.var_files)
        return self._config

    @property
    def backend_config(self) -> BackendConfig:
        if self._backend_config is not None:
            return self._backend_config
        return self.config.backend

    def load_for_init(self) -> list[str]:
        """Load what `init` needs; return the names of the providers the configuration uses.

        As Terraform's init, it needs no variable values unless the backend uses them: when
        the configuration lacks only such values, just the backend is evaluated.
        """
        try:
            config = self.config
        except DiagnosticError as exc:
            if any(d.summary != "No value for required variable" for d in exc.diags.errors()):
                raise
            self._backend_config, names = load_backend(
                self.directory, self.cli_vars, self.var_files
            )
            return names
        return sorted(
            {e.trial.provider for e in config.experiments.values()} | set(config.providers)
        )

    # -- state --------------------------------------------------------------------------

    def state_path(self) -> Path:
        """The SQLite file commands work on (for an S3 backend: the working copy)."""
        backend = self.backend_config
        return state_path(backend.kind, backend.settings, self.directory)

    @property
    def backend(self) -> StateBackend:
        if self._backend is None:
            config = self.backend_config
            self._backend = open_backend(config.kind, config.settings, self.directory)
        return self._backend

    @contextlib.contextmanager
    def locked(self, operation: str) -> Iterator[None]:
        with locked(self.backend, operation, self.lock_timeout):
            yield

    def open_state(self, create: bool) -> State:
        """Open the state; with an S3 backend, download it first (once per command)."""
        return self.backend.open(create=create, config_id=config_id(self.directory))

    def save(self, state: State, *, force: bool = True, ahead: bool = False) -> None:
        """Persist the state (see `StateBackend.persist`; a no-op for a local state)."""
        self.backend.persist(state, force=force, ahead=ahead)

    def models(self) -> ModelStore:
        storage = self.config.storage
        keep = storage.settings.get("keep", "all")
        if storage.kind == "s3":
            from tunectl.engine.models import S3ModelStore

            staging = self.state_path().parent / "models-staging"
            return storage_call(lambda: S3ModelStore(storage.settings, staging, keep))
        path = Path(str(storage.settings.get("path", "state/models")))
        return LocalModelStore(path if path.is_absolute() else self.directory / path, keep)

    # -- providers ----------------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            try:
                cls = registry.load(name)
            except KeyError:
                raise DiagnosticError(
                    error(
                        "Unknown provider",
                        f'The state has tasks on provider "{name}", which is not installed. '
                        f"Install it to manage those tasks.",
                    )
                ) from None
            settings = self.config.providers[name].settings if name in self.config.providers else {}
            if not settings:
                settings = {s.name: s.default for s in cls.config_schema if s.default is not None}
            self._providers[name] = cls(settings, self.state_path().parent)
        return self._providers[name]

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()
