"""Sensitivity: which values derive from `sensitive` variables, and how they are hidden.

Design: conservative taint tracking by reference, per attribute. An expression is
sensitive when it refers to a sensitive variable, or to a local value that is itself
sensitive (`references` walks every traversal: functions, templates, conditionals, `for`
expressions). So `upper(var.token)`, `"Bearer ${local.token}"` and
`length(var.token) > 3 ? "a" : "b"` are all sensitive, as Terraform's value marks would make
them; a local holding a map with one sensitive element is sensitive as a whole (Terraform
would mark only that element). Deciding from references costs nothing at evaluation time and
needs no change to any function, which value marks would.

Hiding: where a sensitive value would be stored (the state's copy of the configuration, a
plan file), it is replaced by a *marker*: `(sensitive value)` followed by an HMAC-SHA256 of
the value keyed by the state's salt. Two markers are equal exactly when the values are, so
the differ still sees a change of a sensitive input; the salt lives in the state only, so a
plan file alone gives no way to test guesses of a secret. Renderers show every marker as
`(sensitive value)` (`shown`).

A last safety net, `Redactor`, replaces the text of sensitive values in diagnostics, for
messages that quote the value they reject (`tonumber`, a type conversion, a choice).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from tunectl.diags import Diagnostic
from tunectl.hcl.syntax import Expr, Literal, ObjectExpr, TemplateExpr
from tunectl.hcl.traversals import references
from tunectl.hcl.values import Template, to_string

SHOWN = "(sensitive value)"
_MARKER = re.compile(r"\(sensitive value\) hmac-sha256:[0-9a-f]{64}\Z")
# Shorter texts are not redacted from messages: "1" or "true" would garble every message,
# and a secret that short is guessed faster than read.
MIN_REDACTED = 4

Root = tuple[str, str]  # ("var", NAME) or ("local", NAME)


def refers_to(expr: Expr, sensitive: Collection[Root]) -> bool:
    """True when `expr` refers to one of the `sensitive` roots (`var.X`, `local.Y`)."""
    if not sensitive:
        return False
    for path, _ in references(expr):
        if len(path) > 1 and (path[0], path[1]) in sensitive:
            return True
    return False


def object_keys(expr: Expr, sensitive: Collection[Root]) -> tuple[set[str], bool]:
    """For a map written literally (`{ A = x, B = y }`): the keys whose values are sensitive,
    and whether the whole map must be treated as sensitive (a computed key, or not a
    literal map at all)."""
    if not isinstance(expr, ObjectExpr):
        return set(), refers_to(expr, sensitive)
    keys: set[str] = set()
    whole = False
    for key, value in expr.items:
        name = _literal_key(key)
        if name is None:
            whole = whole or refers_to(key, sensitive) or refers_to(value, sensitive)
        elif refers_to(value, sensitive):
            keys.add(name)
    return keys, whole


def _literal_key(key: Expr) -> str | None:
    if isinstance(key, Literal) and isinstance(key.value, str):
        return key.value
    if isinstance(key, TemplateExpr) and all(isinstance(p, str) for p in key.parts):
        return "".join(str(p) for p in key.parts)
    return None


# ---------------------------------------------------------------------------
# Markers
# ---------------------------------------------------------------------------


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def marker(value: Any, salt: bytes) -> str:
    """The stored stand-in for a sensitive value: equal for equal values under one salt."""
    mac = hmac.new(salt, _canonical_json(value), hashlib.sha256).hexdigest()
    return f"{SHOWN} hmac-sha256:{mac}"


def is_marker(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SHOWN) and bool(_MARKER.match(value))


def holds_marker(value: Any) -> bool:
    """True when a marker appears in the value, at any depth."""
    if isinstance(value, str):
        return is_marker(value)
    if isinstance(value, list | tuple):
        return any(holds_marker(v) for v in value)
    if isinstance(value, Mapping):
        return any(holds_marker(v) for v in value.values())
    return False


def shown(value: Any) -> Any:
    """The value with every marker, at any depth, replaced by `(sensitive value)`."""
    if isinstance(value, str):
        return SHOWN if is_marker(value) else value
    if isinstance(value, list | tuple):
        return [shown(v) for v in value]
    if isinstance(value, Mapping):
        return {k: shown(v) for k, v in value.items()}
    return value


def hide_paths(data: dict[str, Any], paths: Iterable[str], salt: bytes) -> dict[str, Any]:
    """Replace the values at dotted `paths` of `data` (in place) by markers; return `data`.

    A path that does not exist is skipped (a task's timeout equal to the trial's is not
    written, say); a path inside a value already hidden is covered by that marker."""
    for path in sorted(paths):
        parts = path.split(".")
        node: Any = data
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node and not is_marker(node[parts[-1]]):
            node[parts[-1]] = marker(node[parts[-1]], salt)
    return data


def digest(values: Mapping[str, Any], salt: bytes) -> str:
    """An HMAC of sensitive variable values, to tell whether they changed."""
    return hmac.new(salt, _canonical_json(values), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------
# Redaction of messages
# ---------------------------------------------------------------------------


def texts(value: Any) -> set[str]:
    """The strings a value could appear as in a message: its leaves and its text form."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, Template):
            out.update(p for p in v.parts if isinstance(p, str))
        elif v is not None:
            out.add(to_string(v))
    if isinstance(value, list | tuple | Mapping):
        out.add(to_string(value))
    return {t for t in out if len(t) >= MIN_REDACTED}


class Redactor:
    """Replaces the text of known sensitive values in messages by `(sensitive value)`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_REDACTED}, key=len, reverse=True)

    def add(self, value: Any) -> None:
        self.secrets = sorted(set(self.secrets) | texts(value), key=len, reverse=True)

    def text(self, message: str) -> str:
        for secret in self.secrets:
            if secret in message:
                message = message.replace(secret, SHOWN)
        return message

    def diagnostics(self, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
        if not self.secrets:
            return list(diags)
        return [
            Diagnostic(d.severity, self.text(d.summary), self.text(d.detail), d.subject, d.context)
            for d in diags
        ]
