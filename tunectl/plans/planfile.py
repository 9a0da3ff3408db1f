"""Saved plans (`plan --out FILE`): a file that says exactly what `apply FILE` will do.

A plan file is JSON: the plan itself (its changes, the state's lineage and serial it was
made against, the configuration digest, the options and non-sensitive variables it was made
with), and two seals over all of that:

* `digest`: SHA-256 of the canonical JSON of every other field (keys sorted, no
  whitespace). Any edit to a value or a key, an added or dropped field, a truncated file,
  makes the plan corrupt; re-indenting it does not change its content. Anyone can check
  it, so `show FILE` does too; anyone can also recompute it, so it is not a proof of
  origin.
* `signature`: HMAC-SHA256 over the same bytes, keyed with a random key kept in the state
  (`State.plan_key`). Only someone who can read the state can make one, so a plan whose
  digest was recomputed after an edit is still refused by `apply`.

`apply FILE` then plans again from the recorded options and refuses unless the changes it
gets are the recorded ones (`check_changes`): it never does anything `show FILE` did not
show. Sensitive variable values are never written; apply asks for them again (--var or
TUNECTL_VAR_*) and the configuration digest proves they are the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tunectl import private_files
from tunectl.diags import DiagnosticError, error
from tunectl.plans.change import (
    FORMAT_VERSION,
    MISSING,
    Action,
    AttrChange,
    Carry,
    Change,
    Drift,
    Plan,
    TrialIntent,
    error_from_text,
)
from tunectl.status import ExperimentStatus

KIND = "tunectl-plan"
_SEALS = ("digest", "signature")
_DIGEST_PREFIX = "sha256:"
_SIGNATURE_PREFIX = "hmac-sha256:"
# Fields of a change that say what apply does. `consequences` is left out: it restates
# `intent` and the action in words, plus how much stored model data a destroy deletes,
# which grows while running trials write checkpoints without changing what apply does.
_COMPARED = ("action", "before", "after", "attributes", "reasons", "intent")


@dataclass(frozen=True)
class SavedPlan:
    """A plan file whose digest matched: `plan` is the plan's JSON (`Plan.to_json`)."""

    path: Path
    plan: dict[str, Any]
    sealed: bytes  # the canonical bytes the digest and the signature cover
    signature: str


def _write_failed(path: Path, reason: str) -> NoReturn:
    raise DiagnosticError(
        error("Failed to write plan file", f"The plan could not be saved to {path}: {reason}.")
    )


# What each top-level field of a saved plan must be; anything else is a damaged file.
_SHAPE: dict[str, type | tuple[type, ...]] = {
    "lineage": str,
    "serial": int,
    "config_digest": str,
    "destroy": bool,
    "variables": dict,
    "targets": list,
    "replace": list,
    "changes": list,
    "drift": list,
    "errors": list,
}


def _check_shape(plan: dict[str, Any], path: Path) -> None:
    for name, kind in _SHAPE.items():
        value = plan.get(name)
        wrong = value is None or not isinstance(value, kind)
        if not wrong and isinstance(value, list) and name in ("targets", "replace", "errors"):
            wrong = not all(isinstance(item, str) for item in value)
        if not wrong and isinstance(value, list) and name in ("changes", "drift"):
            wrong = not all(isinstance(item, dict) for item in value)
        if not wrong and isinstance(value, list) and name == "changes":
            wrong = not all(
                isinstance(c.get("address"), str)
                and isinstance(c.get("action"), str)
                and isinstance(c.get("attributes", []), list)
                for c in value
            )
        if wrong:
            raise DiagnosticError(
                error(
                    "Failed to read plan file",
                    f"{path} is damaged: its {name!r} field is missing or of the wrong type. "
                    "Run tunectl plan --out again.",
                )
            )


def write(plan: Plan, path: Path, key: bytes) -> None:
    """Write `plan` to `path` (0600, replaced atomically), sealed with the state's `key`."""
    # Through JSON first, so the seals cover exactly what a reader will parse.
    body = json.loads(
        json.dumps(
            {"kind": KIND, "format_version": FORMAT_VERSION, "plan": plan.to_json()}, default=str
        )
    )
    sealed = _canonical(body)
    data = dict(body, digest=_digest(sealed), signature=_sign(sealed, key))
    if path.is_dir():
        _write_failed(
            path, f"{path} is a directory; give a file name, such as {path / 'tunectl.plan'}"
        )
    if not path.parent.is_dir():
        _write_failed(path, f"the directory {path.parent} does not exist; create it first")
    try:
        private_files.write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        _write_failed(path, f"{exc.strerror or exc}; nothing was written")


def read(path: Path) -> dict[str, Any]:
    """The plan's JSON, after checking the file's digest (as `show FILE` needs)."""
    return read_sealed(path).plan


def read_sealed(path: Path) -> SavedPlan:
    """Read a plan file and check its digest and version.

    Raises `DiagnosticError`: "Failed to read plan file" (missing, unreadable, not a plan
    file), "Saved plan is corrupt" (edited or truncated), "Unsupported plan file".
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DiagnosticError(
            error("Failed to read plan file", f"The plan file {path} cannot be read: {reason}.")
        ) from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError:
        # A truncated plan file is no longer JSON, but still names its kind near the top.
        if f'"{KIND}"' in text:
            raise corrupt(path, "it is not complete JSON (truncated or edited)") from None
        raise DiagnosticError(
            error(
                "Failed to read plan file",
                f"{path} is not a tunectl plan file (it is not valid JSON).",
            )
        ) from None
    if not isinstance(data, dict) or not (data.keys() & {"kind", *_SEALS}):
        raise DiagnosticError(
            error("Failed to read plan file", f"{path} is not a tunectl plan file.")
        )
    digest, signature = data.get("digest"), data.get("signature")
    if not isinstance(digest, str) or not isinstance(signature, str):
        raise corrupt(
            path,
            "it has no digest or signature (it was edited, or written by an older tunectl)",
        )
    sealed = _canonical({k: v for k, v in data.items() if k not in _SEALS})
    if not hmac.compare_digest(digest, _digest(sealed)):
        raise corrupt(path, "its content no longer matches the digest recorded in it")
    if data.get("kind") != KIND or not isinstance(data.get("plan"), dict):
        raise DiagnosticError(
            error("Failed to read plan file", f"{path} is not a tunectl plan file.")
        )
    major = str(data.get("format_version", "")).split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise DiagnosticError(
            error(
                "Unsupported plan file",
                f"{path} was written in plan format {data.get('format_version')}; this tunectl "
                f"reads format {FORMAT_VERSION}. Run tunectl plan again.",
            )
        )
    _check_shape(data["plan"], path)
    return SavedPlan(path, data["plan"], sealed, signature)


def check(
    saved: SavedPlan, lineage: str, serial: int, digest: str, key: Callable[[], bytes]
) -> None:
    """Refuse a plan made for another state, not signed by this one, made for an older
    state, or for another configuration. `key` gives the state's plan key; it is asked
    for only once the lineage matched (so a foreign plan adds no key to a state)."""
    plan, path = saved.plan, saved.path
    if plan.get("lineage") != lineage:
        raise DiagnosticError(
            error(
                "Saved plan does not match the state",
                f"The plan {path} was created for a different state (lineage "
                f"{plan.get('lineage')}); the current state has lineage {lineage}. "
                "A plan can only be applied to the state it was made from: run tunectl plan again.",
            )
        )
    if not hmac.compare_digest(saved.signature, _sign(saved.sealed, key())):
        raise corrupt(
            path,
            "its signature does not match this state's key, so it was changed after tunectl "
            "plan wrote it (and its digest recomputed), or not written by tunectl plan for "
            "this state",
        )
    if plan.get("serial") != serial:
        raise DiagnosticError(
            error(
                "Saved plan is stale",
                f"The state changed since {path} was created (serial {plan.get('serial')} -> "
                f"{serial}). Run tunectl plan again to see what would change now.",
            )
        )
    if plan.get("config_digest") != digest:
        raise DiagnosticError(
            error(
                "Saved plan is stale",
                f"The configuration or variables changed since {path} was created. "
                "Run tunectl plan again.",
            )
        )


def check_changes(saved: SavedPlan, now: Plan) -> None:
    """Refuse when planning again gives other changes than the saved plan records: apply
    must do what `show FILE` showed, or nothing."""
    recorded = {c.get("address"): c for c in saved.plan.get("changes") or []}
    current = json.loads(json.dumps([c.to_json() for c in now.changes], default=str))
    planned = {c["address"]: c for c in current}
    difference = None
    for address in sorted(recorded.keys() | planned.keys(), key=str):
        old, new = recorded.get(address), planned.get(address)
        if new is None:
            difference = f"{address} was in the plan but is not planned now"
            break
        if old is None:
            difference = f"{address} is planned now but was not in the plan"
            break
        fields = [f for f in _COMPARED if _compared(old, f) != _compared(new, f)]
        if fields:
            difference = f"{address}: {', '.join(fields)} differ"
            break
    if difference is None:
        return
    raise DiagnosticError(
        error(
            "Saved plan is stale",
            f"Planning again now gives other changes than {saved.path} records "
            f"({difference}). Something changed since the plan was made; tunectl did "
            "nothing. Run tunectl plan again to see what would change now.",
        )
    )


def corrupt(path: Path, reason: str) -> DiagnosticError:
    return DiagnosticError(
        error(
            "Saved plan is corrupt",
            f"The plan file {path} cannot be applied: {reason}. A saved plan is applied only "
            "exactly as tunectl plan wrote it, and tunectl changed nothing. Run tunectl plan "
            "--out again to make a new one.",
        )
    )


def _compared(change: dict[str, Any], field: str) -> bytes:
    """A field as the staleness check sees it. The schedule's sentence in `intent` tells
    the time (when the next window opens), not what apply does: a window that opened
    since the plan was made does not make it stale; nor does the spend of trials running
    (`spent`), which grows by the second."""
    value = change.get(field)
    if field == "intent" and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("schedule", "spent")}
    return _canonical(value)


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
    ).encode("utf-8")


def _digest(sealed: bytes) -> str:
    return _DIGEST_PREFIX + hashlib.sha256(sealed).hexdigest()


def _sign(sealed: bytes, key: bytes) -> str:
    return _SIGNATURE_PREFIX + hmac.new(key, sealed, hashlib.sha256).hexdigest()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice would let the text say one thing and the parsed plan another.
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def from_json(data: dict[str, Any]) -> Plan:
    """Rebuild a `Plan` from its JSON form, to render a saved plan."""

    changes = []
    for c in data.get("changes", []):
        attrs = [
            AttrChange(
                a["path"],
                a.get("before", MISSING),
                a.get("after", MISSING),
                a.get("forces_replacement", False),
            )
            for a in c.get("attributes", [])
        ]
        intent = None
        if c.get("intent"):
            intent = TrialIntent(**c["intent"])
            intent = dataclasses.replace(intent, status=ExperimentStatus(intent.status))
        changes.append(
            Change(
                c["address"],
                Action(c["action"]),
                c.get("before"),
                c.get("after"),
                attrs,
                list(c.get("reasons", [])),
                list(c.get("consequences", [])),
                intent,
                Carry(**c["carry"]) if c.get("carry") else None,
                list(c.get("preview", [])),
            )
        )
    return Plan(
        changes=changes,
        drift=[Drift(**d) for d in data.get("drift", [])],
        destroy=bool(data.get("destroy")),
        lineage=data.get("lineage", ""),
        serial=data.get("serial", 0),
        config_digest=data.get("config_digest", ""),
        variables=dict(data.get("variables", {})),
        targets=list(data.get("targets", [])),
        replace=list(data.get("replace", [])),
        errors=[error_from_text(text) for text in data.get("errors", [])],
    )
