"""The XFLOW and SQL body kinds: a hostile value cannot change a command's or a query's
shape, and placeholders where no quoting is safe are refused."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunectl.hcl.values import Template
from tunectl.providers.bodies import SQL, SQL_BACKSLASH, XFLOW, ListOf, UnsafePlaceholder

TEXTS = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=30)
NUMBERS = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))


def _xflow_params(text: str) -> list[tuple[str, str]]:
    """An independent reading of XFlow parameters: (key, decoded value)."""
    out = []
    for match in re.finditer(r'\s*(-\w+)(?:=("(?:[^"\\]|\\.)*"|\S*))?\s*', text):
        key, value = match.group(1), match.group(2) or ""
        if value.startswith('"'):
            value = re.sub(
                r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value[1:-1]
            )
        out.append((key, value))
    return out


@settings(max_examples=200, deadline=None)
@given(TEXTS, TEXTS)
def test_xflow_value_never_ends_its_parameter(trees: str, label: str) -> None:
    body = Template(
        [
            "-name xgboost -project algo_public -DtreeCount=",
            ("param", "trees"),
            " -Dlabel=col_",
            ("param", "label"),
            " -DoutputTable=out",
        ]
    )
    values = {"trees": trees, "label": label}
    assert XFLOW.refusals(body) == []
    rendered = XFLOW.render(body, lambda p: values[str(p[1])])
    assert rendered.startswith("-name xgboost -project algo_public -DtreeCount=")
    # The keys, in order, are those written, whatever the values.
    keys = [k for k, _ in _xflow_params(rendered) if k.startswith("-D")]
    assert keys == ["-DtreeCount", "-Dlabel", "-DoutputTable"]
    decoded = dict(_xflow_params(rendered))
    assert decoded["-DtreeCount"] == trees
    assert decoded["-Dlabel"] == "col_" + label


@pytest.mark.parametrize(
    "parts",
    [
        ["-name ", ("param", "algo")],
        ["-D", ("param", "key"), "=1"],
        ["-Dx='", ("param", "v"), "'"],
        ["-Dx=1 ", ("param", "extra")],
    ],
)
def test_xflow_refuses_placeholders_outside_a_value(parts: list) -> None:
    body = Template(parts)
    assert XFLOW.refusals(body)
    with pytest.raises(UnsafePlaceholder):
        XFLOW.render(body, lambda p: "x")


@settings(max_examples=200, deadline=None)
@given(TEXTS, NUMBERS)
def test_sql_literal_and_number_keep_the_query_shape(s: str, n: float) -> None:
    body = Template(["select '", ("param", "s"), "', 1 - ", ("param", "n"), " -- end"])
    values = {"s": s, "n": repr(n) if isinstance(n, float) else str(n)}
    assert SQL.refusals(body) == []
    rendered = SQL.render(body, lambda p: values[str(p[1])])
    with sqlite3.connect(":memory:") as db:
        rows = db.execute(rendered).fetchall()
    assert len(rows) == 1
    assert rows[0][0] == s
    assert rows[0][1] == pytest.approx(1 - float(values["n"]))


def _backslash_literals(sql: str) -> list[str]:
    """The decoded '...' literals of a backslash-escaping dialect."""
    return [
        re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), lit)
        for lit in re.findall(r"'((?:[^'\\]|\\.)*)'", sql, re.S)
    ]


@settings(max_examples=200, deadline=None)
@given(TEXTS, TEXTS)
def test_sql_backslash_dialect_keeps_each_literal(a: str, b: str) -> None:
    body = Template(
        ["select x from t where a = '", ("param", "a"), "' and b = 'p", ("param", "b"), "'"]
    )
    values = {"a": a, "b": b}
    rendered = SQL_BACKSLASH.render(body, lambda p: values[str(p[1])])
    assert _backslash_literals(rendered) == [a, "p" + b]
    outside = re.sub(r"'((?:[^'\\]|\\.)*)'", "''", rendered, flags=re.S)
    assert outside == "select x from t where a = '' and b = ''"


def test_sql_refuses_identifiers_comments_and_non_numbers() -> None:
    assert SQL.refusals(Template(['select "', ("param", "c"), '" from t']))
    assert SQL.refusals(Template(["select 1 -- ", ("param", "c")]))
    assert SQL.refusals(Template(["select 1 /* ", ("param", "c"), " */"]))
    assert SQL.refusals(Template(["select * from eval_", ("trial", "id")]))
    assert SQL.refusals(Template(["select * from eval_", ("trial", "number")])) == []
    code = Template(["select 1 limit ", ("param", "n")])
    assert SQL.number_slots(code) == [("param", "n")]
    with pytest.raises(UnsafePlaceholder):
        SQL.render(code, lambda p: "1; drop table t")
    assert SQL.render(code, lambda p: "-3") == "select 1 limit (-3)"


def test_list_of_sql_renders_each_statement_in_order() -> None:
    kind = ListOf(SQL)
    body = [Template(["create table eval_", ("trial", "number"), " as select 1"]), "select 2"]
    assert kind.shape == "list"
    assert kind.render(body, lambda p: "7") == ["create table eval_7 as select 1", "select 2"]
