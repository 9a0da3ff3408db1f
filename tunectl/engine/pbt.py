"""Population based training in the apply loop: the next trial of the population, and
where its parent's checkpoint is.

The decisions are `tunectl.search.pbt`'s, made from the trials the state holds; this module
reads them from the state and hands the engine a `Slot` (the member, round and parent of the
next trial, and its parameters). The trial is recorded with its lineage in one row before
it is submitted, so an apply killed at any point (between the decision and the record, or
between the record and the submission) runs each member of each round exactly once when it
is applied again: what is recorded is resumed, what is not is decided again, the same way.

The parent's checkpoint, `${trial.parent_model_dir}` and `TUNECTL_PARENT_MODEL_DIR`:

* local model storage: the parent's own model directory, read in place (no copy: it is on
  the same disk, and PBT would otherwise copy every checkpoint once per round). Trials
  read it and write only their own `${trial.model_dir}`;
* S3 model storage, trials on this machine: a copy of the parent's stored objects,
  downloaded before the trial is submitted into a directory of the state's staging area
  (again after a crash: objects are overwritten, never duplicated);
* trials that run elsewhere (DLC, MaxCompute): the parent's S3 URI, which they read.

Round 0 has no parent: the placeholder and the variable are empty.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tunectl import private_files
from tunectl.config.model import Experiment
from tunectl.engine.models import Generation, LocalModelStore, ModelStore
from tunectl.s3 import parse_object_uri
from tunectl.search import pbt
from tunectl.states import State, TrialRecord

PARENT_ENV = "TUNECTL_PARENT_MODEL_DIR"


def is_pbt(exp: Experiment) -> bool:
    return exp.algorithm.name == pbt.NAME


def _status(trial: TrialRecord) -> str:
    return str(getattr(trial.status, "value", trial.status))


def members(trials: list[TrialRecord]) -> list[pbt.Member]:
    """The state's trials as PBT members (trials without a lineage are left out)."""
    return [
        pbt.Member(t.number, t.pbt_member, t.pbt_round, _status(t), t.value, t.internal)
        for t in trials
        if t.pbt_member is not None and t.pbt_round is not None
    ]


def next_slot(state: State, exp: Experiment) -> pbt.Slot | None:
    """The next trial of `exp`'s population, or None when none can start now."""
    settings = pbt.settings_of(exp.algorithm)
    return pbt.next_slot(
        settings,
        exp.params,
        members(state.list_trials(exp.name)),
        exp.objective.direction,
        settings.rounds(exp.max_trials),
    )


def lineage(slot: pbt.Slot) -> dict[str, Any]:
    """The TrialRecord fields of a slot's trial."""
    return {"pbt_member": slot.member, "pbt_round": slot.round, "parent_trial": slot.parent}


def parent_model_dir(
    store: ModelStore, place: Generation, trial: TrialRecord, local_model_dir: bool
) -> str:
    """Where `trial` reads its parent's checkpoint ("" in round 0); see the module doc."""
    parent = trial.parent_trial
    if parent is None:
        return ""
    if isinstance(store, LocalModelStore):
        if not local_model_dir:
            return ""  # a remote trial cannot read this machine's disk
        return str(store.trial_dir(place, parent).resolve())
    uri = store.remote_dir(place, parent) or ""
    if not local_model_dir:
        return uri
    return str(_download(store, place, trial.number, uri))


def _download(store: Any, place: Generation, number: int, uri: str) -> Path:
    """Copy the objects under `uri` (the parent's place) into trial `number`'s parent
    directory in the staging area; returns the directory."""
    target = store.staging_root / place.experiment / f"g{place.number}" / "parents" / str(number)
    private_files.make_dirs(target)
    location = parse_object_uri(uri)
    prefix = location.key
    for key, _size in store.s3.list(prefix):
        name = key[len(prefix) :].lstrip("/")
        if not name or ".." in Path(name).parts:
            continue
        got = store.s3.get(key)
        if got is None:
            continue  # deleted since the listing
        path = target / name
        private_files.make_dirs(path.parent)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.write_bytes(got[0])
    return target.resolve()
