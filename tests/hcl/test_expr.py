"""Tests for tunectl.hcl.expr, values and traversals: the safe evaluator and Template."""

from __future__ import annotations

import shlex

import pytest

from tunectl.diags import Diagnostic, DiagnosticError, SourceRange
from tunectl.hcl.expr import Scope, evaluate
from tunectl.hcl.syntax import Literal, TupleExpr, parse
from tunectl.hcl.traversals import references
from tunectl.hcl.values import MAX_LIST, Template, format_path, to_string

SCOPE = Scope(
    variables={
        "lr": 0.01,
        "epochs": 10,
        "name": "mnist",
        "nums": [3, 1, 2],
        "m": {"a": 1, "b": 2},
        "nested": {"list": [{"x": "deep"}]},
        "flag": True,
        "nothing": None,
        "danger": "x; rm -rf /",
    },
    locals={"prefix": "exp", "count": 3},
    objects={"experiment": {"mnist": {"best": {"accuracy": 0.98}}}},
    deferred=frozenset({"param", "trial"}),
)


def ev(src: str, scope: Scope = SCOPE):
    body = parse(f"x = {src}\n", "t.hcl")
    return evaluate(body.attributes["x"].expr, scope)


def fails(src: str, scope: Scope = SCOPE, line: int = 3) -> Diagnostic:
    """Evaluate src written on `line` of a file; return the diagnostic it raises."""
    text = "".join(f"pad{i} = 1\n" for i in range(line - 1)) + f"x = {src}\n"
    body = parse(text, "main.hcl")
    with pytest.raises(DiagnosticError) as info:
        evaluate(body.attributes["x"].expr, scope)
    diag = info.value.diags[0]
    assert diag.severity == "error"
    assert diag.subject is not None
    assert diag.subject.filename == "main.hcl"
    assert diag.subject.line == line, diag
    return diag


# -- literals and collections ---------------------------------------------------


def test_literals():
    assert ev("1") == 1
    assert ev("-3") == -3
    assert ev("1e-5") == 1e-5
    assert ev('"s"') == "s"
    assert ev("true") is True
    assert ev("null") is None


def test_collections():
    assert ev('[1, "a", [true, null], {k = 1}]') == [1, "a", [True, None], {"k": 1}]
    assert ev('{ a = { b = [1, 2] }, "c d" = 3, (var.name) = 4, 5 = "five" }') == {
        "a": {"b": [1, 2]},
        "c d": 3,
        "mnist": 4,
        "5": "five",
    }


def test_traversals():
    assert ev("var.lr") == 0.01
    assert ev("var.m.b") == 2
    assert ev('var.m["a"]') == 1
    assert ev("var.nums[1]") == 1
    assert ev("var.nums.0") == 3
    assert ev("var.nested.list[0].x") == "deep"
    assert ev("var.nums[local.count - 1]") == 2
    assert ev("local.prefix") == "exp"
    assert ev("experiment.mnist.best.accuracy") == 0.98
    assert ev("[10, 20, 30][1]") == 20
    assert ev("{a = {b = 5}}.a.b") == 5
    assert ev("var.nothing") is None


# -- templates --------------------------------------------------------------------


def test_interpolation_stringifies_hcl_style():
    assert ev('"${var.epochs}|${var.lr}|${var.flag}|${2.0}|${1e-5}"') == "10|0.01|true|2|1e-05"
    assert ev('"${var.nums}|${var.m}"') == '[3,1,2]|{"a":1,"b":2}'
    assert ev('"${local.prefix}-${var.name}"') == "exp-mnist"


def test_deferred_reference_is_template():
    t = ev("param.lr")
    assert t == Template([("param", "lr")])
    assert t.reference == ("param", "lr")
    assert str(t) == "${param.lr}"
    assert ev('"${param.lr}"') == t
    assert ev("param.layers[0]") == Template([("param", "layers", 0)])
    assert str(ev('param["odd name"]')) == '${param["odd name"]}'


def test_template_with_deferred_parts():
    t = ev('"python train.py --lr ${param.lr} --epochs ${var.epochs} --t ${trial.number}"')
    assert isinstance(t, Template)
    assert str(t) == "python train.py --lr ${param.lr} --epochs 10 --t ${trial.number}"
    assert t.references() == [("param", "lr"), ("trial", "number")]
    values = {("param", "lr"): 0.001, ("trial", "number"): 7}
    assert t.render(values.__getitem__) == "python train.py --lr 0.001 --epochs 10 --t 7"
    assert t.to_json() == str(t)


def test_render_quotes_only_substituted_values():
    t = ev("\"python train.py --name ${param.name} --x 'literal text'\"")
    out = t.render(lambda path: "x; rm -rf /", shlex.quote)
    assert out == "python train.py --name 'x; rm -rf /' --x 'literal text'"
    assert shlex.split(out)[3] == "x; rm -rf /"


def test_render_value_conversions():
    t = Template(["a=", ("p", "a"), " b=", ("p", "b"), " c=", ("p", "c"), " d=", ("p", "d")])
    values = {"a": 3, "b": 0.5, "c": [1, 2.0], "d": False}
    assert t.render(lambda path: values[path[1]]) == "a=3 b=0.5 c=[1,2] d=false"
    e = Template([("p", "e")])
    assert e.render(lambda path: 1e-5) == "1e-05"
    assert e.render(lambda path: 2.0) == "2"
    assert e.render(lambda path: {"k": "v w"}, shlex.quote) == '\'{"k":"v w"}\''


def test_template_equality_hash_and_str_escapes():
    a = Template(["x ", "y", ("param", "lr")])
    b = Template(["x y", ("param", "lr")])
    assert a == b and hash(a) == hash(b) and a.parts == ("x y", ("param", "lr"))
    assert str(Template(["cost ${x} %{y} ", ("p", "q")])) == "cost $${x} %%{y} ${p.q}"
    assert Template(["a", ("p", "b")]).reference is None
    assert format_path(("param", "x", 0, "a-b", "c d")) == 'param.x[0].a-b["c d"]'


def test_to_string():
    assert to_string(True) == "true"
    assert to_string(None) == "null"
    assert to_string(12) == "12"
    assert to_string(12.5) == "12.5"
    assert to_string(1e20) == "1e+20"
    assert to_string(Template([("param", "lr")])) == "${param.lr}"


# -- operators ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("1.5 * 2", 3.0),
        ("7 / 2", 3.5),
        ("6 / 3", 2),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7.5 % 2", 1.5),
        ("-var.epochs", -10),
        ("!var.flag", False),
        ("1 == 1.0", True),
        ('1 == "1"', False),
        ("true == 1", False),
        ("null == null", True),
        ("[1, {a = 2}] == [1, {a = 2}]", True),
        ("{a = 1} != {a = 2}", True),
        ("2 < 3", True),
        ("3 > 3", False),
        ("3 <= 3", True),
        ("2 >= 3", False),
        ("true && false", False),
        ("true || false", True),
        ("false && var.missing", False),
        ("true || var.missing", True),
        ("var.flag ? 1 : 2", 1),
        ("!var.flag ? 1 : 2", 2),
        ("1 + 2 * 3 - 4 / 2", 5),
    ],
)
def test_operators(src, expected):
    value = ev(src)
    assert value == expected
    assert type(value) is type(expected)


def test_for_expressions():
    assert ev("[for v in var.nums : v * 10]") == [30, 10, 20]
    assert ev("[for i, v in var.nums : i if v > 1]") == [0, 2]
    assert ev("{for k, v in var.m : upper(k) => v + 1}") == {"A": 2, "B": 3}
    assert ev('{for s in ["a", "b", "a"] : s => s...}') == {"a": ["a", "a"], "b": ["b"]}
    assert ev("[for k, v in {b = 1, a = 2} : k]") == ["a", "b"]
    assert ev("[for v in [1, 2] : [for w in [10, 20] : v * w]]") == [[10, 20], [20, 40]]
    assert ev('[for v in ["x"] : "${v}-${param.lr}"]') == [Template(["x-", ("param", "lr")])]


# -- functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("min(3, 1.5, 2)", 1.5),
        ("max(3, 1, 2)", 3),
        ("max(var.nums...)", 3),
        ("abs(-4)", 4),
        ("ceil(1.2)", 2),
        ("floor(-1.2)", -2),
        ("log(8, 2)", 3.0),
        ("pow(2, 10)", 1024),
        ("pow(4, 0.5)", 2.0),
        ("sqrt(16)", 4.0),
        ("concat([1], [], [2, 3])", [1, 2, 3]),
        ("range(3)", [0, 1, 2]),
        ("range(1, 4)", [1, 2, 3]),
        ("range(10, 0, -3)", [10, 7, 4, 1]),
        ("range(0, 1, 0.25)", [0, 0.25, 0.5, 0.75]),
        ("range(3, 1)", [3, 2]),
        ("length(var.nums)", 3),
        ("length(var.m)", 2),
        ('length("héllo")', 5),
        ("keys({b = 1, a = 2})", ["a", "b"]),
        ("values({b = 1, a = 2})", [2, 1]),
        ('lookup(var.m, "a", 0)', 1),
        ('lookup(var.m, "z", 0)', 0),
        ("merge({a = 1, b = 2}, null, {b = 3})", {"a": 1, "b": 3}),
        ("contains(var.nums, 2)", True),
        ('contains(["a"], "b")', False),
        ("element(var.nums, 4)", 1),
        ("slice([1, 2, 3, 4], 1, 3)", [2, 3]),
        ("distinct([1, 2, 1.0, [1], [1], {a = 1}, {a = 1}])", [1, 2, [1], {"a": 1}]),
        ("flatten([1, [2, [3, []]], [[4]]])", [1, 2, 3, 4]),
        ('join(",", ["a", 1, true])', "a,1,true"),
        ('split(",", "a,b,,c")', ["a", "b", "", "c"]),
        ('upper("abc")', "ABC"),
        ('lower("ABC")', "abc"),
        ('trimspace("  x \\n")', "x"),
        ('replace("a.b.c", ".", "::")', "a::b::c"),
        ('format("%s-%d-%.2f-%v-%%", "a", 3, 3.14159, [1])', "a-3-3.14-[1]-%"),
        ('format("%03d|%-3s|%5.1f|%f", 7, "ab", 2.25, 1)', "007|ab |  2.2|1.000000"),
        ("tostring(1.5)", "1.5"),
        ("tostring(true)", "true"),
        ("tostring(null)", None),
        ('tonumber("42")', 42),
        ('tonumber("1e-5")', 1e-05),
        ("tonumber(3)", 3),
        ('tobool("true")', True),
        ("tobool(false)", False),
        ("tolist([1, 2])", [1, 2]),
        ('jsonencode({a = [1, 2.0, "x", null, true]})', '{"a":[1,2,"x",null,true]}'),
        ('jsondecode("{\\"a\\": [1, 2.5]}")', {"a": [1, 2.5]}),
        ('coalesce(null, "", "x", "y")', "x"),
    ],
)
def test_functions(src, expected):
    assert ev(src) == expected


def test_string_functions_keep_deferred_values():
    assert ev('join(" ", ["python", "train.py", "--lr", param.lr])') == Template(
        ["python train.py --lr ", ("param", "lr")]
    )
    assert ev('format("--lr=%s --n=%v", param.lr, trial.number)') == Template(
        ["--lr=", ("param", "lr"), " --n=", ("trial", "number")]
    )
    assert ev("tostring(param.lr)") == Template([("param", "lr")])
    assert ev("coalesce(null, param.lr)") == Template([("param", "lr")])
    assert ev("concat([param.a], [1])") == [Template([("param", "a")]), 1]


# -- errors ----------------------------------------------------------------------


def test_undeclared_variable():
    diag = fails("var.lrr + 1")
    assert diag.summary == "Reference to undeclared input variable"
    assert diag.detail == (
        'An input variable with the name "lrr" has not been declared. Did you mean "lr"?'
    )


def test_undeclared_local():
    diag = fails('"${local.prefx}"')
    assert diag.summary == "Reference to undeclared local value"
    assert diag.detail.startswith('A local value with the name "prefx" has not been declared.')
    assert 'Did you mean "prefix"?' in diag.detail


def test_undeclared_resource():
    diag = fails("foo.bar")
    assert diag.summary == "Reference to undeclared resource"
    assert diag.detail.startswith('A reference to "foo.bar" is not valid here.')
    diag = fails("experment.mnist")
    assert 'Did you mean "experiment"?' in diag.detail


def test_var_without_attribute():
    assert fails("var").summary == "Invalid reference"


def test_unsupported_attribute():
    diag = fails("var.m.c")
    assert diag.summary == "Unsupported attribute"
    assert 'does not have an attribute named "c"' in diag.detail
    diag = fails("experiment.mnist.best.acuracy")
    assert 'Did you mean "accuracy"?' in diag.detail
    assert fails("var.nums.first").summary == "Unsupported attribute"
    assert fails("var.lr.x").summary == "Unsupported attribute"
    assert fails("var.nothing.x").summary == "Unsupported attribute"


@pytest.mark.parametrize(
    "src", ["var.nums[3]", "var.nums[-1]", 'var.m["zz"]', "var.nums[0.5]", "var.lr[0]"]
)
def test_invalid_index(src):
    diag = fails(src)
    assert diag.summary == "Invalid index"


def test_invalid_index_mentions_length():
    assert "has 3 elements" in fails("var.nums[5]").detail


@pytest.mark.parametrize(
    ("src", "types"),
    [
        ('1 + "a"', "string"),
        ("true * 2", "bool"),
        ("[1] - 1", "list"),
        ("null < 1", "null"),
        ('"a" && true', "string"),
        ("false || 1", "number"),
        ('-"x"', "string"),
        ("!1", "number"),
    ],
)
def test_invalid_operand(src, types):
    diag = fails(src)
    assert diag.summary == "Invalid operand"
    assert types in diag.detail
    assert "is required" in diag.detail


@pytest.mark.parametrize("src", ["1 / 0", "1 % 0", "1.5 / 0.0"])
def test_division_by_zero(src):
    assert fails(src).summary == "Division by zero"


def test_unknown_function():
    diag = fails("lenght(var.nums)")
    assert diag.summary == "Call to unknown function"
    assert 'Did you mean "length"?' in diag.detail


@pytest.mark.parametrize(
    "src",
    [
        "max()",
        "abs(1, 2)",
        'abs("x")',
        "length(1)",
        "range(1, 2, 0)",
        "element([], 0)",
        "slice([1], 0, 2)",
        'lookup(var.m, "zz")',
        'format("%d", 1.5)',
        'format("%q", 1)',
        'format("%s %s", 1)',
        'format("%s", 1, 2)',
        'tonumber("abc")',
        'tobool("yes")',
        "tolist({a = 1})",
        'jsondecode("{")',
        'jsondecode("NaN")',
        'coalesce(null, "")',
        "log(0, 10)",
        "sqrt(-1)",
        "pow(10, 100000)",
        'join(",", [[1]])',
        "merge({a = 1}, [1])",
        "min(var.nums)",
        "max([1]...)  + min(1...)",
    ],
)
def test_invalid_function_argument(src):
    assert fails(src).summary == "Invalid function argument"


def test_value_not_known_until_trial():
    for src in [
        "param.lr * 2",
        "param.lr == 1",
        '"${param.lr}" < 1',
        "-param.lr",
        "param.flag ? 1 : 2",
        "param.flag && true",
        "upper(param.name)",
        "length(param.layers)",
        "jsonencode([param.lr])",
        "[for v in param.layers : v]",
        'format("%d", param.n)',
        "var.nums[param.i]",
        "{(param.k) = 1}",
        '"${[param.lr]}"',
    ]:
        diag = fails(src)
        assert diag.summary == "Value not known until a trial is created", src
        assert "param." in diag.detail


def test_other_error_summaries():
    assert fails('"x" ? 1 : 2').summary == "Incorrect condition type"
    assert fails('"${var.nothing}"').summary == "Invalid template interpolation value"
    assert fails("[for v in 1 : v]").summary == "Iteration over non-iterable value"
    assert fails("[for v in null : v]").summary == "Iteration over null value"
    assert fails("[for v in [1] : v if v]").summary == "Invalid 'for' condition"
    assert fails('{for v in ["a", "a"] : v => 1}').summary == "Duplicate object key"
    assert fails('{a = 1, "a" = 2}').summary == "Duplicate object key"
    assert fails("{(true) = 1}").summary == "Invalid object key"
    assert fails("[1] * 2").summary == "Invalid operand"


def test_error_subject_is_the_expression_range():
    body = parse("a = 1\nb = [\n  1,\n  var.nope,\n]\n", "main.hcl")
    with pytest.raises(DiagnosticError) as info:
        evaluate(body.attributes["b"].expr, SCOPE)
    assert info.value.diags[0].subject == SourceRange("main.hcl", 4, 4, 3, 11)


# -- limits -----------------------------------------------------------------------


def test_range_is_capped():
    assert len(ev(f"range({MAX_LIST})")) == MAX_LIST
    diag = fails(f"range({MAX_LIST + 1})")
    assert diag.summary == "Invalid function argument"
    assert str(MAX_LIST) in diag.detail


def test_huge_strings_are_rejected():
    scope = Scope(variables={"s": "x" * 600_000})
    assert fails('"${var.s}${var.s}"', scope).summary == "Value too large"
    assert fails('replace(var.s, "x", "xx")', scope).summary == "Invalid function argument"
    assert fails('join("", [var.s, var.s])', scope).summary == "Invalid function argument"
    assert fails('format("%s%s", var.s, var.s)', scope).summary == "Invalid function argument"


def test_huge_lists_are_rejected():
    assert fails("concat(range(60000), range(60000))").summary == "Invalid function argument"
    assert fails("flatten([range(60000), range(60000)])").summary == "Invalid function argument"


def test_nested_loops_are_bounded():
    diag = fails("[for i in range(100000) : [for j in range(100000) : j]]")
    assert diag.summary == "Expression too complex"
    diag = fails("[for i in range(100000) : range(100000)]")
    assert diag.summary == "Expression too complex"


def test_shared_structure_cannot_blow_up_encoding():
    big = [list(range(1000))] * 1000
    scope = Scope(variables={"big": big})
    diag = fails("jsonencode([for i in range(1000) : var.big])", scope)
    assert diag.summary == "Expression too complex"


def test_integer_overflow_is_a_diagnostic():
    diag = fails(" * ".join(["100000000000000000000"] * 300))
    assert diag.summary == "Numeric overflow"
    assert fails("1e300 * 1e300").summary == "Numeric overflow"


def test_deep_values_do_not_crash():
    nested = "[" * 400 + "]" * 400
    value = ev(f'jsondecode("{nested}")')
    assert isinstance(value, list)
    deep = '"' + "[" * 100_000 + '"'
    assert fails(f"jsondecode({deep})").summary == "Invalid function argument"


def test_deep_expression_is_a_diagnostic():
    e = parse("x = " + "[" * 150 + "1" + "]" * 150 + "\n", "t.hcl").attributes["x"].expr
    assert isinstance(evaluate(e, Scope()), list)
    rng = SourceRange("t.hcl", 1, 1)
    deep = Literal(rng, 1)
    for _ in range(5000):
        deep = TupleExpr(rng, [deep])
    with pytest.raises(DiagnosticError) as info:
        evaluate(deep, Scope())
    assert info.value.diags[0].summary == "Expression too deeply nested"


# -- references() ----------------------------------------------------------------


def test_references():
    e = (
        parse(
            'x = "${var.a}" == local.b.c[0].d ? f(param.lr, var.m[var.i]) '
            ": [for k, v in local.items : v.name if k != var.skip]\n",
            "t.hcl",
        )
        .attributes["x"]
        .expr
    )
    paths = [p for p, _ in references(e)]
    assert paths == [
        ("var", "a"),
        ("local", "b", "c", 0, "d"),
        ("param", "lr"),
        ("var", "m"),
        ("var", "i"),
        ("local", "items"),
        ("var", "skip"),
    ]
    assert all(rng.filename == "t.hcl" and rng.line == 1 for _, rng in references(e))


def test_references_in_objects_and_index_exprs():
    e = parse("x = { (local.k) = [1, 2][var.i] }\n", "t").attributes["x"].expr
    assert [p for p, _ in references(e)] == [("local", "k"), ("var", "i")]


def test_documented_functions_are_the_registry():
    import re

    from tests.conftest import REPO
    from tunectl.hcl.functions import FUNCTIONS

    text = (REPO / "docs" / "language.md").read_text()
    section = text.split("### Functions", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z]+)\(", row.split(" | ")[0])}
    assert documented == set(FUNCTIONS)
