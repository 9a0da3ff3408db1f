"""The HCL syntax tree tunectl works on: bodies, blocks, attributes and expressions.

`parse` turns HCL text into these small nodes, each carrying its `SourceRange`, so every
later diagnostic can point at a line. Expressions stay unevaluated here;
`tunectl.hcl.expr` evaluates them. The text is read by `tunectl.hcl.reader`
(python-hcl2's lark grammar); as building that parser costs about 0.1 s per process, the
result for a given text is cached (see `parse`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunectl.diags import SourceRange


@dataclass
class Expr:
    range: SourceRange


@dataclass
class Literal(Expr):
    """A number (int or float), string without interpolation, bool or None."""

    value: Any


@dataclass
class TemplateExpr(Expr):
    """A quoted string or heredoc with interpolations: parts are literal text or Exprs."""

    parts: list[str | Expr]


@dataclass
class TupleExpr(Expr):
    items: list[Expr]


@dataclass
class ObjectExpr(Expr):
    """`{ k = v, ... }`; a bare identifier key is a `Literal` string key."""

    items: list[tuple[Expr, Expr]]


@dataclass
class Traversal(Expr):
    """`root.a.b[0]`: a root name, then attribute names (str) or index expressions."""

    root: str
    steps: list[str | Expr]


@dataclass
class IndexExpr(Expr):
    """Indexing something that is not a plain name: `[1, 2][0]`, `f(x).a`."""

    collection: Expr
    key: Expr | str


@dataclass
class FunctionCall(Expr):
    name: str
    args: list[Expr]
    expand_final: bool = False


@dataclass
class BinaryOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass
class UnaryOp(Expr):
    op: str
    operand: Expr


@dataclass
class Conditional(Expr):
    condition: Expr
    true_expr: Expr
    false_expr: Expr


@dataclass
class ForExpr(Expr):
    """`[for k, v in coll : expr if cond]` or `{for k, v in coll : key => value}`."""

    key_var: str | None
    value_var: str
    collection: Expr
    value_expr: Expr
    key_expr: Expr | None = None  # set for the object form
    condition: Expr | None = None
    grouping: bool = False


@dataclass
class Attribute:
    name: str
    expr: Expr
    range: SourceRange


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body
    range: SourceRange


@dataclass
class Body:
    range: SourceRange
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def blocks_of(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]


# ---------------------------------------------------------------------------
# Parsing, with a cache of parsed texts
# ---------------------------------------------------------------------------

# Parsing costs about 5 s per MiB of HCL (python-hcl2's lark parser; linear, but slow), so a
# file larger than this is refused before parsing, with a diagnostic, instead of taking
# minutes. Hand-written configurations are a few KiB.
MAX_FILE_BYTES = 1 << 20

_CACHE_FORMAT = "2"
_CACHE_ENTRIES = 256  # pruned down to this many, oldest first


def parse(text: str, filename: str) -> Body:
    """Parse HCL text into a `Body`; every problem is raised as a `DiagnosticError`.

    A successful parse is cached under the user's cache directory (`TUNECTL_CACHE_DIR`,
    else `$XDG_CACHE_HOME/tunectl`, else `~/.cache/tunectl`; `TUNECTL_CACHE_DIR=off`
    disables it), keyed by the text, the file name and the parser's own source files, so
    a changed file or a changed tunectl never reads a stale tree. Any trouble with the
    cache falls back to parsing. A text over `MAX_FILE_BYTES` is refused (see
    `check_size`).
    """
    check_size(len(text.encode("utf-8", "surrogatepass")), filename)
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark some editors write
    cache = _cache_file(text, filename)
    if cache is not None:
        body = _cache_read(cache)
        if body is not None:
            return body
    from tunectl.hcl.reader import read

    body = read(text, filename)
    if cache is not None:
        _cache_write(cache, body)
    return body


def check_size(size: int, filename: str) -> None:
    """Raise a `DiagnosticError` when a file of `size` bytes is too large to parse."""
    if size <= MAX_FILE_BYTES:
        return
    from tunectl.diags import DiagnosticError, error

    raise DiagnosticError(
        error(
            "Configuration file too large",
            f"{filename} is {size / (1 << 20):.1f} MiB; tunectl reads configuration and "
            f"variable files of at most {MAX_FILE_BYTES >> 20} MiB (parsing costs seconds "
            "per MiB). Split the file, or keep large data in a file the trial reads.",
            SourceRange(filename, 1),
        )
    )


def _cache_dir() -> Path | None:
    configured = os.environ.get("TUNECTL_CACHE_DIR")
    if configured is not None:
        return None if configured in ("", "off", "0") else Path(configured) / "hcl"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tunectl" / "hcl"


def _cache_file(text: str, filename: str) -> Path | None:
    directory = _cache_dir()
    if directory is None:
        return None
    digest = hashlib.sha256()
    digest.update(_CACHE_FORMAT.encode())
    here = Path(__file__).parent
    # Every module that shapes the parsed tree: its nodes, its ranges, how it is built.
    for source in ("syntax.py", "reader.py", "grammar.py", "templates.py", "../diags.py"):
        try:
            st = (here / source).stat()
        except OSError:
            return None
        digest.update(f"{source}:{st.st_size}:{st.st_mtime_ns}".encode())
    digest.update(filename.encode() + b"\0" + text.encode())
    return directory / f"{digest.hexdigest()}.pickle"


def _cache_read(path: Path) -> Body | None:
    try:
        with path.open("rb") as f:
            # Only a file this user wrote is trusted (pickle runs code).
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return None
            body = pickle.load(f)
    except Exception:  # missing, unreadable or damaged: parse instead
        return None
    return body if isinstance(body, Body) else None


def _cache_write(path: Path, body: Body) -> None:
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(body, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        entries = list(path.parent.glob("*.pickle"))
        if len(entries) > _CACHE_ENTRIES:
            entries.sort(key=lambda p: p.stat().st_mtime)
            for old in entries[: len(entries) - _CACHE_ENTRIES]:
                old.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, RecursionError):
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
