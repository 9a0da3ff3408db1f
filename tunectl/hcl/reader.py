"""Read HCL text with python-hcl2's lark grammar into `tunectl.hcl.syntax` nodes.

Imported only when a text is not in the parse cache: importing lark and loading the
grammar is most of a small command's start-up time. `tunectl.hcl.grammar` runs the
grammar and reports syntax errors; this module builds the positioned tree from lark's.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import re
from typing import Any, NoReturn, cast

from lark import Token, Tree

from tunectl.diags import Diagnostic, DiagnosticError, SourceRange, error
from tunectl.hcl.grammar import (
    end_pos,
    first_line,
    first_token,
    is_nl,
    last_line,
    parse_tree,
    start_pos,
    tree_kids,
)
from tunectl.hcl.syntax import (
    Attribute,
    BinaryOp,
    Block,
    Body,
    Conditional,
    Expr,
    ForExpr,
    FunctionCall,
    IndexExpr,
    Literal,
    ObjectExpr,
    TemplateExpr,
    Traversal,
    TupleExpr,
    UnaryOp,
)
from tunectl.hcl.templates import match_interpolation, next_marker, strip_indent


def _float_token(text: str) -> float:
    """A float token's value. python-hcl2's grammar reads `-1-1.5e-3` (single-digit
    negative groups) as one number token: it means the subtraction `-1 - 1.5e-3`."""
    try:
        return float(text)
    except ValueError:
        return math.fsum(float(t) for t in re.findall(r"-?[\d.]+(?:[eE][-+]?\d+)?", text))


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}

_BINARY_OPS = {
    "DOUBLE_EQ": "==",
    "NEQ": "!=",
    "LT": "<",
    "GT": ">",
    "LEQ": "<=",
    "GEQ": ">=",
    "MINUS": "-",
    "ASTERISK": "*",
    "SLASH": "/",
    "PERCENT": "%",
    "DOUBLE_AMP": "&&",
    "DOUBLE_PIPE": "||",
    "PLUS": "+",
}

_NAME_TREES = ("identifier", "keyword", "literal_value")
_CHAIN_TREES = ("get_attr_expr_term", "index_expr_term")
_DIRECTIVE_TREES = (
    "template_if_start",
    "template_else",
    "template_endif",
    "template_for_start",
    "template_endfor",
)

_DIRECTIVES_DETAIL = (
    "Template directives (%{if ...} and %{for ...}) are not supported by tunectl. Use a "
    "conditional or a for expression inside ${...} instead, or write %%{ for a literal %{."
)


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        # False while building an interpolation of a heredoc, which is parsed on its own:
        # its lines are right, its columns are not the file's.
        self.columns = True

    # -- helpers --------------------------------------------------------------

    def span(
        self,
        line: int,
        column: int | None = None,
        end_line: int | None = None,
        end_column: int | None = None,
    ) -> SourceRange:
        if not self.columns:
            column = end_column = None
        return SourceRange(self.filename, line, end_line, column, end_column)

    def range(self, node: Any) -> SourceRange:
        """From the node's first character to just after its last (trailing newlines and
        comments left out)."""
        line, column = start_pos(node)
        end_line, end_column = end_pos(node)
        return self.span(line, column, end_line, end_column)

    def fail(self, summary: str, detail: str, where: SourceRange | int) -> NoReturn:
        rng = where if isinstance(where, SourceRange) else self.span(where)
        raise DiagnosticError(error(summary, detail, rng))

    # -- structure ------------------------------------------------------------

    def start(self, tree: Tree, text: str) -> Body:
        body_tree = tree.children[0]
        last = max(1, text.count("\n") + (0 if text.endswith("\n") or not text else 1))
        return self.body(body_tree, SourceRange(self.filename, 1, last))

    def body(self, tree: Tree, rng: SourceRange) -> Body:
        body = Body(rng)
        prev_end: int | None = None
        prev_kind = ""
        for child in tree_kids(tree):
            start = first_line(child)
            if prev_end is not None and start <= prev_end:
                where = self.range(first_token(child))
                if prev_kind == "attribute":
                    self.fail(
                        "Missing newline after argument",
                        "An argument definition must end with a newline.",
                        where,
                    )
                self.fail(
                    "Missing newline after block definition",
                    "A block definition must end with a newline.",
                    where,
                )
            prev_end, prev_kind = last_line(child), child.data
            if child.data == "attribute":
                attr = self.attribute(child)
                first = body.attributes.get(attr.name)
                if first is not None:
                    raise DiagnosticError(
                        error(
                            "Attribute redefined",
                            f'The attribute "{attr.name}" was already defined at '
                            f"{first.range.filename} line {first.range.line}. "
                            "Each attribute may be defined only once.",
                            attr.range,
                        )
                    )
                body.attributes[attr.name] = attr
            elif child.data == "block":
                body.blocks.append(self.block(child))
        return body

    def name(self, tree: Tree) -> str:
        return str(tree.children[0])

    def attribute(self, tree: Tree) -> Attribute:
        name_tree, expr_tree = tree_kids(tree)
        return Attribute(self.name(name_tree), self.expr(expr_tree), self.range(tree))

    def block(self, tree: Tree) -> Block:
        kids = tree_kids(tree)
        type_ = self.name(kids[0])
        labels: list[str] = []
        body_tree = kids[-1]
        for label in kids[1:-1]:
            if label.data == "string":
                value = self.string(label)
                if not isinstance(value, Literal):
                    self.fail(
                        "Invalid block label",
                        "Block labels must be plain quoted strings, without ${...} interpolation.",
                        self.range(label),
                    )
                labels.append(value.value)
            else:
                labels.append(self.name(label))
        braces = [
            c for c in tree.children if isinstance(c, Token) and c.type in ("LBRACE", "RBRACE")
        ]
        close_line, close_column = end_pos(braces[-1])
        body_range = self.span(braces[0].line or 1, braces[0].column, close_line, close_column)
        line, column = start_pos(tree)
        rng = self.span(line, column, close_line, close_column)
        return Block(type_, labels, self.body(body_tree, body_range), rng)

    # -- expressions ----------------------------------------------------------

    def expr(self, node: Tree) -> Expr:
        data = node.data
        if data == "expr_term":
            return self.term(node)
        if data == "binary_op":
            return self.binary(node)
        if data == "conditional":
            cond, yes, no = tree_kids(node)
            return Conditional(self.range(node), self.expr(cond), self.expr(yes), self.expr(no))
        if data == "unary_op":
            op = str(node.children[0])
            operand = self.expr(tree_kids(node)[0])
            value = operand.value if isinstance(operand, Literal) else None
            if op == "-" and isinstance(value, int | float) and not isinstance(value, bool):
                return Literal(self.range(node), -value)  # a negative number literal
            return UnaryOp(self.range(node), op, operand)
        return self.term_inner(node, node)

    def binary(self, node: Tree) -> Expr:
        # Left-recursive chains (`1 + 2 + ... + n`) are walked iteratively.
        pending: list[tuple[Tree, Tree]] = []
        cur = node
        while isinstance(cur, Tree) and cur.data == "binary_op":
            left, term = tree_kids(cur)[:2]
            pending.append((cur, term))
            cur = left
        result = self.expr(cur)
        for op_node, term in reversed(pending):
            op_tree, right = tree_kids(term)
            op_token = cast(Token, op_tree.children[0])
            op = _BINARY_OPS.get(op_token.type, str(op_token).strip())
            end_line, end_column = end_pos(op_node)
            start = result.range
            rng = self.span(start.line, start.column, end_line, end_column)
            result = BinaryOp(rng, op, result, self.expr(right))
        return result

    def term(self, node: Tree) -> Expr:
        children = [c for c in node.children if not is_nl(c)]
        if children and isinstance(children[0], Token) and children[0].type == "LPAR":
            return self.expr(tree_kids(node)[0])
        return self.term_inner(children[0], node)

    def term_inner(self, inner: Tree, outer: Tree) -> Expr:
        data = inner.data
        rng = self.range(outer)
        if data == "int_lit":
            text = str(inner.children[0])
            try:
                return Literal(rng, int(text))
            except ValueError:
                self.fail("Invalid number literal", "This number has too many digits.", rng)
        if data == "float_lit":
            value = _float_token(str(inner.children[0]))
            if math.isinf(value):
                self.fail(
                    "Invalid number literal",
                    "This number is too large to be represented.",
                    rng,
                )
            return Literal(rng, value)
        if data == "literal_value":
            return Literal(
                rng, {"true": True, "false": False, "null": None}[str(inner.children[0])]
            )
        if data == "identifier":
            return Traversal(rng, self.name(inner), [])
        if data == "string":
            return self.string(inner)
        if data == "tuple":
            return TupleExpr(rng, [self.expr(c) for c in tree_kids(inner)])
        if data == "object":
            return self.object(inner, rng)
        if data == "function_call":
            return self.call(inner, rng)
        if data in ("heredoc_template", "heredoc_template_trim"):
            return self.heredoc(cast(Token, inner.children[0]), rng)
        if data in _CHAIN_TREES:
            return self.chain(inner, rng)
        if data in ("attr_splat_expr_term", "full_splat_expr_term"):
            self.fail(
                "Splat expressions are not supported",
                "Splat expressions (x.*.y and x[*].y) are not supported by tunectl. "
                "Use a for expression instead: [for v in x : v.y].",
                rng,
            )
        if data == "for_tuple_expr":
            return self.for_expr(inner, rng, object_form=False)
        if data == "for_object_expr":
            return self.for_expr(inner, rng, object_form=True)
        if data == "template_string":
            self.fail(
                "Invalid expression",
                'An escaped quote (\\") is only valid inside a quoted string.',
                rng,
            )
        if data == "expr_term":
            return self.term(inner)
        if data in ("binary_op", "conditional", "unary_op"):
            return self.expr(inner)
        self.fail("Invalid expression", f"Unexpected {data} here.", rng)

    def chain(self, node: Tree, rng: SourceRange) -> Expr:
        steps: list[str | Expr] = []
        cur = node
        while True:
            base, accessor = tree_kids(cur)
            steps.append(self.step(accessor))
            inner = [c for c in base.children if not is_nl(c)]
            if len(inner) == 1 and isinstance(inner[0], Tree) and inner[0].data in _CHAIN_TREES:
                cur = inner[0]
                continue
            break
        steps.reverse()
        if len(inner) == 1 and isinstance(inner[0], Tree) and inner[0].data == "identifier":
            return Traversal(rng, self.name(inner[0]), steps)
        result = self.expr(base)
        for step in steps:
            result = IndexExpr(rng, result, step)
        return result

    def step(self, accessor: Tree) -> str | Expr:
        if accessor.data == "get_attr":
            return self.name(tree_kids(accessor)[0])
        if accessor.data == "short_index":
            token = cast(Token, accessor.children[-1])
            return Literal(self.range(token), int(str(token)))
        return self.expr(tree_kids(accessor)[0])

    def call(self, node: Tree, rng: SourceRange) -> FunctionCall:
        names = [
            self.name(c) for c in node.children if isinstance(c, Tree) and c.data == "identifier"
        ]
        args: list[Expr] = []
        expand = False
        for child in node.children:
            if isinstance(child, Tree) and child.data == "arguments":
                args = [self.expr(c) for c in tree_kids(child)]
                expand = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in child.children)
        return FunctionCall(rng, "::".join(names), args, expand)

    def object(self, node: Tree, rng: SourceRange) -> ObjectExpr:
        items: list[tuple[Expr, Expr]] = []
        prev_end: int | None = None
        for child in node.children:
            if isinstance(child, Token) and child.type == "COMMA":
                prev_end = None
                continue
            if not isinstance(child, Tree) or child.data != "object_elem":
                continue
            start = first_line(child)
            if prev_end is not None and start <= prev_end:
                self.fail(
                    "Missing attribute separator",
                    "Expected a newline or comma to mark the beginning of the next attribute.",
                    start,
                )
            prev_end = last_line(child)
            key_tree, value_tree = tree_kids(child)
            items.append((self.object_key(key_tree), self.expr(value_tree)))
        return ObjectExpr(rng, items)

    def object_key(self, key_tree: Tree) -> Expr:
        rng = self.range(key_tree)
        inner = tree_kids(key_tree)[0]
        if inner.data == "keyword":
            return Literal(rng, self.name(inner))
        if inner.data == "expr_term":
            children = [c for c in inner.children if not is_nl(c)]
            first = children[0]
            if isinstance(first, Tree) and first.data in ("identifier", "literal_value"):
                return Literal(rng, self.name(first))
        return self.expr(inner)

    def for_expr(self, node: Tree, rng: SourceRange, object_form: bool) -> ForExpr:
        intro = next(c for c in tree_kids(node) if c.data == "for_intro")
        names = [self.name(c) for c in tree_kids(intro) if c.data == "identifier"]
        collection = self.expr(next(c for c in tree_kids(intro) if c.data != "identifier"))
        key_var, value_var = (names[0], names[1]) if len(names) == 2 else (None, names[0])
        exprs = [c for c in tree_kids(node) if c.data not in ("for_intro", "for_cond")]
        cond_tree = next((c for c in tree_kids(node) if c.data == "for_cond"), None)
        condition = self.expr(tree_kids(cond_tree)[0]) if cond_tree is not None else None
        grouping = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children)
        if object_form:
            key_expr, value_expr = (self.expr(e) for e in exprs)
            return ForExpr(
                rng, key_var, value_var, collection, value_expr, key_expr, condition, grouping
            )
        return ForExpr(rng, key_var, value_var, collection, self.expr(exprs[0]), None, condition)

    # -- strings and templates ------------------------------------------------

    def string(self, node: Tree) -> Expr:
        rng = self.range(node)
        parts: list[str | Expr] = []
        for part in node.children:
            if not isinstance(part, Tree):
                continue  # the quotes
            child = part.children[0]
            if isinstance(child, Token):
                text = str(child)
                if "\n" in text or "\r" in text:
                    self.fail(
                        "Invalid multi-line string",
                        "Quoted strings may not be split over multiple lines. To produce a "
                        "multi-line string, either use the \\n escape to represent a newline "
                        'character or use the "heredoc" multi-line template syntax.',
                        self.range(child),
                    )
                line, column = child.line or rng.line, child.column
                if child.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
                    column = column + 2 if column is not None else None
                    parts.append(text[1:2] + self.unescape(text[2:], line, column))
                else:
                    parts.append(self.unescape(text, line, column))
            elif child.data == "interpolation":
                parts.append(self.expr(tree_kids(child)[0]))
            elif child.data in _DIRECTIVE_TREES:
                self.fail("Template directives are not supported", _DIRECTIVES_DETAIL, rng)
        return _template(rng, parts)

    def unescape(self, text: str, line: int, column: int | None = None) -> str:
        """Resolve a quoted string's escapes; `column` is where `text` starts, if known."""
        if "\\" not in text:
            return text
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c != "\\":
                j = text.find("\\", i)
                j = n if j < 0 else j
                out.append(text[i:j])
                i = j
                continue
            esc = text[i + 1 : i + 2]
            at = self.span(line, column + i, line, column + i + 2) if column else line
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            elif esc in ("u", "U"):
                width = 4 if esc == "u" else 8
                digits = text[i + 2 : i + 2 + width]
                code = int(digits, 16) if re.fullmatch(r"[0-9A-Fa-f]+", digits or "-") else -1
                if len(digits) != width or code < 0 or code > 0x10FFFF or 0xD800 <= code < 0xE000:
                    self.fail(
                        "Invalid escape sequence",
                        f"The \\{esc} escape must be followed by {width} hexadecimal digits "
                        "naming a Unicode character.",
                        at,
                    )
                out.append(chr(code))
                i += 2 + width
            else:
                self.fail(
                    "Invalid escape sequence",
                    f'The symbol "{esc}" is not a valid escape sequence selector. Valid '
                    'escapes are \\n, \\r, \\t, \\", \\\\, \\uNNNN and \\UNNNNNNNN.',
                    at,
                )
        return "".join(out)

    def heredoc(self, token: Token, rng: SourceRange) -> Expr:
        value = str(token)
        first_nl = value.index("\n")
        rest = value[first_nl + 1 :].rstrip("\n").rstrip("\r")
        last_nl = rest.rfind("\n")
        body = rest[: last_nl + 1] if last_nl >= 0 else ""
        body = body.replace("\r\n", "\n")
        if value.startswith("<<-"):
            body = strip_indent(body)
        return self.template_text(body, (token.line or rng.line) + 1, rng)

    def template_text(self, text: str, line: int, rng: SourceRange) -> Expr:
        """Parse heredoc text: literal text with ${...} interpolations (no escapes)."""
        parts: list[str | Expr] = []
        i, n = 0, len(text)
        while i < n:
            j = next_marker(text, i)
            if j < 0:
                parts.append(text[i:])
                break
            parts.append(text[i:j])
            here = line + text.count("\n", 0, j)
            if text.startswith("$${", j) or text.startswith("%%{", j):
                parts.append(text[j + 1 : j + 3])
                i = j + 3
            elif text.startswith("%{", j):
                self.fail("Template directives are not supported", _DIRECTIVES_DETAIL, here)
            else:
                end = match_interpolation(text, j + 2)
                if end < 0:
                    self.fail(
                        "Unterminated template string",
                        'There is no closing "}" for this interpolation sequence.',
                        here,
                    )
                parts.append(self.interpolation(text[j + 2 : end], here))
                i = end + 1
        return _template(rng, parts)

    def interpolation(self, source: str, line: int) -> Expr:
        stripped = source.lstrip()
        line += source.count("\n", 0, len(source) - len(stripped))
        stripped = stripped.rstrip()
        wrapped = "\n" * (line - 1) + '_ = "${' + stripped + '}"\n'
        try:
            tree = parse_tree(wrapped, self.filename)
        except DiagnosticError as exc:
            raise DiagnosticError(_without_columns(d) for d in exc.diags) from None
        items = tree_kids(tree.children[0])
        if len(items) == 1 and items[0].data == "attribute":
            term = tree_kids(items[0])[1]
            string = tree_kids(term)[0] if term.data == "expr_term" else None
            if string is not None and string.data == "string":
                parts = tree_kids(string)
                if len(parts) == 1 and isinstance(parts[0].children[0], Tree):
                    interp = parts[0].children[0]
                    if interp.data == "interpolation":
                        saved, self.columns = self.columns, False
                        try:
                            return self.expr(tree_kids(interp)[0])
                        finally:
                            self.columns = saved
        self.fail(
            "Invalid template interpolation",
            "Expected a single expression inside ${...}.",
            line,
        )


def _without_columns(diag: Diagnostic) -> Diagnostic:
    if diag.subject is None:
        return diag
    subject = dataclasses.replace(diag.subject, column=None, end_column=None)
    return dataclasses.replace(diag, subject=subject)


def _template(rng: SourceRange, parts: list[str | Expr]) -> Expr:
    merged: list[str | Expr] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += part
                continue
        merged.append(part)
    if all(isinstance(p, str) for p in merged):
        return Literal(rng, "".join(p for p in merged if isinstance(p, str)))
    return TemplateExpr(rng, merged)


def read(text: str, filename: str) -> Body:
    """Parse HCL text into a `Body`; every problem is raised as a `DiagnosticError`."""
    # Parsing allocates a few hundred thousand acyclic objects per MiB; the cyclic garbage
    # collector would walk them again and again as they pile up (about 40% of the time of
    # a large file), so it is paused meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = parse_tree(text, filename)
        return _Builder(filename).start(tree, text)
    except RecursionError:
        raise DiagnosticError(
            error(
                "Configuration too deeply nested",
                "This file nests blocks or expressions too deeply to be processed. "
                "Simplify the nesting.",
                SourceRange(filename, 1),
            )
        ) from None
    finally:
        if collecting:
            gc.enable()
