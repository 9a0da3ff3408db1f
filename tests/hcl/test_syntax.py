"""Tests for tunectl.hcl.syntax.parse: lark tree -> AST, and syntax diagnostics."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunectl.diags import Diagnostic, DiagnosticError, SourceRange
from tunectl.hcl.expr import Scope, evaluate
from tunectl.hcl.syntax import (
    BinaryOp,
    Body,
    Conditional,
    ForExpr,
    FunctionCall,
    IndexExpr,
    Literal,
    ObjectExpr,
    TemplateExpr,
    Traversal,
    TupleExpr,
    UnaryOp,
    parse,
)


def expr_of(src: str):
    return parse(f"x = {src}\n", "t.hcl").attributes["x"].expr


def value_of(src: str):
    e = expr_of(src)
    assert isinstance(e, Literal), e
    return e.value


def syntax_error(text: str) -> Diagnostic:
    with pytest.raises(DiagnosticError) as info:
        parse(text, "main.hcl")
    diag = info.value.diags[0]
    assert diag.severity == "error"
    assert diag.subject is not None and diag.subject.filename == "main.hcl"
    return diag


# -- numbers, literals ----------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("-3", -3),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1e-5", 1e-5),
        ("1E5", 1e5),
        ("2.5E+3", 2500.0),
        ("-1e-3", -0.001),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_number_and_keyword_literals(src, expected):
    value = value_of(src)
    assert value == expected
    assert type(value) is type(expected)


def test_exponent_literals_are_floats():
    assert isinstance(value_of("1e-5"), float)
    assert isinstance(value_of("2.5E+3"), float)
    assert isinstance(value_of("7"), int)


def test_unary_minus_on_expression():
    e = expr_of("- var.x")
    assert isinstance(e, UnaryOp) and e.op == "-"
    assert isinstance(e.operand, Traversal)
    e = expr_of("!true")
    assert isinstance(e, UnaryOp) and e.op == "!"


def test_subtraction_is_not_a_negative_literal():
    e = expr_of("5-3")
    assert isinstance(e, BinaryOp) and e.op == "-"
    e = expr_of("x -3")
    assert isinstance(e, BinaryOp) and e.op == "-"
    # The parser's grammar reads these as one number token; they are subtractions.
    assert value_of("-1-1.5e-3") == pytest.approx(-1.0015)
    assert value_of("-1-2-3.5") == -6.5


# -- strings and templates ------------------------------------------------------


def test_string_escapes_are_decoded():
    assert value_of(r'"a\nb\tc\"d\\e\u00e9\U0001F600"') == 'a\nb\tc"d\\eé\U0001f600'
    assert value_of(r'"\r"') == "\r"


def test_escaped_interpolation_is_literal():
    assert value_of('"cost: $${x} and %%{y}"') == "cost: ${x} and %{y}"
    assert value_of('"just $ and % and $x"') == "just $ and % and $x"


def test_empty_string():
    assert value_of('""') == ""


def test_template_parts():
    e = expr_of('"lr=${var.lr}, n=${local.n + 1}!"')
    assert isinstance(e, TemplateExpr)
    assert e.parts[0] == "lr="
    assert isinstance(e.parts[1], Traversal) and e.parts[1].root == "var"
    assert e.parts[2] == ", n="
    assert isinstance(e.parts[3], BinaryOp)
    assert e.parts[4] == "!"


def test_single_interpolation_template():
    e = expr_of('"${param.lr}"')
    assert isinstance(e, TemplateExpr) and len(e.parts) == 1


def test_heredoc():
    body = parse("x = <<EOF\n  hello\n    ${var.name}\nEOF\ny = 1\n", "t.hcl")
    e = body.attributes["x"].expr
    assert isinstance(e, TemplateExpr)
    assert e.parts[0] == "  hello\n    "
    assert isinstance(e.parts[1], Traversal) and e.parts[1].range.line == 3
    assert e.parts[2] == "\n"
    assert e.range.line == 1 and e.range.end_line == 4
    assert body.attributes["y"].range.line == 5


def test_heredoc_without_interpolation_is_literal_and_keeps_backslashes():
    body = parse("x = <<EOT\na\\nb\n$${x}\nEOT\n", "t.hcl")
    assert body.attributes["x"].expr == Literal(body.attributes["x"].expr.range, "a\\nb\n${x}\n")


def test_indented_heredoc_trims_common_indentation():
    text = "x = <<-EOF\n    line one\n      indented\n\n    last\n  EOF\n"
    assert parse(text, "t.hcl").attributes["x"].expr.value == "line one\n  indented\n\nlast\n"


def test_empty_heredoc_and_crlf():
    assert parse("x = <<EOF\nEOF\n", "t").attributes["x"].expr.value == ""
    text = "x = <<-EOF\r\n  a\r\n  b\r\n  EOF\r\ny = 2\r\n"
    body = parse(text, "t")
    assert body.attributes["x"].expr.value == "a\nb\n"
    assert body.attributes["y"].expr.value == 2


def test_heredoc_multiline_interpolation():
    text = "x = <<EOF\n${jsonencode({\n  a = 1\n})}\nEOF\n"
    e = parse(text, "t").attributes["x"].expr
    assert isinstance(e, TemplateExpr)
    assert isinstance(e.parts[0], FunctionCall)
    assert evaluate(e, Scope()) == '{"a":1}\n'


def test_heredoc_interpolation_with_braces_in_strings():
    e = parse('x = <<EOF\n${"}"}-${upper("{a}")}\nEOF\n', "t").attributes["x"].expr
    assert evaluate(e, Scope()) == "}-{A}\n"


# -- collections and references -------------------------------------------------


def test_nested_objects_and_lists():
    e = expr_of('{ a = [1, 2, { b = "c" }], "quoted key" = { inner = [] }, (var.k) = 3 }')
    assert isinstance(e, ObjectExpr)
    keys = [k for k, _ in e.items]
    assert keys[0] == Literal(keys[0].range, "a")
    assert keys[1] == Literal(keys[1].range, "quoted key")
    assert isinstance(keys[2], Traversal) and keys[2].root == "var"
    first = e.items[0][1]
    assert isinstance(first, TupleExpr) and len(first.items) == 3
    assert isinstance(first.items[2], ObjectExpr)


def test_object_keys_keywords_and_colons():
    e = expr_of("{ in = 1, for: 2, true = 3 }")
    assert [k.value for k, _ in e.items] == ["in", "for", "true"]


def test_multiline_collections():
    e = expr_of("[\n  1,\n  2,\n]")
    assert isinstance(e, TupleExpr) and len(e.items) == 2
    e = expr_of("{\n  a = 1\n  b = 2\n}")
    assert isinstance(e, ObjectExpr) and len(e.items) == 2


def test_traversal_steps():
    e = expr_of("a.b[0].c")
    assert isinstance(e, Traversal)
    assert e.root == "a"
    assert e.steps[0] == "b"
    assert isinstance(e.steps[1], Literal) and e.steps[1].value == 0
    assert e.steps[2] == "c"
    e = expr_of("a.0")
    assert isinstance(e.steps[0], Literal) and e.steps[0].value == 0
    e = expr_of('var.m["key"][var.i]')
    assert e.steps[0] == "m"
    assert e.steps[1].value == "key"
    assert isinstance(e.steps[2], Traversal)


def test_bare_name_is_traversal():
    e = expr_of("foo")
    assert e == Traversal(e.range, "foo", [])


def test_index_on_non_names():
    e = expr_of("[1, 2][0]")
    assert isinstance(e, IndexExpr) and isinstance(e.collection, TupleExpr)
    assert e.key.value == 0
    e = expr_of("f(x).a.b")
    assert isinstance(e, IndexExpr) and e.key == "b"
    assert isinstance(e.collection, IndexExpr) and e.collection.key == "a"
    assert isinstance(e.collection.collection, FunctionCall)
    e = expr_of("(var.x).y")
    assert isinstance(e, IndexExpr) and isinstance(e.collection, Traversal)


def test_function_calls():
    e = expr_of("max(1, 2, 3,)")
    assert isinstance(e, FunctionCall) and e.name == "max" and len(e.args) == 3
    assert not e.expand_final
    e = expr_of("min(var.list...)")
    assert e.expand_final
    assert expr_of("f()").args == []


def test_operator_precedence():
    e = expr_of("1 + 2 * 3 == 7 && !false || x")
    assert isinstance(e, BinaryOp) and e.op == "||"
    assert e.left.op == "&&"
    assert e.left.left.op == "=="
    assert e.left.left.left.op == "+"
    assert e.left.left.left.right.op == "*"
    e = expr_of("10 - 4 - 3")
    assert e.op == "-" and e.left.op == "-" and e.right.value == 3


@pytest.mark.parametrize(
    "op", ["+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", "&&", "||"]
)
def test_each_binary_operator(op):
    e = expr_of(f"a {op} b")
    assert isinstance(e, BinaryOp) and e.op == op


def test_operator_continuation_lines():
    e = expr_of("1 +\n  2\n  + 3")
    assert isinstance(e, BinaryOp) and e.op == "+"
    assert evaluate(e, Scope()) == 6


def test_conditional():
    e = expr_of('var.x > 1 ? "big" : "small"')
    assert isinstance(e, Conditional)
    assert isinstance(e.condition, BinaryOp)


def test_for_expressions():
    e = expr_of("[for i, v in var.l : v * 2 if i > 0]")
    assert isinstance(e, ForExpr)
    assert (e.key_var, e.value_var) == ("i", "v")
    assert e.key_expr is None and e.condition is not None
    e = expr_of("{for k, v in var.m : k => v...}")
    assert e.key_expr is not None and e.grouping
    e = expr_of("[for v in var.l : v]")
    assert e.key_var is None and e.value_var == "v" and e.condition is None


def test_long_operator_chain_does_not_recurse():
    e = expr_of(" + ".join(["1"] * 3000))
    assert evaluate(e, Scope()) == 3000


# -- structure ------------------------------------------------------------------


def test_blocks_labels_and_ranges():
    text = (
        "# comment\n"
        'experiment "mnist" {\n'
        "  max_trials = 40\n"
        "  param lr {\n"
        '    type = "loguniform"\n'
        "  }\n"
        "}\n"
        "\n"
        "in {}\n"
    )
    body = parse(text, "main.hcl")
    assert isinstance(body, Body)
    (exp, in_block) = body.blocks
    assert exp.type == "experiment" and exp.labels == ["mnist"]
    # Lines and columns, start to just after the end, as Terraform's ranges.
    assert exp.range == SourceRange("main.hcl", 2, 7, 1, 2)
    assert exp.body.attributes["max_trials"].range == SourceRange("main.hcl", 3, 3, 3, 18)
    (param,) = exp.body.blocks_of("param")
    assert param.labels == ["lr"]
    assert param.body.attributes["type"].expr.value == "loguniform"
    assert param.range.line == 4 and param.range.end_line == 6
    assert in_block.type == "in" and in_block.labels == []


def test_attribute_order_is_preserved():
    body = parse("z = 1\na = 2\nm = 3\n", "t")
    assert list(body.attributes) == ["z", "a", "m"]


def test_multiline_expression_range():
    body = parse("x = [\n  1,\n  2,\n]\ny = 1 +\n  2\n", "t")
    assert body.attributes["x"].range == SourceRange("t", 1, 4, 1, 2)
    assert body.attributes["y"].expr.range.end_line == 6
    assert body.attributes["y"].expr.range.end_column == 4


def test_empty_file_and_comments_only():
    assert parse("", "t").attributes == {}
    body = parse("# nothing\n// here\n/* or\n here */\n", "t")
    assert body.attributes == {} and body.blocks == []


def test_byte_order_mark_is_ignored():
    assert parse("\ufeffa = 1\n", "t").attributes["a"].expr.value == 1


def test_single_line_block():
    body = parse('b "x" { a = 1 }\n', "t")
    assert body.blocks[0].body.attributes["a"].expr.value == 1


# -- errors ---------------------------------------------------------------------


def test_duplicate_attribute():
    diag = syntax_error("a = 1\nb = 2\n\na = 3\n")
    assert diag.summary == "Attribute redefined"
    assert diag.subject.line == 4
    assert "line 1" in diag.detail


def test_duplicate_attribute_in_block():
    diag = syntax_error('experiment "x" {\n  a = 1\n  a = 2\n}\n')
    assert diag.summary == "Attribute redefined" and diag.subject.line == 3


@pytest.mark.parametrize(
    ("text", "summary", "line"),
    [
        ('a = 1\nexperiment "x" {\n  b = 2\n', "Unclosed configuration block", 2),
        ("a = 1\nb = {\n  c = 1\n", "Unterminated object constructor expression", 2),
        ("a = [1,\n 2\n", "Unterminated tuple constructor expression", 1),
        ("a = 1\n\nb = (1 + 2\n", "Unbalanced parentheses", 3),
        ("a = f(1,\n", "Unterminated function call", 1),
        ('a = 1\nb = "abc', "Unterminated template string", 2),
        ("a = <<EOF\nabc\n", "Unterminated template string", 1),
        ("a = 1\nb = \nc = 2\n", "Invalid expression", 2),
        ("a = 1\nb = @\n", "Invalid expression", 2),
        ("a = 1 b = 2\n", "Missing newline after argument", 1),
        ("a {\n} b = 1\n", "Missing newline after block definition", 2),
        ("a = { x = 1 y = 2 }\n", "Missing attribute separator", 1),
        ("a = 1\n}\n", "Unexpected closing brace", 2),
        ('a = 1\n"x" = 2\n', "Argument or block definition required", 2),
        ("a = 1\nfoo\n", "Invalid block definition", 2),
        ("a = [1 2]\n", "Invalid HCL syntax", 1),
        ("a = 1\nb = var.\n", "Invalid attribute name", 2),
        ('a = "x\ny"\n', "Invalid multi-line string", 1),
        ('a = "\\q"\n', "Invalid escape sequence", 1),
        ('a = "\\u12"\n', "Invalid escape sequence", 1),
        ('a = "\\ud800"\n', "Invalid escape sequence", 1),
        ('\n\na = "%{if x}y%{endif}"\n', "Template directives are not supported", 3),
        ("a = <<EOF\nx\n%{for v in l}\nEOF\n", "Template directives are not supported", 3),
        ("a = 1\nb = x[*].y\n", "Splat expressions are not supported", 2),
        ("b = x.*.y\n", "Splat expressions are not supported", 1),
        ('b "${x}" {\n}\n', "Invalid block label", 1),
        ("a = 1\nb = <<EOF\nx ${1 +}\nEOF\n", "Invalid expression", 3),
        ("a = " + "9" * 5000 + "\n", "Invalid number literal", 1),
        ("a = 1e999\n", "Invalid number literal", 1),
        ('a = \\"x\\"\n', "Invalid expression", 1),
    ],
)
def test_syntax_errors(text, summary, line):
    diag = syntax_error(text)
    assert diag.summary == summary, diag
    assert diag.subject.line == line, diag
    assert diag.detail and "Traceback" not in diag.detail


def test_parse_error_detail_is_friendly():
    diag = syntax_error("a = [1 2]\n")
    assert 'Expected ","' in diag.detail and 'found "2"' in diag.detail


def test_deep_nesting_is_a_diagnostic():
    diag = syntax_error("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert diag.summary == "Configuration too deeply nested"


def test_moderate_nesting_is_fine():
    e = expr_of("[" * 50 + "1" + "]" * 50)
    value = evaluate(e, Scope())
    for _ in range(50):
        value = value[0]
    assert value == 1


# -- performance ----------------------------------------------------------------


def _big_file(blocks: int) -> str:
    chunks = ['variable_lr = 0.01\nname = "big"\n']
    for i in range(blocks):
        chunks.append(
            f'experiment "e{i}" {{\n'
            f"  max_trials = {i} * 2 + 1\n"
            f'  command    = "python train.py --lr ${{param.lr}} --seed {i}"\n'
            f'  tags       = {{ team = "ml", idx = {i} }}\n'
            f"  layers     = [for n in range(3) : n * 64]\n"
            f'  param "lr" {{\n'
            f'    type = "loguniform"\n'
            f"    low  = 1e-5\n"
            f"    high = 1e-1\n"
            f"  }}\n"
            f"}}\n"
        )
    return "".join(chunks)


# Parsing speed is measured by bench/config_load.py against a baseline in the same run.


def test_parser_is_cached():
    import hcl2.parser

    parse("a = 1\n", "t")
    assert hcl2.parser.parser() is hcl2.parser.parser()


# -- robustness (property based) ------------------------------------------------

_SAMPLE = (
    'variable "lr" {\n  default = 0.01\n}\n'
    'experiment "mnist" {\n'
    '  command = "python train.py --lr ${param.lr} $${HOME}"\n'
    "  trials  = [for i in range(3) : i * 2 if i > 0]\n"
    '  obj     = { a = 1, "b" = [true, null], (var.k) = -1.5e-3 }\n'
    '  cond    = var.x > 1 ? upper("a") : lower("B")\n'
    "  doc     = <<-EOT\n    hello ${var.name}\n  EOT\n"
    "}\n"
)

_ALPHABET = st.sampled_from(
    list("{}[]()\"'\\$%=:,.?!<>+-*/#\n \t0123456789aeflnrtuxEOF_~")
    + ["${", "%{", "<<EOF\n", "<<-EOF\n", "EOF\n", "/*", "*/", "\r\n", "\x00", "é", "..."]
)


def _check_parse(text: str) -> None:
    try:
        body = parse(text, "fuzz.hcl")
    except DiagnosticError as exc:
        assert exc.diags and exc.diags[0].subject is not None
        return
    scope = Scope(
        variables={"lr": 0.1, "k": "key", "x": 2, "name": "n"},
        deferred=frozenset({"param"}),
    )
    stack = [body]
    while stack:
        b = stack.pop()
        for attr in b.attributes.values():
            try:
                evaluate(attr.expr, scope)
            except DiagnosticError:
                pass
        stack.extend(block.body for block in b.blocks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_random_text_only_raises_diagnostics(text):
    _check_parse(text)


@st.composite
def _mutations(draw):
    text = _SAMPLE
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if kind == "insert":
            text = text[:pos] + draw(_ALPHABET) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)) :]
        elif kind == "replace":
            text = text[:pos] + draw(_ALPHABET) + text[pos + 1 :]
        else:
            end = min(len(text), pos + draw(st.integers(1, 30)))
            text = text[:pos] + text[pos:end] * 2 + text[end:]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_config_only_raises_diagnostics(text):
    _check_parse(text)


def test_sample_parses():
    body = parse(_SAMPLE, "sample.hcl")
    assert [b.type for b in body.blocks] == ["variable", "experiment"]


# -- the parse cache ---------------------------------------------------------------------


def test_parse_cache_hits_misses_and_survives_damage(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TUNECTL_CACHE_DIR", str(tmp_path))
    text = 'experiment "a" {\n  max_trials = 3\n}\n'
    first = parse(text, "main.hcl")
    entries = list((tmp_path / "hcl").glob("*.pickle"))
    assert len(entries) == 1
    assert parse(text, "main.hcl") == first  # read back from the cache
    # The file name is part of every location, so it is part of the key.
    assert parse(text, "other.hcl").range.filename == "other.hcl"
    # A changed text is parsed afresh, never served stale.
    changed = parse(text.replace("3", "4"), "main.hcl")
    assert changed.blocks[0].body.attributes["max_trials"].expr.value == 4
    # A damaged entry is ignored and rewritten.
    entries[0].write_bytes(b"not a pickle")
    assert parse(text, "main.hcl") == first


def test_parse_cache_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TUNECTL_CACHE_DIR", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    parse('experiment "a" {\n}\n', "main.hcl")
    assert not any(tmp_path.rglob("*.pickle"))


@pytest.mark.parametrize("text", ['a = \xa0"x"\n', "\xa0\n", "a = 1 \xa0\n"])
def test_unusual_white_space_is_named_not_a_crash(text):
    with pytest.raises(DiagnosticError) as info:
        parse(text, "main.hcl")
    assert "U+00A0" in info.value.diags[0].detail
