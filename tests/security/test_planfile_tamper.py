"""A saved plan is applied exactly (SPEC §6): any edit to a plan file makes it corrupt, and
apply refuses a plan whose changes, planned again, are not the recorded ones.

The plan file is a real one (`plan --out` after a first apply, so there is an experiment a
flipped `destroy` could remove); every edit is applied through the CLI, and afterwards the
state's serial, the trials and the launched processes are exactly as before.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, write

TRIAL = """\
import sys
with open("launches.log", "a") as f:
    f.write(sys.argv[1] + "\\n")
print("acc=0.5", flush=True)
"""

CONFIG = """\
variable "trials" {
  type    = number
  default = 2
}
variable "note" {
  type    = string
  default = "first"
}
experiment "demo" {
  description = var.note
  algorithm "random" {
    seed = 3
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = var.trials
  max_concurrent = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py ${trial.id}"
    workdir = "."
  }
}
"""

JsonPath = tuple[Any, ...]


def scalars(node: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from scalars(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from scalars(value, (*path, index))
    else:
        yield path, node


def containers(node: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    if isinstance(node, dict | list):
        yield path, node
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from containers(value, (*path, key))


def at(data: Any, path: JsonPath) -> Any:
    for key in path:
        data = data[key]
    return data


def changed(value: Any) -> Any:
    """A different value, of the same JSON type where there is one."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "x" if value else "x"
    return 0  # null


def edits(original: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, edited plan) for every scalar changed, every key dropped, every list grown."""
    for path, value in scalars(original):
        data = copy.deepcopy(original)
        at(data, path[:-1])[path[-1]] = changed(value)
        yield f"change {path}", data
    for path, node in containers(original):
        if isinstance(node, dict):
            for key in node:
                data = copy.deepcopy(original)
                del at(data, path)[key]
                yield f"drop {(*path, key)}", data
        else:
            data = copy.deepcopy(original)
            grown = at(data, path)
            grown.append(copy.deepcopy(grown[0]) if grown else "experiment.demo")
            yield f"append to {path}", data
    data = copy.deepcopy(original)
    data["extra"] = True
    yield "add a top-level field", data


def state_summary(directory: Path) -> tuple[int, list[tuple[Any, ...]]]:
    with sqlite3.connect(directory / "state" / "tunectl.db") as conn:
        serial = int(conn.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()[0])
        rows = conn.execute(
            "SELECT experiment, generation, number, status FROM trials ORDER BY number"
        ).fetchall()
    conn.close()
    return serial, rows


def launches(directory: Path) -> list[str]:
    path = directory / "launches.log"
    return path.read_text().split() if path.exists() else []


def setup(tmp_path: Path) -> Path:
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG, "trial.py": TRIAL})
    first = run_cli(directory, "apply", "--auto-approve")
    assert first.code == 0, first.text
    return directory


def assert_corrupt(result, what: str) -> None:
    assert result.code == 1, f"{what}: {result.text}"
    assert "Error: Saved plan is corrupt" in result.err, f"{what}: {result.text}"
    assert "Traceback" not in result.text, f"{what}: {result.text}"


def test_every_edit_of_a_saved_plan_is_refused_and_the_untouched_plan_applies(
    tmp_path: Path,
) -> None:
    directory = setup(tmp_path)
    made = run_cli(directory, "plan", "--var", "trials=3", "--out", "p.plan")
    assert made.code == 0, made.text
    text = (directory / "p.plan").read_text()
    original = json.loads(text)
    before = state_summary(directory), launches(directory)
    assert len(before[1]) == 2
    # The plan covers an update with a trial to run, and the variables it was made with.
    assert original["plan"]["changes"][0]["action"] == "update"
    assert original["plan"]["variables"] == {"trials": 3, "note": "first"}

    cases = list(edits(original))
    data = copy.deepcopy(original)
    data["plan"]["destroy"] = True
    cases.append(("flip destroy", data))
    data = copy.deepcopy(original)
    extra = copy.deepcopy(data["plan"]["changes"][0])
    extra.update(address="experiment.other", name="other", action="delete")
    data["plan"]["changes"].append(extra)
    cases.append(("add a change", data))
    assert len(cases) > 150, len(cases)  # every path of a real plan, not a sample
    texts = [(what, json.dumps(data, indent=2, sort_keys=True)) for what, data in cases]
    texts.append(("truncate", text[: len(text) // 2]))
    texts.append(("truncate the last byte", text[:-2]))
    texts.append(
        ("repeat a key", text.replace('"destroy": false', '"destroy": false, "destroy": true'))
    )

    def attempt(item: tuple[int, tuple[str, str]]) -> None:
        index, (what, body) = item
        path = directory / f"edit-{index}.plan"
        path.write_text(body)
        assert_corrupt(run_cli(directory, "apply", path.name), what)

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(attempt, enumerate(texts)))

    # Nothing any attempt did shows: no write to the state, no trial started, nothing gone.
    assert (state_summary(directory), launches(directory)) == before
    # `show` refuses an edited plan as well, rather than showing what tunectl never planned.
    flipped = copy.deepcopy(original)
    flipped["plan"]["destroy"] = True
    (directory / "edited.plan").write_text(json.dumps(flipped, indent=2, sort_keys=True))
    assert_corrupt(run_cli(directory, "show", "edited.plan"), "show")

    # Re-indenting changes no content; the untouched plan applies.
    (directory / "reindented.plan").write_text(json.dumps(original, indent=5))
    shown = run_cli(directory, "show", "reindented.plan")
    assert shown.code == 0 and "Plan: 0 to add, 1 to change, 0 to destroy." in shown.out
    applied = run_cli(directory, "apply", "p.plan")
    assert applied.code == 0, applied.text
    assert len(launches(directory)) == 3
    assert state_summary(directory)[0] > before[0][0]


def test_a_recomputed_digest_does_not_make_an_edit_valid(tmp_path: Path) -> None:
    # Whoever can write the file can recompute a plain digest; the signature needs the
    # state's key.
    directory = setup(tmp_path)
    made = run_cli(directory, "plan", "--out", "p.plan")
    assert made.code == 0, made.text
    data = json.loads((directory / "p.plan").read_text())
    data["plan"]["destroy"] = True
    sealed = {k: v for k, v in data.items() if k not in ("digest", "signature")}
    canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data["digest"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    (directory / "p.plan").write_text(json.dumps(data, indent=2, sort_keys=True))
    before = state_summary(directory), launches(directory)
    shown = run_cli(directory, "show", "p.plan")  # the digest alone is consistent
    assert shown.code == 0, shown.text
    result = run_cli(directory, "apply", "p.plan")
    assert_corrupt(result, "forged digest")
    assert "signature" in result.err
    assert (state_summary(directory), launches(directory)) == before


def test_a_plan_signed_by_another_state_is_refused(tmp_path: Path) -> None:
    # Two states: a plan from one, with its lineage and serial rewritten to the other's
    # and its digest recomputed, still carries the first state's signature.
    directory = setup(tmp_path)
    other = write(tmp_path / "other", {"main.hcl": CONFIG, "trial.py": TRIAL})
    made = run_cli(other, "plan", "--out", "p.plan")
    assert made.code == 0, made.text
    data = json.loads((other / "p.plan").read_text())
    serial, _ = state_summary(directory)
    with sqlite3.connect(directory / "state" / "tunectl.db") as conn:
        lineage = conn.execute("SELECT value FROM meta WHERE key = 'lineage'").fetchone()[0]
    conn.close()
    data["plan"].update(lineage=lineage, serial=serial)
    sealed = {k: v for k, v in data.items() if k not in ("digest", "signature")}
    canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data["digest"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    (directory / "foreign.plan").write_text(json.dumps(data))
    before = state_summary(directory), launches(directory)
    assert_corrupt(run_cli(directory, "apply", "foreign.plan"), "foreign signature")
    assert (state_summary(directory), launches(directory)) == before
    # Unedited, the other state's plan is refused for its lineage, as before.
    refused = run_cli(directory, "apply", str(other / "p.plan"))
    assert refused.code == 1 and "Saved plan does not match the state" in refused.err


def test_changes_that_differ_when_planned_again_make_the_plan_stale(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    made = run_cli(directory, "plan", "--var", "trials=3", "--out", "p.plan")
    assert made.code == 0, made.text
    # The state changes behind tunectl's back without its serial moving (a copy restored
    # over it, a hand edit): the stored experiment now says max_trials = 5.
    db = directory / "state" / "tunectl.db"
    with sqlite3.connect(db) as conn:
        stored = json.loads(
            conn.execute("SELECT config FROM experiments WHERE name = 'demo'").fetchone()[0]
        )
        stored["max_trials"] = 5
        conn.execute("UPDATE experiments SET config = ? WHERE name = 'demo'", (json.dumps(stored),))
    conn.close()
    before = state_summary(directory), launches(directory)
    result = run_cli(directory, "apply", "p.plan")
    assert result.code == 1, result.text
    assert "Error: Saved plan is stale" in result.err, result.text
    assert "experiment.demo" in result.err and "attributes" in result.err, result.err
    assert (state_summary(directory), launches(directory)) == before


def test_stale_serial_and_other_configuration_are_still_refused(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    made = run_cli(directory, "plan", "--var", "trials=3", "--out", "p.plan")
    assert made.code == 0, made.text
    (directory / "main.hcl").write_text(CONFIG.replace('"first"', '"second"'))
    result = run_cli(directory, "apply", "p.plan")
    assert result.code == 1 and "Saved plan is stale" in result.err, result.text
    (directory / "main.hcl").write_text(CONFIG)
    applied = run_cli(directory, "apply", "p.plan")
    assert applied.code == 0, applied.text
    again = run_cli(directory, "apply", "p.plan")  # the state moved on
    assert again.code == 1 and "Saved plan is stale" in again.err, again.text
    assert "serial" in again.err


def test_a_trial_ending_between_plan_and_apply_does_not_make_the_plan_stale(
    tmp_path: Path,
) -> None:
    # The refresh at apply sees the trial's task end (drift), but the changes planned
    # again are the recorded ones: the plan applies, and shows the drift.
    gated = TRIAL.replace(
        'print("acc=0.5"',
        'import os, time\nwhile not os.path.exists("gate"):\n    time.sleep(0.05)\nprint("acc=0.5"',
    )
    directory = write(tmp_path / "cfg", {"main.hcl": CONFIG, "trial.py": gated})
    once = run_cli(directory, "apply", "--auto-approve", "--once")
    assert once.code == 0, once.text
    deadline = time.monotonic() + 30
    while len(launches(directory)) < 1:  # --once returns as soon as the task is started
        assert time.monotonic() < deadline, "the trial never started"
        time.sleep(0.05)
    made = run_cli(directory, "plan", "--out", "p.plan")
    assert made.code == 0, made.text
    (directory / "gate").touch()
    tasks = directory / "state" / "tasks"
    deadline = time.monotonic() + 30
    while not any((task / "exit").exists() for task in tasks.iterdir()):
        assert time.monotonic() < deadline, "the trial never ended"
        time.sleep(0.05)
    result = run_cli(directory, "apply", "p.plan")
    assert result.code == 0, result.text
    assert "changed outside of tunectl" in result.out, result.out
    assert len(launches(directory)) == 2


def test_plan_files_that_cannot_be_written_or_read_get_diagnostics(tmp_path: Path) -> None:
    directory = setup(tmp_path)
    (directory / "a-directory.plan").mkdir()
    for out in (str(tmp_path / "missing" / "p.plan"), "a-directory.plan"):
        result = run_cli(directory, "plan", "--out", out)
        assert result.code == 1, result.text
        assert "Error: Failed to write plan file" in result.err, result.text
        assert "Traceback" not in result.text and "internal error" not in result.text
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    (directory / "main.plan").write_text('{"hello": "world"}')
    for name in ("nothing-here.plan", "a-directory.plan", "main.hcl", "main.plan"):
        result = run_cli(directory, "apply", name)
        assert result.code == 1, result.text
        assert "Error: Failed to read plan file" in result.err, result.text
        assert "Traceback" not in result.text and "internal error" not in result.text
