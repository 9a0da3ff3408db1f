"""Source ranges with columns, their rendering, and one error per malformed line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write
from tunectl.diags import Diagnostic, DiagnosticError, SourceRange, error, render
from tunectl.hcl.syntax import parse

EXPERIMENT = """\
experiment "{name}" {{
  algorithm "random" {{}}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials = 2
{bad}
  param "lr" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    provider = "local"
    command  = "echo acc=${{param.lr}}"
  }}
}}
"""
BAD_LINE = 8

# A malformed line, and the line the one error is reported on: the line itself, or, when
# the line is only incomplete (an open bracket), the next line, where the parser finds out.
BAD_LINES = [
    ("  max_trials = = 12", BAD_LINE),
    ("  max_trials 12", BAD_LINE),
    ('  x = "unterminated', BAD_LINE),
    ("  a.b = 1", BAD_LINE),
    ("  w = {a = 1 b = 2}", BAD_LINE),
    ("  q = 1 2", BAD_LINE),
    ("  @@@", BAD_LINE),
    ('  v = "${x"', BAD_LINE),
    ("  r = }", BAD_LINE),
    ("  t = [1,,2]", BAD_LINE),
    ("  h = <<EOF", BAD_LINE),
    ('  e = "ab\\q"', BAD_LINE),
    ('  param "x" {{', BAD_LINE),
    ("  max_trials = 3", BAD_LINE),
    ("  lr = [1, 2", BAD_LINE + 1),
]


def test_one_malformed_line_gives_one_error(tmp_path: Path) -> None:
    files = {"main.hcl": 'provider "local" {\n  slots = 1\n}\n'}
    for n, (bad, _) in enumerate(BAD_LINES):
        files[f"e{n:02}.hcl"] = EXPERIMENT.format(name=f"e{n:02}", bad=bad)
    directory = write(tmp_path / "bad", files)
    result = run_cli(directory, "validate", "--json")
    assert result.code == 1, result.err
    diags = json.loads(result.out)["diagnostics"]
    by_file: dict[str, list[dict]] = {}
    for diag in diags:
        by_file.setdefault(diag["range"]["filename"], []).append(diag)
    for n, (bad, line) in enumerate(BAD_LINES):
        got = by_file.get(f"e{n:02}.hcl", [])
        assert len(got) == 1, (bad, got)
        assert got[0]["severity"] == "error"
        assert got[0]["range"]["start"]["line"] == line, (bad, got)
    assert len(diags) == len(BAD_LINES), diags


def test_the_template_itself_is_valid(tmp_path: Path) -> None:
    files = {
        "main.hcl": 'provider "local" {\n  slots = 1\n}\n',
        "e.hcl": EXPERIMENT.format(name="e", bad=""),
    }
    result = run_cli(write(tmp_path / "ok", files), "validate")
    assert result.code == 0, result.err


def _syntax_error(text: str) -> Diagnostic:
    with pytest.raises(DiagnosticError) as info:
        parse(text, "main.hcl")
    assert len(info.value.diags) == 1
    return info.value.diags[0]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("a = 1\nb = = 2\n", (2, 5), (2, 6)),  # the second "="
        ('a = 1\nx = "open\ny = 2\nz = "3"\n', (2, 5), (2, 6)),  # the opening quote
        ('a = "\\q"\n', (1, 6), (1, 8)),  # the escape
        ("a = 1 b = 2\n", (1, 7), (1, 8)),
        ("a = 1 $\n", (1, 7), (1, 8)),  # an invalid character
    ],
)
def test_syntax_errors_carry_columns(text: str, start: tuple, end: tuple) -> None:
    subject = _syntax_error(text).subject
    assert subject is not None
    assert (subject.line, subject.column) == start
    assert (subject.end_line, subject.end_column) == end


def test_ranges_have_columns() -> None:
    body = parse('exp "x" {\n  lr   = min(1, var.a)\n  s = "${var.b}"\n}\n', "main.hcl")
    (block,) = body.blocks
    assert block.range == SourceRange("main.hcl", 1, 4, 1, 2)
    lr = block.body.attributes["lr"]
    assert lr.range == SourceRange("main.hcl", 2, 2, 3, 23)
    assert lr.expr.range == SourceRange("main.hcl", 2, 2, 10, 23)
    call_args = lr.expr.args  # type: ignore[attr-defined]
    assert call_args[1].range == SourceRange("main.hcl", 2, 2, 17, 22)
    s = block.body.attributes["s"].expr
    assert s.parts[0].range == SourceRange("main.hcl", 3, 3, 10, 15)  # type: ignore[attr-defined]


def test_heredoc_interpolations_keep_lines_only() -> None:
    body = parse("h = <<EOF\n  ${var.x}\nEOF\n", "main.hcl")
    part = body.attributes["h"].expr.parts[1]  # type: ignore[attr-defined]
    assert (part.range.line, part.range.column) == (2, None)


def test_render_underlines_the_subject() -> None:
    text = "a = 1\n\tlong_name = 40\n"
    diag = error("Unsupported argument", "Detail.", SourceRange("m.hcl", 2, 2, 2, 16))
    assert render(diag, {"m.hcl": text}) == (
        "Error: Unsupported argument\n"
        "\n"
        "  on m.hcl line 2:\n"
        "  2: \tlong_name = 40\n"
        "     \t^^^^^^^^^^^^^^\n"
        "\n"
        "Detail.\n"
    )


def test_render_without_columns_has_no_carets() -> None:
    diag = error("Bad", "", SourceRange("m.hcl", 1))
    assert render(diag, {"m.hcl": "a = 1\n"}) == "Error: Bad\n\n  on m.hcl line 1:\n  1: a = 1\n"


def test_render_multiline_subject_underlines_to_the_end_of_its_first_line() -> None:
    diag = error("Bad", "", SourceRange("m.hcl", 1, 3, 5, 2))
    rendered = render(diag, {"m.hcl": 'exp "x" {\n  a = 1\n}\n'})
    assert '  1: exp "x" {\n         ^^^^^\n' in rendered


def test_json_range_has_columns_only_when_known() -> None:
    with_columns = error("Bad", "", SourceRange("m.hcl", 2, 3, 4, 7)).to_json()
    assert with_columns["range"] == {
        "filename": "m.hcl",
        "start": {"line": 2, "column": 4},
        "end": {"line": 3, "column": 7},
    }
    lines_only = error("Bad", "", SourceRange("m.hcl", 2)).to_json()
    assert lines_only["range"] == {
        "filename": "m.hcl",
        "start": {"line": 2},
        "end": {"line": 2},
    }
