"""Where trial models live: the model store behind `${trial.model_dir}` and `model_uri`.

`LocalModelStore` keeps them under `state/models/<experiment>/trials/<number>/` (the
default, no `storage` block). Trials write straight into that directory, so nothing is
copied. Retention (`keep`) and destroy delete whole trial directories.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path


class LocalModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def trial_dir(self, experiment: str, generation: int, number: int) -> Path:
        gen = "" if generation == 1 else f"g{generation}/"
        return self.root / experiment / f"{gen}trials" / str(number)

    def staging_dir(self, experiment: str, generation: int, number: int) -> str:
        """Where the trial writes its model (for local storage: the final place)."""
        return str(self.trial_dir(experiment, generation, number).resolve())

    def finish(self, experiment: str, generation: int, number: int) -> str | None:
        """Make the trial's model durable; returns its URI, None when it wrote nothing."""
        path = self.trial_dir(experiment, generation, number)
        if path.is_dir() and any(path.iterdir()):
            return path.resolve().as_uri()
        return None

    def usage(self, experiment: str) -> tuple[int, int]:
        """(model directories, bytes) stored for an experiment, every generation."""
        base = self.root / experiment
        if not base.is_dir():
            return 0, 0
        models = size = 0
        for trials in base.glob("**/trials"):
            for trial in trials.iterdir():
                models += 1
                size += sum(f.stat().st_size for f in trial.rglob("*") if f.is_file())
        return models, size

    def delete_trials(self, experiment: str, generation: int, numbers: Iterable[int]) -> None:
        for number in numbers:
            shutil.rmtree(self.trial_dir(experiment, generation, number), ignore_errors=True)

    def delete_experiment(self, experiment: str) -> None:
        shutil.rmtree(self.root / experiment, ignore_errors=True)

    def describe(self) -> str:
        return str(self.root)
