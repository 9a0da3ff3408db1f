"""Turning records into table rows and back: the one place that knows the column layout.

Column names are the record's field names (quoted, as `values` and `key` are SQL words);
dict fields are stored as JSON text with sorted keys, so equal records give equal rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
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

    def to_row(self, rec: R) -> tuple[Any, ...]:
        values = [getattr(rec, f) for f in self.fields]
        for i in self._json_index:
            values[i] = dump_json(values[i])
        return tuple(values)

    def from_row(self, row: Sequence[Any]) -> R:
        values = list(row)
        for i in self._json_index:
            values[i] = json.loads(values[i])
        for i in self._nan_index:
            if values[i] is None:
                values[i] = math.nan
        return self.record(*values)

    def encode(self, field: str, value: Any) -> Any:
        """One field's value as stored, for UPDATEs."""
        return dump_json(value) if field in self.json_fields else value


def quote(name: str) -> str:
    return f'"{name}"'
