"""Where trial models live: the model store behind `${trial.model_dir}` and `model_uri`.

`LocalModelStore` keeps them under `state/models/<experiment>/trials/<number>/` (the
default, no `storage` block); trials write straight into that directory, so nothing is
copied. `S3ModelStore` keeps them on S3-compatible storage (`storage "s3"`). Both offer the
same methods. Retention (`keep`, applied when an experiment ends) and destroy delete whole
trial directories.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


class LocalModelStore:
    def __init__(self, root: Path, keep: Any = "all") -> None:
        self.root = root
        self.keep = keep  # retention: "all", "best" or a number of best trials

    def trial_dir(self, experiment: str, generation: int, number: int) -> Path:
        gen = "" if generation == 1 else f"g{generation}/"
        return self.root / experiment / f"{gen}trials" / str(number)

    def staging_dir(self, experiment: str, generation: int, number: int) -> str:
        """Where the trial writes its model (for local storage: the final place); it
        exists before the trial starts (SPEC 6)."""
        path = self.trial_dir(experiment, generation, number)
        path.mkdir(parents=True, exist_ok=True)
        return str(path.resolve())

    def finish(self, experiment: str, generation: int, number: int) -> str | None:
        """Make the trial's model durable; returns its URI, None when it wrote nothing."""
        path = self.trial_dir(experiment, generation, number)
        if path.is_dir() and any(path.iterdir()):
            return path.resolve().as_uri()
        return None

    def usage(self, experiment: str) -> tuple[int, int]:
        """(files, bytes) stored for an experiment, every generation."""
        base = self.root / experiment
        files = size = 0
        for path in base.rglob("*") if base.is_dir() else ():
            if path.is_file():
                files += 1
                size += path.stat().st_size
        return files, size

    def delete_trials(self, experiment: str, generation: int, numbers: Iterable[int]) -> None:
        for number in numbers:
            shutil.rmtree(self.trial_dir(experiment, generation, number), ignore_errors=True)

    def delete_experiment(self, experiment: str) -> None:
        shutil.rmtree(self.root / experiment, ignore_errors=True)

    def describe(self) -> str:
        return str(self.root)

    def remote_dir(self, experiment: str, generation: int, number: int) -> str | None:
        """Where a trial running elsewhere writes its model; None: it cannot (local disk)."""
        return None


class S3ModelStore:
    """Models on S3-compatible storage, under `<prefix>/<experiment>/trials/<number>/`.

    Trials on the local machine write into a staging directory (under the state's
    directory); `finish` uploads it and removes it, so a crash between the trial's end and
    the upload loses nothing: the adopted trial is finished again and the upload repeated
    (objects are overwritten, never duplicated). Trials that run remotely write straight to
    `remote_dir`.
    """

    def __init__(self, settings: Mapping[str, Any], staging_root: Path, keep: Any = "all") -> None:
        from tunectl.s3 import S3

        self.keep = keep
        self.s3 = S3(settings, 'storage "s3"')
        self.prefix = str(settings.get("prefix") or "").strip("/")
        self.staging_root = staging_root

    def _key(self, experiment: str, generation: int, number: int | None = None) -> str:
        from tunectl.s3 import join

        gen = "" if generation == 1 else f"g{generation}"
        if number is None:
            return join(self.prefix, experiment) + "/"
        return join(self.prefix, experiment, gen, "trials", str(number)) + "/"

    def _staging(self, experiment: str, generation: int, number: int) -> Path:
        return self.staging_root / experiment / f"g{generation}" / "trials" / str(number)

    def staging_dir(self, experiment: str, generation: int, number: int) -> str:
        path = self._staging(experiment, generation, number)
        path.mkdir(parents=True, exist_ok=True)
        return str(path.resolve())

    def remote_dir(self, experiment: str, generation: int, number: int) -> str | None:
        return f"s3://{self.s3.bucket}/{self._key(experiment, generation, number)}"

    def finish(self, experiment: str, generation: int, number: int) -> str | None:
        from tunectl.s3 import files_under

        staging = self._staging(experiment, generation, number)
        key = self._key(experiment, generation, number)
        uploaded = False
        if staging.is_dir():
            for path, name in files_under(staging):
                self.s3.upload_file(path, key + name)
                uploaded = True
            shutil.rmtree(staging, ignore_errors=True)
        if not uploaded and not any(True for _ in self.s3.list(key)):
            return None  # nothing written, here or remotely
        return f"s3://{self.s3.bucket}/{key}"

    def usage(self, experiment: str) -> tuple[int, int]:
        """(objects, bytes) stored for an experiment, every generation."""
        objects = size = 0
        for _key, nbytes in self.s3.list(self._key(experiment, 1)):
            objects += 1
            size += nbytes
        return objects, size

    def delete_trials(self, experiment: str, generation: int, numbers: Iterable[int]) -> None:
        for number in numbers:
            self.s3.delete_prefix(self._key(experiment, generation, number))
            shutil.rmtree(self._staging(experiment, generation, number), ignore_errors=True)

    def delete_experiment(self, experiment: str) -> None:
        self.s3.delete_prefix(self._key(experiment, 1))
        shutil.rmtree(self.staging_root / experiment, ignore_errors=True)

    def describe(self) -> str:
        return f"s3://{self.s3.bucket}/{self.prefix + '/' if self.prefix else ''}"


ModelStore = LocalModelStore | S3ModelStore


def kept_trials(keep: Any, ranked: Sequence[int]) -> set[int] | None:
    """Trial numbers whose models `keep` retains, given complete trials best first.

    None means keep everything (`keep = "all"`).
    """
    if keep in (None, "all"):
        return None
    count = 1 if keep == "best" else int(keep)
    return set(ranked[:count])
