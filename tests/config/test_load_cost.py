"""What one configuration may cost to load: long chains of locals, and oversized files.

No timing assertions here (the machine is shared and noisy): `bench/config_load.py`
measures that the cost grows linearly. These tests check the answers and the diagnostics,
from the CLI.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli, write

LIMIT = 1 << 20  # tunectl.hcl.syntax.MAX_FILE_BYTES, as a user reads it in the docs


def chain(n: int, *, cycle: bool = False) -> str:
    """`c0 = 1`, `cI = local.c(I-1) + 1`, written last-to-first; `cycle` closes the loop."""
    first = f"local.c{n - 1} + 1" if cycle else "1"
    body = "".join(f"  c{i} = local.c{i - 1} + 1\n" for i in range(n - 1, 0, -1))
    output = f'output "last" {{\n  value = local.c{n - 1}\n}}\n'
    return f"locals {{\n{body}  c0 = {first}\n}}\n\n{output}"


def test_four_thousand_chained_locals_resolve(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": chain(4000)})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert run_cli(directory, "output", "last", "--raw").out.strip() == "4000"


def test_a_cycle_at_the_end_of_a_long_chain_is_reported(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": chain(3000, cycle=True)})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Cycle in local values" in result.err
    assert "local.c0 depends on itself" in result.err
    assert "Traceback" not in result.text


def test_locals_in_any_order_and_across_blocks(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {
            "a.hcl": 'locals {\n  d = local.c * 2\n  a = 1\n}\n',
            "b.hcl": 'locals {\n  c = local.b + local.a\n  b = local.a + 1\n}\n'
            'output "d" {\n  value = local.d\n}\n',
        },
    )
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    assert run_cli(directory, "output", "d", "--raw").out.strip() == "6"


def test_an_undeclared_local_in_a_chain_is_an_error_not_a_cycle(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": 'locals {\n  a = local.nope + 1\n}\n'})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Cycle" not in result.err and "Error:" in result.err
    assert "on main.hcl line 2" in result.err


def oversized(size: int) -> str:
    """A valid HCL file of exactly `size` bytes (a comment pads it)."""
    head = 'locals {\n  a = 1\n}\n'
    return head + "#" + "x" * (size - len(head) - 2) + "\n"


def test_a_file_over_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": oversized(LIMIT + 1)})
    assert (directory / "main.hcl").stat().st_size == LIMIT + 1
    for command in ("validate", "plan"):
        result = run_cli(directory, command)
        assert result.code == 1, result.text
        assert "Error: Configuration file too large" in result.err
        assert "main.hcl is 1.0 MiB" in result.err and "at most 1 MiB" in result.err
        assert "Traceback" not in result.text and "internal error" not in result.text


def test_multibyte_text_is_counted_in_bytes(tmp_path: Path) -> None:
    # 600,000 characters of 2 bytes each: under the limit in characters, over it in bytes.
    directory = write(tmp_path / "cfg", {"main.hcl": 'locals {\n  a = 1\n}\n#' + "é" * 600_000})
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Configuration file too large" in result.err


def test_an_oversized_var_file_is_refused(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": 'variable "n" {\n  type = number\n}\n',
            "big.tfvars": "n = 1\n#" + "x" * LIMIT + "\n",
        },
    )
    result = run_cli(directory, "plan", "--var-file", "big.tfvars")
    assert result.code == 1, result.text
    assert "Error: Configuration file too large" in result.err
    assert "big.tfvars" in result.err
