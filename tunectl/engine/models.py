"""Where trial models live: the model store behind `${trial.model_dir}` and `model_uri`.

Layout (the same under a local `path` and under an S3 `prefix`):

    <experiment>/<lineage>/g<generation>/trials/<number>/

The state's lineage makes the place unique per state, so two configurations that share a
bucket, prefix and experiment name never write into each other's trials; the generation
(drawn once per lineage, never reused) makes it unique per creation of the experiment, so
a recreated experiment never finds the old one's files. Generations made before the upgrade
that introduced this layout keep the layout they were given: `<experiment>/[g<G>/]trials/<N>/`.

What a trial stored is recorded in the state when it ends (`record`), and destroy and
`keep` delete exactly the recorded files and objects (`delete_stored`), never "everything
under a prefix". `LocalModelStore` keeps models on the local disk (the default,
`state/models/`); trials write straight into their directory. `S3ModelStore` keeps them on
S3-compatible storage (`storage "s3"`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunectl import private_files
from tunectl.states import State, TrialRecord

Stored = list[tuple[str, int]]  # (location, size) of each file or object a trial stored


@dataclass(frozen=True)
class Generation:
    """One creation of an experiment in one state: what a model's place is derived from.

    `lineage` is None for a generation made before model paths held the lineage (it keeps
    the older layout).
    """

    experiment: str
    number: int
    lineage: str | None

    @classmethod
    def of(cls, state: State, experiment: str, generation: int) -> Generation:
        legacy = state.is_legacy_generation(generation)
        return cls(experiment, generation, None if legacy else state.lineage)

    def parts(self, number: int) -> tuple[str, ...]:
        """The path segments of trial `number`'s directory."""
        if self.lineage is None:
            gen = () if self.number == 1 else (f"g{self.number}",)
            return (self.experiment, *gen, "trials", str(number))
        return (self.experiment, self.lineage, f"g{self.number}", "trials", str(number))


class LocalModelStore:
    def __init__(self, root: Path, keep: Any = "all") -> None:
        self.root = root
        self.keep = keep  # retention: "all", "best" or a number of best trials

    def trial_dir(self, gen: Generation, number: int) -> Path:
        return self.root.joinpath(*gen.parts(number))

    def staging_dir(self, gen: Generation, number: int) -> str:
        """Where the trial writes its model (for local storage: the final place); it
        exists before the trial starts (SPEC 6)."""
        path = self.trial_dir(gen, number)
        private_files.make_dirs(path)
        return str(path.resolve())

    def remote_dir(self, gen: Generation, number: int) -> str | None:
        """Where a trial running elsewhere writes its model; None: it cannot (local disk)."""
        return None

    def finish(self, gen: Generation, number: int) -> tuple[str | None, Stored]:
        """Make the trial's model durable: (its URI, what it stored); (None, []) when it
        wrote nothing."""
        stored = self.record(gen, number)
        if not stored:
            return None, []
        return self.trial_dir(gen, number).resolve().as_uri(), stored

    def record(self, gen: Generation, number: int) -> Stored:
        """What trial `number` stored so far (absolute paths), without moving anything."""
        path = self.trial_dir(gen, number)
        if not path.is_dir():
            return []
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        return [(str(p.resolve()), p.stat().st_size) for p in files]

    def delete(self, locations: Iterable[str]) -> None:
        """Delete these files, then the directories they leave empty (up to the root)."""
        root = self.root.resolve()
        for location in locations:
            if location.startswith("s3://"):
                continue  # stored while the configuration had S3 storage: not reachable
            path = Path(location)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            parent = path.parent
            while parent != root and root in parent.parents:
                try:
                    parent.rmdir()
                except OSError:  # not empty (or gone): stop climbing
                    break
                parent = parent.parent

    def legacy_usage(self, gen: Generation, numbers: Iterable[int]) -> tuple[int, int]:
        files = size = 0
        for number in numbers:
            for _, nbytes in self.record(gen, number):
                files += 1
                size += nbytes
        return files, size

    def delete_legacy(self, gen: Generation, numbers: Iterable[int]) -> None:
        for number in numbers:
            shutil.rmtree(self.trial_dir(gen, number), ignore_errors=True)

    def clean_up(self, experiment: str, lineage: str) -> None:
        """After a destroy: remove the directories this state made for the experiment's
        trials that are left empty (a trial that wrote nothing still got one). Files are
        never removed here, only by `delete`."""
        base = self.root / experiment
        for directory in (base / lineage, base):
            if not directory.is_dir():
                continue
            for parent, _dirs, _files in sorted(os.walk(directory), reverse=True):
                with contextlib.suppress(OSError):  # not empty: someone else's files
                    Path(parent).rmdir()

    def describe(self) -> str:
        return str(self.root)


class S3ModelStore:
    """Models on S3-compatible storage, under `<prefix>/` in the layout above.

    Trials on the local machine write into a staging directory (under the state's
    directory); `finish` uploads it and removes it, so a crash between the trial's end and
    the upload loses nothing: the adopted trial is finished again and the upload repeated
    (objects are overwritten, never duplicated). Trials that run remotely write straight to
    `remote_dir`, which is this state's own place.
    """

    def __init__(self, settings: Mapping[str, Any], staging_root: Path, keep: Any = "all") -> None:
        from tunectl.s3 import S3

        self.keep = keep
        self.s3 = S3(settings, 'storage "s3"')
        self.retry_window = self.s3.retry_window  # how long apply retries a failed upload
        self.prefix = str(settings.get("prefix") or "").strip("/")
        self.staging_root = staging_root

    def _key(self, gen: Generation, number: int) -> str:
        from tunectl.s3 import join

        return join(self.prefix, *gen.parts(number)) + "/"

    def _staging(self, gen: Generation, number: int) -> Path:
        return self.staging_root / gen.experiment / f"g{gen.number}" / "trials" / str(number)

    def staging_dir(self, gen: Generation, number: int) -> str:
        path = self._staging(gen, number)
        private_files.make_dirs(path)
        return str(path.resolve())

    def remote_dir(self, gen: Generation, number: int) -> str | None:
        return self.s3.uri(self._key(gen, number))

    def finish(self, gen: Generation, number: int) -> tuple[str | None, Stored]:
        from tunectl.s3 import files_under

        staging = self._staging(gen, number)
        key = self._key(gen, number)
        if staging.is_dir():
            for path, name in files_under(staging):
                self.s3.upload_file(path, key + name)
        # Listed rather than taken from the upload: a remote trial writes here itself, and
        # a finish repeated after a crash finds what the first one uploaded.
        stored = self.record(gen, number)
        shutil.rmtree(staging, ignore_errors=True)
        if not stored:
            return None, []  # nothing written, here or remotely
        return self.s3.uri(key), stored

    def record(self, gen: Generation, number: int) -> Stored:
        """What trial `number` has under its own prefix (nothing is uploaded)."""
        return [(self.s3.uri(k), size) for k, size in self.s3.list(self._key(gen, number))]

    def delete(self, locations: Iterable[str]) -> None:
        # Files stored while the configuration had local storage are not S3's to delete.
        self.s3.delete_uris(loc for loc in locations if loc.startswith("s3://"))

    def legacy_usage(self, gen: Generation, numbers: Iterable[int]) -> tuple[int, int]:
        objects = size = 0
        for number in numbers:
            for _, nbytes in self.s3.list(self._key(gen, number)):
                objects += 1
                size += nbytes
        return objects, size

    def delete_legacy(self, gen: Generation, numbers: Iterable[int]) -> None:
        for number in numbers:
            self.s3.delete_prefix(self._key(gen, number))

    def clean_up(self, experiment: str, lineage: str) -> None:
        """After a destroy: remove the experiment's staging directory (this working
        directory's own, never uploaded files of pruned or failed trials)."""
        shutil.rmtree(self.staging_root / experiment, ignore_errors=True)

    def describe(self) -> str:
        return f"s3://{self.s3.bucket}/{self.prefix + '/' if self.prefix else ''}"


ModelStore = LocalModelStore | S3ModelStore


def _legacy_trials(state: State, experiment: str, numbers: Sequence[int] | None) -> list[int]:
    """Trials of a pre-upgrade generation with a model but no records: the state knows
    their directory (their `model_uri`), not the files in it."""
    record = state.get_experiment(experiment)
    if record is None or not state.is_legacy_generation(record.generation):
        return []
    recorded = {o.trial_number for o in state.model_objects(experiment)}
    trials: list[TrialRecord] = state.list_trials(experiment)
    return [
        t.number
        for t in trials
        if t.model_uri is not None
        and t.number not in recorded
        and (numbers is None or t.number in numbers)
    ]


def stored_usage(state: State, store: ModelStore, experiment: str) -> tuple[int, int]:
    """(objects, bytes) that destroying `experiment` deletes: what the state recorded."""
    objects, size = state.model_usage(experiment)
    legacy = _legacy_trials(state, experiment, None)
    if legacy:
        record = state.get_experiment(experiment)
        assert record is not None
        more, extra = store.legacy_usage(Generation(experiment, record.generation, None), legacy)
        objects, size = objects + more, size + extra
    return objects, size


def delete_stored(
    state: State, store: ModelStore, experiment: str, numbers: Sequence[int] | None = None
) -> int:
    """Delete what trials `numbers` (default: every trial, every generation) stored, as
    recorded in the state, and forget the records. Returns how many objects were deleted.

    Raises `StorageError` (for S3) with the records of what is not yet deleted kept.
    """
    if numbers is None:
        objects = state.model_objects(experiment)
    else:  # trials of the experiment as it is now (its current generation)
        record = state.get_experiment(experiment)
        current = record.generation if record is not None else None
        objects = [
            o
            for o in state.model_objects(experiment, generation=current)
            if o.trial_number in numbers
        ]
    legacy = _legacy_trials(state, experiment, numbers)
    by_trial: dict[tuple[int, int], list[str]] = {}
    for o in objects:
        by_trial.setdefault((o.generation, o.trial_number), []).append(o.location)
    for (generation, number), locations in by_trial.items():
        store.delete(locations)
        state.forget_model_objects(experiment, generation, number)
    if legacy:
        record = state.get_experiment(experiment)
        assert record is not None
        store.delete_legacy(Generation(experiment, record.generation, None), legacy)
    if numbers is None:
        store.clean_up(experiment, state.lineage)
    return len(objects)


def kept_trials(keep: Any, ranked: Sequence[int]) -> set[int] | None:
    """Trial numbers whose models `keep` retains, given complete trials best first.

    None means keep everything (`keep = "all"`).
    """
    if keep in (None, "all"):
        return None
    count = 1 if keep == "best" else int(keep)
    return set(ranked[:count])


__all__ = [
    "Generation",
    "LocalModelStore",
    "ModelStore",
    "S3ModelStore",
    "delete_stored",
    "kept_trials",
    "stored_usage",
]
