"""`tunectl.providers.xflow`: a PAI command read back into its algorithm and parameters,
each placeholder's value byte for byte, and the syntax errors validate reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunectl.hcl.values import Template
from tunectl.providers.bodies import SQL_BACKSLASH, XFLOW, ListOf
from tunectl.providers.xflow import XFlowCommand, XFlowSyntaxError, parse

TEXTS = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(TEXTS, TEXTS)
def test_a_rendered_command_reads_back_with_each_value_intact(eta: str, label: str) -> None:
    body = Template(
        [
            "PAI -name xgboost -project algo_public -Deta=",
            ("param", "eta"),
            " -DlabelColName=",
            ("param", "label"),
            " -DfeatureColNames=f1,f2",
        ]
    )
    values = {"eta": eta, "label": label}
    rendered = XFLOW.render(body, lambda p: values[str(p[1])])
    assert parse(rendered) == XFlowCommand(
        "xgboost",
        "algo_public",
        {"eta": eta, "labelColName": label, "featureColNames": "f1,f2"},
    )


def test_quotes_and_escapes_in_written_values() -> None:
    command = parse("""-name a -Dx="two words" -Dy='it''s' -Dz="tab\\there" -Dw=a=b""")
    assert command.parameters == {"x": "two words", "y": "its", "z": "tab\there", "w": "a=b"}
    assert command.project is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-project algo_public", "no algorithm"),
        ("-name", "-name needs a value"),
        ("-name a -project", "-project needs a value"),
        ("-name a -D=1", "is not a parameter"),
        ("-name a -Dk", "is not a parameter"),
        ("-name a -Dk=1 -Dk=2", "-Dk is given twice"),
        ("-name a --k=1", "is not an argument of a PAI command"),
        ("-name a extra", "is not an argument of a PAI command"),
        ('-name a -Dk="open', "a double quote is not closed"),
        ("-name a -Dk='open", "a single quote is not closed"),
    ],
)
def test_what_is_not_a_pai_command(text: str, message: str) -> None:
    with pytest.raises(XFlowSyntaxError, match=message):
        parse(text)
    assert XFLOW.problems(text) and message in XFLOW.problems(text)[0]


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("select 1", None),
        ("set odps.sql.mapper.split.size=256; select 1;", None),
        ("select ';' from t -- ; not a statement", None),
        ("select 1; select 2", "holds 2 statements"),
        ("select 'x", "not closed"),
        ("select 1 /* x", "not closed"),
        ("-- only a comment", "There is no statement"),
        ("set a=1;", "There is no statement"),
    ],
)
def test_one_sql_statement_per_string(sql: str, problem: str | None) -> None:
    found = SQL_BACKSLASH.problems(sql)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0]


def test_a_list_of_statements_reports_the_item() -> None:
    assert ListOf(SQL_BACKSLASH).problems(["select 1", "select 2; select 3"])[0].startswith(
        "Item 2:"
    )
    assert ListOf(SQL_BACKSLASH).problems([]) == ["The list is empty: give at least one."]
