"""The emulator's SQL: MaxCompute statements run on one SQLite database per project.

Enough of MaxCompute SQL for evaluation tables: `CREATE TABLE [IF NOT EXISTS] ... [LIFECYCLE n]`,
`DROP TABLE`, `INSERT INTO|OVERWRITE TABLE ... VALUES|SELECT`, `SELECT`, and `SET k=v;`
(ignored). Errors carry the codes MaxCompute uses: a missing table `ODPS-0130131`, anything
else the parser rejects `ODPS-0130161`.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import threading
from dataclasses import dataclass

_SET = re.compile(r"^\s*set\s+[^=]+=.*$", re.I | re.S)
_LIFECYCLE = re.compile(r"\s+lifecycle\s+\d+\s*$", re.I)
_OVERWRITE = re.compile(r"^\s*insert\s+overwrite\s+table\s+([\w.`]+)", re.I)
_INSERT_INTO = re.compile(r"^\s*insert\s+into\s+table\s+", re.I)
_NO_TABLE = re.compile(r"no such table: (?:main\.)?(\S+)")

# MaxCompute type names for SQLite's declared types (table schemas are read back from these).
ODPS_TYPES = {
    "": "string",
    "int": "bigint",
    "integer": "bigint",
    "real": "double",
    "text": "string",
}


class SqlError(Exception):
    """A statement failed; the message is MaxCompute's error text (`ODPS-0130161:...`)."""


@dataclass
class Rows:
    columns: list[str]
    rows: list[tuple[object, ...]]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(["" if v is None else v for v in row] for row in self.rows)
        return out.getvalue()


class Database:
    """One project's tables."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.RLock()

    def _name(self, name: str) -> str:
        name = name.strip("`")
        prefix = self.project + "."
        return name[len(prefix) :] if name.startswith(prefix) else name

    def _strip_project(self, statement: str) -> str:
        return re.sub(rf"\b{re.escape(self.project)}\.(?=\w)", "", statement)

    def run(self, script: str) -> Rows | None:
        """Run the statements of `script`; the rows of the last one that returns rows."""
        result: Rows | None = None
        with self.lock:
            for statement in _split(script):
                if _SET.match(statement):
                    continue
                result = self._one(statement) or result
            self.db.commit()
        return result

    def _one(self, statement: str) -> Rows | None:
        statement = _LIFECYCLE.sub("", self._strip_project(_sqlite_literals(statement)))
        if m := _OVERWRITE.match(statement):
            # The new rows are computed before the old ones go (they may read the table).
            table, rest = _quote(self._name(m.group(1))), statement[m.end() :]
            self._execute(f"CREATE TEMP TABLE _overwrite AS SELECT * FROM {table} WHERE 0")
            try:
                self._execute(f"INSERT INTO _overwrite {rest}")
                self._execute(f"DELETE FROM {table}")
                self._execute(f"INSERT INTO {table} SELECT * FROM _overwrite")
            finally:
                self.db.execute("DROP TABLE IF EXISTS temp._overwrite")
            return None
        statement = _INSERT_INTO.sub("INSERT INTO ", statement)
        cursor = self._execute(statement)
        if cursor.description is None:
            return None
        return Rows([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])

    def _execute(self, statement: str) -> sqlite3.Cursor:
        try:
            return self.db.execute(statement)
        except sqlite3.Error as exc:
            text = str(exc)
            if m := _NO_TABLE.search(text):
                raise SqlError(
                    f"ODPS-0130131:[1,1] Table not found - table {self.project}.{m.group(1)} "
                    "cannot be resolved"
                ) from None
            if "already exists" in text:
                raise SqlError(f"ODPS-0110061:Failed to run ddltask - {text}") from None
            raise SqlError(f"ODPS-0130161:[1,1] Parse exception - {text}") from None

    # -- tables -------------------------------------------------------------------------

    def schema(self, table: str) -> list[tuple[str, str]] | None:
        """(column, MaxCompute type) of `table`, or None when there is no such table."""
        with self.lock:
            cols = self.db.execute(f"PRAGMA table_info({_quote(self._name(table))})").fetchall()
        if not cols:
            return None
        return [(c[1], ODPS_TYPES.get(str(c[2]).lower(), str(c[2]).lower())) for c in cols]

    def head(self, table: str, limit: int) -> Rows:
        name = _quote(self._name(table))
        with self.lock:
            cursor = self._execute(f"SELECT * FROM {name} LIMIT {int(limit)}")
            return Rows([d[0] for d in cursor.description], cursor.fetchall())

    def write(self, table: str, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
        """Replace `table` with `rows` (what an algorithm's output table gets)."""
        name = _quote(self._name(table))
        with self.lock:
            self.db.execute(f"DROP TABLE IF EXISTS {name}")
            self.db.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns)})")
            marks = ", ".join("?" for _ in columns)
            self.db.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
            self.db.commit()

    def count(self, table: str) -> int:
        with self.lock:
            return int(
                self._execute(f"SELECT COUNT(*) FROM {_quote(self._name(table))}").fetchone()[0]
            )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a"}


def _sqlite_literals(statement: str) -> str:
    """MaxCompute's string literals (`'...'` or `"..."`, with backslash escapes) as
    SQLite's (`'...'`, a quote doubled); backquoted names as SQLite's `"..."`."""
    out: list[str] = []
    i = 0
    while i < len(statement):
        ch = statement[i]
        if ch in "'\"":
            value: list[str] = []
            i += 1
            while i < len(statement) and statement[i] != ch:
                if statement[i] == "\\" and i + 1 < len(statement):
                    value.append(_ESCAPES.get(statement[i + 1], statement[i + 1]))
                    i += 2
                    continue
                value.append(statement[i])
                i += 1
            if i >= len(statement):
                raise SqlError("ODPS-0130161:[1,1] Parse exception - unclosed string literal")
            out.append("'" + "".join(value).replace("'", "''") + "'")
            i += 1
        elif ch == "`":
            end = statement.find("`", i + 1)
            if end < 0:
                raise SqlError("ODPS-0130161:[1,1] Parse exception - unclosed identifier")
            out.append(_quote(statement[i + 1 : end]))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split(script: str) -> list[str]:
    """Statements separated by `;` outside quotes; `--` comments dropped."""
    statements, current, quote = [], [], ""
    i = 0
    while i < len(script):
        ch = script[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(script):
                current.append(script[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]
