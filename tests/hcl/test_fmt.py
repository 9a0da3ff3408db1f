"""`tunectl fmt`: canonical layout, comments kept, meaning unchanged, idempotent."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, run_cli, write
from tunectl.diags import DiagnosticError
from tunectl.hcl.fmt import format_text

MESSY = """\
# Top comment survives.
variable "n" {
    type = number
  default=4
}

experiment "demo" {
max_trials = var.n   # trailing comment survives
      max_concurrent= 2
  description = "a { brace } and ${var.n} in a string"
  objective {
    metric = "acc"
    direction = "maximize"
  }
  param "lr" {
    type = "choice"
    values = [
  1,
        2,
    ]
  }
  /* a block
        comment, kept as written */
  trial {
    command = <<-EOT
      echo   acc=1   {
    EOT
  }
}
"""

TIDY = """\
# Top comment survives.
variable "n" {
  type    = number
  default = 4
}

experiment "demo" {
  max_trials     = var.n   # trailing comment survives
  max_concurrent = 2
  description    = "a { brace } and ${var.n} in a string"
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  param "lr" {
    type = "choice"
    values = [
      1,
      2,
    ]
  }
  /* a block
        comment, kept as written */
  trial {
    command = <<-EOT
      echo   acc=1   {
    EOT
  }
}
"""


def test_canonical_layout() -> None:
    assert format_text(MESSY) == TIDY


def test_idempotent_and_meaning_kept() -> None:
    assert format_text(TIDY) == TIDY
    assert hcl2.loads(format_text(MESSY)) == hcl2.loads(MESSY)


@pytest.mark.parametrize("path", sorted(REPO.glob("examples/*/*.hcl")), ids=lambda p: p.parent.name)
def test_examples_are_formatted(path: Path) -> None:
    text = path.read_text()
    assert format_text(text) == text


def test_invalid_syntax_is_refused_with_a_line() -> None:
    with pytest.raises(DiagnosticError) as info:
        format_text('experiment "x" {\n  max_trials = \n}\n', "main.hcl")
    subject = info.value.diags[0].subject
    assert subject is not None and subject.filename == "main.hcl" and subject.line in (2, 3)


def test_cli_check_diff_and_write(tmp_path: Path) -> None:
    directory = write(tmp_path, {"main.hcl": MESSY, "ok.hcl": "# nothing\n"})
    result = run_cli(directory, "fmt", "--check", "--diff")
    assert result.code == 3, result.text
    assert "-      max_concurrent= 2" in result.out and "+  max_concurrent = 2" in result.out
    assert (directory / "main.hcl").read_text() == MESSY  # --check writes nothing
    result = run_cli(directory, "fmt")
    assert result.code == 0 and result.out.strip() == "main.hcl"
    assert (directory / "main.hcl").read_text() == TIDY
    assert run_cli(directory, "fmt", "--check").code == 0


def test_cli_invalid_file(tmp_path: Path) -> None:
    directory = write(tmp_path, {"main.hcl": 'experiment "x" {\n'})
    result = run_cli(directory, "fmt")
    assert result.code == 1
    assert "Error:" in result.err and "main.hcl line" in result.err
    assert "Traceback" not in result.text
    assert (directory / "main.hcl").read_text() == 'experiment "x" {\n'


# Random re-indentation and spacing of a valid file never changes what it means, and
# formatting is a fixed point.
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3)), min_size=40, max_size=40))
def test_random_layouts(noise: list[tuple[int, int]]) -> None:
    lines = []
    for (indent, spaces), line in zip(noise, TIDY.splitlines(), strict=False):
        if any(s in line for s in ("<<", "EOT", "echo", "/*", "*/")):
            lines.append(line)
            continue
        text = line.strip().replace(" = ", " " * spaces + "=" + " " * spaces, 1)
        lines.append(" " * indent + text + " " * spaces)
    lines += TIDY.splitlines()[len(lines) :]
    messy = "\n".join(lines) + "\n"
    tidy = format_text(messy)
    assert hcl2.loads(tidy) == hcl2.loads(messy)
    assert format_text(tidy) == tidy
