"""Faults of the machine and of damaged files end in located `Error:` diagnostics, from the
CLI: a full disk, a read-only file system, a corrupt state next to a good backup, invalid
JSON in a state row or a plan file, `plan --out` into a directory that is missing or is a
directory, an absurd trial index, `force-unlock` of an ID that names no lock.

The disk and file-system cases mount a small tmpfs (they need root; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

CONFIG = """\
experiment "demo" {
  algorithm "random" {
    seed = 3
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 2
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "echo acc=${param.x}"
  }
}
"""


def clean(result) -> None:
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "internal error" not in result.text


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system holding `directory`; returns the filler (delete it to free)."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)
    return filler


def applied(tmp_path: Path) -> Path:
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG})
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    return directory


# -- the machine -------------------------------------------------------------------------


def test_disk_full_is_a_diagnostic_and_leaves_no_debris(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        directory = write(disk / "cfg", {"main.hcl": CONFIG})
        assert run_cli(directory, "init").code == 0
        before = sorted(p.name for p in (directory / "state").iterdir())
        filler = fill(disk)
        for args in (("plan",), ("apply", "--auto-approve")):
            result = run_cli(directory, *args)
            clean(result)
            assert "Error: No space left on device" in result.err, result.text
        assert sorted(p.name for p in (directory / "state").iterdir()) == before
        filler.unlink()
        # Space again: the same command works, on the same state.
        result = run_cli(directory, "apply", "--auto-approve")
        assert result.code == 0, result.text


def test_plan_out_on_a_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        directory = write(tmp_path / "cfg", {"main.hcl": CONFIG})
        fill(disk)
        result = run_cli(directory, "plan", "--out", str(disk / "saved.plan"))
        clean(result)
        assert "Error: Failed to write plan file" in result.err
        assert "No space left on device" in result.err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_read_only_state_says_read_only_not_corrupt(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        directory = applied(disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = run_cli(directory, "show")
        clean(result)
        assert "Error: State is read-only" in result.err, result.text
        assert "read-only file system" in result.err
        assert "corrupt" not in result.err
        result = run_cli(directory, "plan")
        clean(result)
        assert "Read-only file system" in result.err and "corrupt" not in result.err


# -- damaged files -------------------------------------------------------------------------


def test_a_corrupt_state_never_overwrites_a_good_backup(tmp_path: Path) -> None:
    directory = applied(tmp_path)
    state = directory / "state" / "tunectl.db"
    backup = directory / "state" / "tunectl.db.backup"
    # apply wrote the backup; make it a known-good copy of the current state.
    result = run_cli(directory, "apply", "--auto-approve")
    assert result.code == 0, result.text
    good = backup.read_bytes()
    # Damage every page but the first (the header and schema that opening reads).
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(state.read_bytes())
    for start in range(page, len(data), page):
        data[start + 8 : start + page] = os.urandom(page - 8)
    state.write_bytes(bytes(data))
    damaged = state.read_bytes()
    for args in (("apply", "--auto-approve"), ("plan",), ("destroy", "--auto-approve")):
        result = run_cli(directory, *args)
        clean(result)
        assert "Error: Failed to load state" in result.err, result.text
        assert f"cp {backup} {state}" in result.err  # the way back is offered
    assert backup.read_bytes() == good
    assert state.read_bytes() == damaged
    # The way back works.
    backup.replace(state)
    assert run_cli(directory, "plan").code == 0


def test_invalid_json_in_a_state_row(tmp_path: Path) -> None:
    directory = applied(tmp_path)
    with sqlite3.connect(directory / "state" / "tunectl.db") as conn:
        conn.execute("UPDATE trials SET params = '{\"x\": 0.5' WHERE number = 0")
    for args in (("show", "experiment.demo"), ("plan",), ("apply", "--auto-approve")):
        result = run_cli(directory, *args)
        clean(result)
        assert "Error: Failed to load state" in result.err, result.text
        assert "invalid JSON" in result.err


def test_damaged_plan_files(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG})
    assert run_cli(directory, "plan", "--out", "good.plan").code == 0
    saved = json.loads((directory / "good.plan").read_text())
    damages = {
        "not-json.plan": "{ this is not json",
        "types.plan": json.dumps({**saved, "plan": {**saved["plan"], "variables": [1, 2]}}),
        "targets.plan": json.dumps({**saved, "plan": {**saved["plan"], "targets": 5}}),
        "changes.plan": json.dumps({**saved, "plan": {**saved["plan"], "changes": [7]}}),
        "list.plan": "[1, 2, 3]",
    }
    for name, text in damages.items():
        (directory / name).write_text(text)
        for args in (("apply", name), ("show", name)):
            result = run_cli(directory, *args)
            clean(result)
            # Valid JSON with a seal that no longer matches is corrupt; anything else is not
            # a plan file at all.
            expected = (
                "Error: Saved plan is corrupt"
                if name in ("types.plan", "targets.plan", "changes.plan")
                else "Error: Failed to read plan file"
            )
            assert expected in result.err, (name, result.text)


def test_plan_out_into_a_missing_or_existing_directory(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG})
    (directory / "plans").mkdir()
    result = run_cli(directory, "plan", "--out", "missing/dir/saved.plan")
    clean(result)
    assert "Error: Failed to write plan file" in result.err
    assert "does not exist" in result.err
    result = run_cli(directory, "plan", "--out", "plans")
    clean(result)
    assert "Error: Failed to write plan file" in result.err
    assert "is a directory" in result.err
    assert sorted(p.name for p in directory.iterdir()) == ["main.hcl", "plans", "state"]
    assert list((directory / "plans").iterdir()) == []


# -- addresses and locks ------------------------------------------------------------------


def test_an_absurd_trial_index_is_a_diagnostic(tmp_path: Path) -> None:
    directory = applied(tmp_path)
    huge = "9" * 40
    for args in (
        ("show", f"experiment.demo.trial[{huge}]"),
        ("show", "experiment.demo.trial[-1]"),
        ("logs", "experiment.demo", "--trial", huge),
        ("state", "rm", f"experiment.demo.trial[{huge}]"),
    ):
        result = run_cli(directory, *args)
        assert result.code != 0, (args, result.text)
        assert "Traceback" not in result.text and "internal error" not in result.text, args
        assert "Error" in result.text, (args, result.text)


def test_force_unlock_of_an_unknown_id_is_an_error(tmp_path: Path) -> None:
    directory = applied(tmp_path)
    made_up = str(uuid.uuid4())
    result = run_cli(directory, "force-unlock", made_up)
    clean(result)
    assert "Error: Failed to unlock state" in result.err
    assert made_up in result.err and "not locked" in result.err
