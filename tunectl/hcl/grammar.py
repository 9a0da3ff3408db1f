"""python-hcl2's lark grammar: parsing to a lark tree, positions, and syntax errors.

`parse_tree` runs the grammar; a syntax error becomes one diagnostic (the parser stops at
the first, so a bad line gives one error) pointing at the line and column lark reports,
with Terraform's wording where the grammar lets us tell what was meant. The helpers read
positions and meaningful children from lark's nodes for `tunectl.hcl.reader`.
"""

from __future__ import annotations

from typing import Any

import hcl2
from lark import Token, Tree

from tunectl.diags import Diagnostic, DiagnosticError, SourceRange, error


def parse_tree(text: str, filename: str) -> Any:
    from lark.exceptions import LarkError

    try:
        return hcl2.parses_to_tree(text)
    except LarkError as exc:
        diag = syntax_diagnostic(exc, text, filename)
    raise DiagnosticError(diag)


def is_nl(node: Any) -> bool:
    if isinstance(node, Tree):
        return node.data == "new_line_or_comment"
    return isinstance(node, Token) and node.type == "NL_OR_COMMENT"


def tree_kids(node: Tree) -> list[Tree]:
    """The child trees that carry meaning (no tokens, no newlines or comments)."""
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def start_pos(node: Any) -> tuple[int, int | None]:
    """Where a node's text begins: (line, column), 1-based; leading blanks not counted."""
    while isinstance(node, Tree):
        kids = [c for c in node.children if not is_nl(c)]
        if not kids:
            return (node.meta.line, node.meta.column) if not node.meta.empty else (1, None)
        node = kids[0]
    line, column = node.line or 1, node.column
    text = str(node)
    blank = len(text) - len(text.lstrip(" \t"))
    if column is not None and blank and "\n" not in text[:blank]:
        column += blank
    return line, column


def end_pos(node: Any) -> tuple[int, int | None]:
    """Just after a node's last character other than trailing blanks, newlines and comments:
    (line, column), the column exclusive as in lark and Terraform."""
    while isinstance(node, Tree):
        kids = [c for c in node.children if not is_nl(c)]
        if not kids:
            if node.meta.empty:
                return 1, None
            return node.meta.end_line, node.meta.end_column
        node = kids[-1]
    line, column = node.line or 1, node.column
    text = str(node)
    kept = text.rstrip(" \t\r\n")
    if column is None:
        end = node.end_line or line
        return (end - 1 if text.endswith("\n") and end > line else end), None
    if not kept:
        return line, column
    newlines = kept.count("\n")
    if not newlines:
        return line, column + len(kept)
    return line + newlines, len(kept) - kept.rfind("\n")


def first_token(node: Any) -> Any:
    """The first token of a node that is not a newline or comment (or the node itself)."""
    while isinstance(node, Tree):
        kids = [c for c in node.children if not is_nl(c)]
        if not kids:
            return node
        node = kids[0]
    return node


def first_line(node: Any) -> int:
    return start_pos(node)[0]


def last_line(node: Any) -> int:
    """The last line holding something other than trailing newlines and comments."""
    return end_pos(node)[0]


# -- syntax errors ------------------------------------------------------------


def token_range(token: Token, filename: str) -> SourceRange:
    """A token's first word (what `_describe_found` names); a newline is one column wide."""
    line, column = start_pos(token)
    if column is None:
        return SourceRange(filename, line)
    words = str(token).lstrip(" \t").split("\n", 1)[0].split(None, 1)
    width = len(words[0]) if words else 1
    return SourceRange(filename, line, line, column, column + width)


_EXPR_START = {"INT_LITERAL", "FLOAT_LITERAL", "NAME", "DBLQUOTE", "LSQB", "LPAR", "MINUS", "NOT"}

_TOKEN_NAMES = {
    "RBRACE": '"}"',
    "LBRACE": '"{"',
    "RSQB": '"]"',
    "LSQB": '"["',
    "RPAR": '")"',
    "LPAR": '"("',
    "COMMA": '","',
    "EQ": '"="',
    "COLON": '":"',
    "QMARK": '"?"',
    "DOT": '"."',
    "DBLQUOTE": 'a quote (")',
    "NL_OR_COMMENT": "a newline",
    "NAME": "a name",
    "INT_LITERAL": "a number",
    "FLOAT_LITERAL": "a number",
    "$END": "the end of the file",
    "FOR_OBJECT_ARROW": '"=>"',
    "ELLIPSIS": '"..."',
    "INTERP_START": '"${"',
    "IN": '"in"',
    "IF": '"if"',
    "FOR": '"for"',
}

_OPENERS = {"LBRACE", "LSQB", "LPAR", "DBLQUOTE", "INTERP_START"}
_CLOSERS = {"RBRACE": "LBRACE", "RSQB": "LSQB", "RPAR": "LPAR"}


def _describe_found(token: Any) -> str:
    if token is None or token.type == "$END":
        return "the end of the file"
    text = str(token).lstrip(" \t")
    if not text or text[0] in "\r\n":
        return "the end of the line"
    if text.startswith(("#", "//", "/*")):
        return "a comment"
    if token.type in _TOKEN_NAMES and token.type not in ("NAME", "INT_LITERAL", "FLOAT_LITERAL"):
        return _TOKEN_NAMES[token.type]
    words = text.split(None, 1)
    if not words:  # only unusual white space, such as a non-breaking space
        return f"the character U+{ord(text[0]):04X}"
    return f'"{words[0][:20]}"'


def _describe_expected(expected: set[str]) -> str:
    names: list[str] = []
    if expected & _EXPR_START:
        names.append("an expression")
    for term in sorted(expected):
        if term in _EXPR_START and names and names[0] == "an expression":
            continue
        name = _TOKEN_NAMES.get(term)
        if name and name not in names:
            names.append(name)
    if not names:
        return "something else"
    if len(names) > 5:
        names = names[:5]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _unclosed(exc: Any, filename: str) -> Diagnostic | None:
    """For an error at the end of the file: the innermost bracket or quote left open."""
    try:
        stack = list(exc.interactive_parser.parser_state.value_stack)
    except AttributeError:
        return None
    for pos in range(len(stack) - 1, -1, -1):
        item = stack[pos]
        if not isinstance(item, Token) or item.type not in _OPENERS:
            continue
        where = token_range(item, filename)
        prev = next((v for v in reversed(stack[:pos]) if not is_nl(v)), None)
        tail = " This may be caused by incorrect nesting elsewhere in this file."
        if item.type == "LBRACE":
            if prev is None or isinstance(prev, Tree):
                return error(
                    "Unclosed configuration block",
                    "There is no closing brace for this block before the end of the file." + tail,
                    where,
                )
            return error(
                "Unterminated object constructor expression",
                "There is no corresponding closing brace before the end of the file." + tail,
                where,
            )
        if item.type == "LSQB":
            return error(
                "Unterminated tuple constructor expression",
                "There is no corresponding closing bracket before the end of the file." + tail,
                where,
            )
        if item.type == "LPAR":
            if isinstance(prev, Tree) and prev.data == "identifier":
                return error(
                    "Unterminated function call",
                    "There is no closing parenthesis for this function call before the end of "
                    "the file." + tail,
                    where,
                )
            return error(
                "Unbalanced parentheses",
                "Expected a closing parenthesis to terminate the expression." + tail,
                where,
            )
        return error(
            "Unterminated template string",
            "No closing marker was found for the string.",
            where,
        )
    return None


def _split_string(exc: Any, filename: str) -> Diagnostic | None:
    """A quoted string read so far runs over a line end: its closing quote is missing.

    The grammar lets a quoted string span lines, so a missing quote swallows the lines
    below up to the next quote and the parser stops somewhere further down; the line to
    blame is the one the string starts on.
    """
    try:
        stack = list(exc.interactive_parser.parser_state.value_stack)
    except AttributeError:
        return None
    pending: list[Any] = list(reversed(stack))
    while pending:
        node = pending.pop()
        if isinstance(node, Tree):
            pending.extend(reversed(node.children))
        elif node.type == "STRING_CHARS" and "\n" in str(node) and not str(node).startswith("<<"):
            line, column = node.line or 1, node.column
            where = SourceRange(filename, line)
            if column is not None and column > 1:
                where = SourceRange(filename, line, line, column - 1, column)
            return error(
                "Unterminated template string",
                "This quoted string has no closing quote on its line. A quoted string may not "
                "be split over several lines: use the \\n escape for a newline, or a heredoc.",
                where,
            )
    return None


def syntax_diagnostic(exc: Exception, text: str, filename: str) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    last = max(1, text.count("\n") + (0 if text.endswith("\n") or not text else 1))
    line = getattr(exc, "line", None)
    if not isinstance(line, int) or line < 1 or line > last:
        line = last
    where = SourceRange(filename, line)
    column = getattr(exc, "column", None)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END" and exc.token.line == line:
        where = token_range(exc.token, filename)
    elif isinstance(exc, UnexpectedCharacters) and isinstance(column, int) and column >= 1:
        where = SourceRange(filename, line, line, column, column + 1)
    if isinstance(exc, UnexpectedToken):
        split = _split_string(exc, filename)
        if split is not None:
            return split
        token = exc.token
        expected = set(exc.expected or ())
        found = _describe_found(token)
        if token.type == "$END" or (token.type == "NL_OR_COMMENT" and "RBRACE" in expected):
            diag = _unclosed(exc, filename)
            if diag is not None and token.type == "$END":
                return diag
            if diag is not None and diag.summary == "Unterminated template string":
                return diag
        raw = str(token).lstrip(" \t")
        if token.type == "STRING_CHARS" and raw.startswith(("<<", "<<-")):
            return error(
                "Unterminated template string",
                "This heredoc has no closing marker: the marker word must appear alone on "
                "a later line.",
                where,
            )
        if token.type == "RBRACE" and expected <= {"$END", "NL_OR_COMMENT"}:
            return error(
                "Unexpected closing brace",
                'This "}" has no matching opening brace. Check the brace nesting above this line.',
                where,
            )
        if expected and expected <= {"NAME", "INT_LITERAL"}:
            return error(
                "Invalid attribute name",
                f'An attribute name or index is required after ".", but found {found}.',
                where,
            )
        if expected and expected <= {"LBRACE", "NL_OR_COMMENT"}:
            return error(
                "Invalid block definition",
                f'Expected "{{" to open a block, but found {found}. To set an argument, '
                "write name = value.",
                where,
            )
        if "EQ" in expected and "LBRACE" in expected:
            return error(
                "Invalid argument or block definition",
                f'Expected "=" to set an argument, or a block label or "{{" to open a block, '
                f"but found {found}.",
                where,
            )
        if "NAME" in expected and "EQ" not in expected and not expected & (_EXPR_START - {"NAME"}):
            return error(
                "Argument or block definition required",
                f"An argument or block definition is required here, but found {found}. "
                'Arguments look like name = value, blocks like name "label" { ... }.',
                where,
            )
        if expected & _EXPR_START and "COMMA" not in expected and "RSQB" not in expected:
            return error(
                "Invalid expression",
                f"Expected the start of an expression, but found {found}.",
                where,
            )
        return error(
            "Invalid HCL syntax",
            f"Expected {_describe_expected(expected)}, but found {found}. Check for a missing "
            "comma, bracket, brace or quote.",
            where,
        )
    if isinstance(exc, UnexpectedCharacters):
        char = getattr(exc, "char", "")
        return error(
            "Invalid character",
            f"The character {char!r} is not valid here.",
            where,
        )
    return error(
        "Invalid HCL syntax",
        "The file could not be parsed. Check for a missing comma, bracket, brace or quote.",
        where,
    )
