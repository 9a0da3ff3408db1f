"""Every example validates clean, is formatted, and plans cleanly on a fresh state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if list(p.glob("*.hcl")))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_plans(example: Path, tmp_path: Path) -> None:
    # A copy, so the repository's own state/ is never touched.
    directory = tmp_path / example.name
    shutil.copytree(example, directory, ignore=shutil.ignore_patterns("state"))
    result = run_cli(directory, "validate")
    assert result.code == 0, result.text
    assert run_cli(directory, "fmt", "--check").code == 0
    result = run_cli(directory, "plan", "--detailed-exitcode")
    assert result.code == 2, result.text
    assert "Error" not in result.text and "to add" in result.out
