"""The shape of the code, as docs/architecture.md states it: no private reach-ins across
packages, no module beyond ~600 lines. (The layers themselves are import-linter's
contracts in pyproject.toml, checked by `lint-imports` in .ci/run and below.)"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 600


def _sources() -> list[Path]:
    found = sorted((ROOT / "tunectl").rglob("*.py"))
    for dist in sorted((ROOT / "providers").iterdir()):
        found += sorted(p for p in dist.glob("tunectl_*/**/*.py"))
    return found


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "providers":
        parts = parts[2:]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    """The unit that owns its private names: `tunectl.X` for core, the distribution's
    top-level package for providers."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "tunectl" else parts[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _reach_ins(path: Path) -> list[str]:
    here = _module(path)
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                modules[alias.asname or alias.name] = target
                if _private(alias.name) and _package(node.module) != _package(here):
                    found.append(f"{here} imports {node.module}.{alias.name} (line {node.lineno})")
            if any(_private(part) for part in node.module.split(".")) and _package(
                node.module
            ) != _package(here):
                found.append(f"{here} imports from {node.module} (line {node.lineno})")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            target = modules[node.value.id]
            if target.startswith(("tunectl", "tunectl_")) and _package(target) != _package(here):
                found.append(f"{here} uses {target}.{node.attr} (line {node.lineno})")
    return found


def test_no_private_names_are_used_across_packages():
    found = [line for path in _sources() for line in _reach_ins(path)]
    assert found == [], "private names used outside their package:\n" + "\n".join(found)


def test_no_module_is_longer_than_the_limit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    command = str(lint) if lint.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [command, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
