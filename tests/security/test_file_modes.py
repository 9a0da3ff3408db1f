"""Files are private (SPEC §6): the state directory 0700, every file tunectl writes 0600,
whatever the umask of the user running it.

The CLI runs in a subprocess under `sh -c 'umask 000; exec ...'`, the most permissive umask
a user can have (and 0277, one that would leave tunectl unable to write a file made with
the umask's mode); then the test walks the state directory and checks every entry.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import cli_env, write
from tunectl.testing.s3 import S3_ENV, S3Server

# Reports how its stdout (out.log) was opened and which umask it runs with, writes a model,
# and, given gate=PATH, waits for that file so the test can look at a running apply.
TRIAL = """\
import os, stat, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
print(f"stdout_mode={stat.S_IMODE(os.fstat(1).st_mode):o}", flush=True)
mask = os.umask(0)
os.umask(mask)
print(f"trial_umask={mask:03o}", flush=True)
gate = args.get("gate")
if gate:
    open(args["ready"], "a").close()
    deadline = time.time() + 60
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
with open(os.path.join(args["out"], "model.txt"), "w") as f:
    f.write("model")
print("acc=0.5", flush=True)
"""

BACKEND_S3 = """\
variable "endpoint" {
  type = string
}
variable "bucket" {
  type = string
}
tunectl {
  backend "s3" {
    bucket           = var.bucket
    key              = "team/tunectl.db"
    endpoint         = var.endpoint
    region           = "us-east-1"
    force_path_style = true
  }
}
"""


def config(trials: int = 2, args: str = "", head: str = "") -> str:
    return f"""\
{head}
experiment "demo" {{
  algorithm "random" {{
    seed = 3
  }}
  objective {{
    metric    = "acc"
    direction = "maximize"
  }}
  max_trials     = {trials}
  max_concurrent = 1
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 trial.py out=${{trial.model_dir}} {args}"
    workdir = "."
  }}
}}
"""


def argv(umask: str, directory: Path, *args: str) -> list[str]:
    return [
        "/bin/sh",
        "-c",
        f'umask {umask}; exec "$@"',
        "sh",
        sys.executable,
        "-m",
        "tunectl",
        "--chdir",
        str(directory),
        *args,
    ]


def run(umask: str, directory: Path, *args: str, env: dict | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        argv(umask, directory, *args),
        capture_output=True,
        text=True,
        input="",
        timeout=180,
        env=env or cli_env(),
    )
    return proc.returncode, proc.stdout + proc.stderr


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.lstat().st_mode):04o}"


def walk(root: Path) -> dict[str, str]:
    """Every directory and file under `root` (relative path -> mode), `root` as ".".

    Files in model directories are left out: they are the trial's own output, written with
    the user's umask (docs/security.md "Private files"); the directories are tunectl's.
    """
    found = {".": mode(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        for name in dirnames:
            found[(rel / name).as_posix()] = mode(here / name)
        if {"models", "models-staging"} & set(rel.parts):
            continue
        for name in filenames:
            found[(rel / name).as_posix()] = mode(here / name)
    return found


def assert_private(root: Path) -> dict[str, str]:
    found = walk(root)
    wrong = {
        rel: m
        for rel, m in found.items()
        if m != ("0700" if (root / rel).is_dir() and not (root / rel).is_symlink() else "0600")
    }
    assert not wrong, f"not private under {root}: {wrong}"
    return found


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- local state ---------------------------------------------------------------------------


def test_plan_apply_destroy_under_umask_000_leave_only_private_files(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg",
        {
            "main.hcl": config(args="gate=gate ready=ready-${trial.number}"),
            "trial.py": TRIAL,
        },
    )
    state = directory / "state"

    code, text = run("000", directory, "plan", "--out", "p.plan")
    assert code == 0, text
    assert mode(directory / "p.plan") == "0600"
    found = assert_private(state)
    assert {".", "tunectl.db", "tunectl.db.lock"} <= found.keys(), found

    # Apply the saved plan, and look at the files while its first trial runs: the state's
    # WAL and shared-memory files and the lock's info exist only while apply holds them.
    apply = subprocess.Popen(
        argv("000", directory, "apply", "p.plan"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )
    try:
        wait_for(lambda: (directory / "ready-0").exists(), 60, "the first trial to start")
        found = assert_private(state)
        expected = {
            "tunectl.db",
            "tunectl.db-wal",
            "tunectl.db-shm",
            "tunectl.db.backup",
            "tunectl.db.lock",
            "tunectl.db.lock.info",
            "tasks",
            "models",
        }
        assert expected <= found.keys(), sorted(found)
        (task,) = [p for p in found if p.startswith("tasks/") and p.count("/") == 1]
        for name in ("spec.json", "out.log", "lock", "pid", "started"):
            assert f"{task}/{name}" in found, sorted(found)
    finally:
        (directory / "gate").touch()
        out, _ = apply.communicate(timeout=120)
    assert apply.returncode == 0, out

    found = assert_private(state)
    tasks = sorted(p for p in found if p.startswith("tasks/") and p.count("/") == 1)
    assert len(tasks) == 2, tasks
    for task in tasks:
        assert f"{task}/exit" in found
        log = (state / task / "out.log").read_text()
        # out.log was 0600 before the trial wrote to it, and the trial ran with the
        # user's own umask, not tunectl's 077.
        assert "stdout_mode=600" in log and "trial_umask=000" in log, log
    models = [p for p in found if p.startswith("models/") and p.endswith("trials/0")]
    assert models, sorted(found)  # the model directories are tunectl's, and 0700

    code, text = run("000", directory, "destroy", "--auto-approve")
    assert code == 0, text
    assert_private(state)


def test_a_narrow_umask_does_not_lock_tunectl_out(tmp_path: Path) -> None:
    # Under umask 0277 a file made with the umask's mode would be read-only (0400): tunectl
    # sets the modes it means, so it can still write its state, and SQLite its WAL.
    directory = write(tmp_path / "cfg", {"main.hcl": config(trials=1), "trial.py": TRIAL})
    code, text = run("0277", directory, "apply", "--auto-approve")
    assert code == 0, text
    found = assert_private(directory / "state")
    assert "tunectl.db.backup" in found
    code, text = run("0277", directory, "plan", "--detailed-exitcode")
    assert code == 0, text


def test_an_older_state_is_made_private_by_the_next_command(tmp_path: Path) -> None:
    directory = write(tmp_path / "cfg", {"main.hcl": config(trials=1), "trial.py": TRIAL})
    code, text = run("022", directory, "apply", "--auto-approve")
    assert code == 0, text
    state = directory / "state"
    # What the previous release left: a 0755 directory, 0644 files.
    os.chmod(state, 0o755)
    for name in ("tunectl.db", "tunectl.db.backup", "tunectl.db.lock"):
        os.chmod(state / name, 0o644)
    code, text = run("022", directory, "plan")
    assert code == 0, text
    for name in ("tunectl.db", "tunectl.db.backup", "tunectl.db.lock"):
        assert mode(state / name) == "0600", name
    assert mode(state) == "0700"


def test_a_backend_directory_outside_state_keeps_its_mode(tmp_path: Path) -> None:
    # A directory the user named (a shared or home directory) is theirs: only the files
    # tunectl puts there are made private.
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    head = f'tunectl {{\n  backend "local" {{\n    path = "{shared}/tunectl.db"\n  }}\n}}\n'
    directory = write(tmp_path / "cfg", {"main.hcl": config(trials=1, head=head)})
    code, text = run("000", directory, "plan")
    assert code == 0, text
    assert mode(shared) == "0755"
    assert mode(shared / "tunectl.db") == "0600"
    assert mode(shared / "tunectl.db.lock") == "0600"


# -- the S3 backend's working copy ---------------------------------------------------------


def test_s3_backend_working_copy_is_private_under_umask_000(
    tmp_path: Path, server: S3Server
) -> None:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    env = cli_env(**S3_ENV, TUNECTL_VAR_endpoint=server.url, TUNECTL_VAR_bucket=bucket)
    directory = write(tmp_path / "cfg", {"main.hcl": config(head=BACKEND_S3), "trial.py": TRIAL})
    code, text = run("000", directory, "plan", "--out", "p.plan", env=env)
    assert code == 0, text
    assert mode(directory / "p.plan") == "0600"
    code, text = run("000", directory, "apply", "p.plan", env=env)
    assert code == 0, text
    found = assert_private(directory / "state")
    copies = [p for p in found if p.startswith("remote/") and p.endswith(".db")]
    assert len(copies) == 1, sorted(found)
    assert any(p.startswith("remote/tasks/") for p in found), sorted(found)
    code, text = run("000", directory, "destroy", "--auto-approve", env=env)
    assert code == 0, text
    assert_private(directory / "state")
