"""Saved plans (`plan --out FILE`): what apply needs to refuse a stale or foreign plan.

A plan file is JSON: the plan itself, the state's lineage and serial it was made against,
the configuration digest, and the options it was made with. Sensitive variable values are
never written; apply asks for them again (--var or TUNECTL_VAR_*) and the digest proves they
are the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from tunectl.diags import DiagnosticError, error
from tunectl.plans.change import FORMAT_VERSION, Plan

KIND = "tunectl-plan"


def write(plan: Plan, path: Path) -> None:
    """Write the plan file atomically; a path that cannot hold it is a diagnostic."""
    data = {"kind": KIND, "format_version": FORMAT_VERSION, "plan": plan.to_json()}
    if path.is_dir():
        _write_failed(
            path, f"{path} is a directory; give a file name, such as {path / 'tunectl.plan'}"
        )
    if not path.parent.is_dir():
        _write_failed(path, f"the directory {path.parent} does not exist; create it first")
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _write_failed(path, f"{exc.strerror or exc}; nothing was written")


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


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DiagnosticError(
            error(
                "Failed to read plan file", f"The plan file {path} cannot be read: {exc.strerror}."
            )
        ) from None
    except ValueError:
        raise DiagnosticError(
            error(
                "Failed to read plan file",
                f"{path} is not a tunectl plan file (it is not valid JSON).",
            )
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("kind") != KIND
        or not isinstance(data.get("plan"), dict)
    ):
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
    return data["plan"]


def check(saved: dict[str, Any], lineage: str, serial: int, digest: str, path: Path) -> None:
    """Refuse a plan made for another state, an older state, or another configuration."""
    if saved.get("lineage") != lineage:
        raise DiagnosticError(
            error(
                "Saved plan does not match the state",
                f"The plan {path} was created for a different state (lineage "
                f"{saved.get('lineage')}); the current state has lineage {lineage}. "
                "A plan can only be applied to the state it was made from: run tunectl plan again.",
            )
        )
    if saved.get("serial") != serial:
        raise DiagnosticError(
            error(
                "Saved plan is stale",
                f"The state changed since {path} was created (serial {saved.get('serial')} -> "
                f"{serial}). Run tunectl plan again to see what would change now.",
            )
        )
    if saved.get("config_digest") != digest:
        raise DiagnosticError(
            error(
                "Saved plan is stale",
                f"The configuration or variables changed since {path} was created. "
                "Run tunectl plan again.",
            )
        )


def from_json(data: dict[str, Any]) -> Plan:
    """Rebuild a `Plan` from its JSON form, to render a saved plan."""
    from tunectl.plans.change import MISSING, Action, AttrChange, Change, Drift, TrialIntent

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
        intent = TrialIntent(**c["intent"]) if c.get("intent") else None
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
        errors=list(data.get("errors", [])),
    )
