"""Turning records into table rows and back: the one place that knows the column layout.

Column names are the record's field names (quoted, as `values` and `key` are SQL words);
dict fields are stored as JSON text with sorted keys, so equal records give equal rows;
enum fields (statuses) are stored as their values and read back as members.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

R = TypeVar("R")


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class RowCodec(Generic[R]):
    """SQL fragments and converters for one table whose columns mirror record type `R`."""

    def __init__(
        self,
        table: str,
        record: type[R],
        json_fields: Sequence[str] = (),
        nan_fields: Sequence[str] = (),
        enum_fields: Mapping[str, type[enum.Enum]] | None = None,
    ) -> None:
        self.table = table
        self.record = record
        self.fields = tuple(f.name for f in dataclasses.fields(record))  # type: ignore[arg-type]
        self.json_fields = frozenset(json_fields)
        # Columns where NULL means NaN: SQLite cannot store NaN and stores NULL instead.
        self.nan_fields = frozenset(nan_fields)
        columns = ", ".join(quote(f) for f in self.fields)
        self.select = f"SELECT {columns} FROM {table}"
        placeholders = ", ".join("?" for _ in self.fields)
        self.insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        self._json_index = [i for i, f in enumerate(self.fields) if f in self.json_fields]
        self._nan_index = [i for i, f in enumerate(self.fields) if f in self.nan_fields]
        self.enum_fields = dict(enum_fields or {})
        self._enum_index = [
            (i, self.enum_fields[f]) for i, f in enumerate(self.fields) if f in self.enum_fields
        ]

    def to_row(self, rec: R) -> tuple[Any, ...]:
        values = [getattr(rec, f) for f in self.fields]
        for i in self._json_index:
            values[i] = dump_json(values[i])
        for i, _ in self._enum_index:
            values[i] = _stored(values[i])
        return tuple(values)

    def from_row(self, row: Sequence[Any]) -> R:
        values = list(row)
        for i in self._json_index:
            values[i] = json.loads(values[i])
        for i in self._nan_index:
            if values[i] is None:
                values[i] = math.nan
        for i, kind in self._enum_index:
            values[i] = kind(values[i])
        return self.record(*values)

    def encode(self, field: str, value: Any) -> Any:
        """One field's value as stored, for UPDATEs."""
        if field in self.json_fields:
            return dump_json(value)
        return _stored(value) if field in self.enum_fields else value

    def check_fields(self, kind: str, fields: Mapping[str, Any], identity: frozenset[str]) -> None:
        """Refuse an update naming a column the table lacks or one that identifies the row
        (bugs of the caller: `TypeError`, `ValueError`), or an enum value not in its enum."""
        unknown = [f for f in fields if f not in self.fields]
        if unknown:
            raise TypeError(f"A {kind} has no field {', '.join(map(repr, unknown))}.")
        fixed = [f for f in fields if f in identity]
        if fixed:
            raise ValueError(
                f"A {kind}'s {', '.join(fixed)} cannot be updated; it identifies the row."
            )
        for name, value in fields.items():
            if name in self.enum_fields:
                check_member(kind, value, self.enum_fields[name])


def check_member(kind: str, value: Any, allowed: type[enum.Enum]) -> None:
    """`ValueError` unless `value` is a member of `allowed` or one's value (a status)."""
    values = [m.value for m in allowed]
    if value not in values:
        raise ValueError(f"{value!r} is not a valid {kind} status; use one of {', '.join(values)}.")


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def quote(name: str) -> str:
    return f'"{name}"'
