"""The CI examples (examples/ci): their YAML parses, every `tunectl` command they run exists
with the options they pass, and their plan steps work as written — run with a shell on a
real configuration, the GitLab one posting its note to a small fake of GitLab's notes API.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml  # PyYAML comes with Optuna

from tests.conftest import REPO, cli_env, run_cli, write
from tunectl.cli.main import app
from tunectl.durations import parse_duration

CI = REPO / "examples" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"
SHELL_END = {">", ">>", "||", "&&", "|", ";", "2>&1"}


def github_scripts() -> dict[str, str]:
    """Each step's `run`, by job and step name."""
    workflow = yaml.safe_load(GITHUB.read_text())
    return {
        f"{job}: {step.get('name', step.get('uses'))}": step["run"]
        for job, spec in workflow["jobs"].items()
        for step in spec["steps"]
        if "run" in step
    }


def gitlab_scripts() -> dict[str, str]:
    """Each job's script (before_script and script, templates resolved), by job name."""
    pipeline = yaml.safe_load(GITLAB.read_text())
    scripts = {}
    for name, job in pipeline.items():
        if not isinstance(job, dict) or name.startswith(".") or "script" not in job:
            continue
        base = pipeline.get(job.get("extends", ""), {})
        lines = [*base.get("before_script", []), *job.get("before_script", []), *job["script"]]
        scripts[name] = "\n".join(lines)
    return scripts


def invocations(script: str) -> Iterator[list[str]]:
    """The arguments of each `tunectl` command in a shell script (`tunectl` in a command's
    place, not as an argument: `pip install tunectl` runs pip)."""
    for line in script.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word == "tunectl" and (i == 0 or words[i - 1] in SHELL_END):
                args = []
                for arg in words[i + 1 :]:
                    if arg in SHELL_END:
                        break
                    args.append(arg)
                yield args


def check_command(args: list[str]) -> click.Command:
    """Resolve `args` against the real CLI: the command exists, each option is one of its
    options, and each duration value parses."""
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        assert option in ("-C", "--chdir"), f"unknown global option {option}"
        rest.pop(0)
    assert rest, f"no command in tunectl {args}"
    command = group.commands.get(rest.pop(0))
    assert command is not None, f"tunectl {args}: no such command"
    options = {name: p for p in command.params for name in getattr(p, "opts", [])}
    while rest:
        word = rest.pop(0)
        if not word.startswith("-"):
            continue  # an argument
        param = options.get(word)
        assert param is not None, f"tunectl {' '.join(args)}: {command.name} has no {word}"
        if isinstance(param, click.Option) and not param.is_flag:
            value = rest.pop(0)
            if word in ("--lock-timeout", "--progress-interval"):
                parse_duration(value)
    return command


def test_the_yaml_parses_and_names_commands_that_exist() -> None:
    seen: dict[str, set[str]] = {}
    for source, scripts in (("github", github_scripts()), ("gitlab", gitlab_scripts())):
        found = [args for script in scripts.values() for args in invocations(script)]
        assert found, source
        for args in found:
            command = check_command(args)
            seen.setdefault(source, set()).add(" ".join([command.name or "", *args]))
    for source, commands in seen.items():
        text = "\n".join(commands)
        assert "plan --markdown --detailed-exitcode --lock-timeout" in text, source
        assert re.search(r"apply --auto-approve --lock-timeout \S+ --progress-interval", text)
        assert "init" in text


def test_workflows_install_real_distributions_and_use_the_s3_backend() -> None:
    names = {
        re.search(r'^name = "(.+)"', p.read_text(), re.MULTILINE)[1]  # type: ignore[index]
        for p in [REPO / "pyproject.toml", *REPO.glob("providers/*/pyproject.toml")]
    }
    for path in (GITHUB, GITLAB):
        text = path.read_text()
        for line in re.findall(r"pip install (.+)", text):
            assert set(line.split()) <= names, line
        assert "AWS_ACCESS_KEY_ID" in text and "TUNECTL_VAR_bucket" in text
    workflow = yaml.safe_load(GITHUB.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"pull_request", "push"}
    plan_steps = workflow["jobs"]["plan"]["steps"]
    sticky = next(s for s in plan_steps if "sticky-pull-request-comment" in s.get("uses", ""))
    assert sticky["with"]["path"] == "plan.md" and sticky["if"] == "${{ !cancelled() }}"
    assert (CI / "gitlab-mr-comment.py").exists()
    assert "ci/gitlab-mr-comment.py" in GITLAB.read_text()


HCL = """\
experiment "demo" {
  algorithm "random" {
    seed = 1
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
    command = "python3 -c 'print(\\"acc=1\\")'"
  }
}
"""


def shell(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`script` as a CI runner runs it: sh, stop at the first failing command."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["sh", "-ec", script],
        cwd=cwd,
        env=cli_env(PATH=path, TUNECTL_DIR="tuning", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository with the configuration in tuning/, initialised."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    write(root / "tuning", {"main.hcl": HCL})
    (root / "ci").mkdir()
    (root / "ci" / "gitlab-mr-comment.py").write_text((CI / "gitlab-mr-comment.py").read_text())
    assert run_cli(root / "tuning", "init").code == 0
    return root


def test_github_plan_step_passes_on_changes_and_fails_on_errors(checkout: Path) -> None:
    step = github_scripts()["plan: Plan"]
    done = shell(step, checkout)
    assert done.returncode == 0, done.stderr  # exit 2 (changes) passes the check
    plan = (checkout / "plan.md").read_text()
    assert plan.startswith("<!-- tunectl plan: tuning -->\n### tunectl plan for `tuning`: 1 to add")
    write(checkout / "tuning", {"main.hcl": HCL.replace("max_trials", "max_trails")})
    failed = shell(step, checkout)
    assert failed.returncode == 1
    assert "### tunectl plan for `tuning`: failed" in (checkout / "plan.md").read_text()


class FakeGitLab(BaseHTTPRequestHandler):
    """The merge-request notes API: GET (paged), POST and PUT, on one merge request."""

    notes: list[dict[str, Any]] = []
    calls: list[tuple[str, str, str]] = []
    PREFIX = "/api/v4/projects/group%2Fproj/merge_requests/7/notes"

    def _reply(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, self.headers["PRIVATE-TOKEN"]))
        assert self.path.startswith(self.PREFIX + "?")
        page = int(re.search(r"page=(\d+)", self.path.split("per_page")[1])[1])  # type: ignore[index]
        self._reply(self.notes[(page - 1) * 100 : page * 100])

    def do_POST(self) -> None:
        self.calls.append(("POST", self.path, self.headers["PRIVATE-TOKEN"]))
        assert self.path == self.PREFIX
        note = {"id": 1000 + len(self.notes), "body": self._body()["body"]}
        self.notes.append(note)
        self._reply(note, 201)

    def do_PUT(self) -> None:
        self.calls.append(("PUT", self.path, self.headers["PRIVATE-TOKEN"]))
        number = int(self.path.rsplit("/", 1)[1])
        note = next(n for n in self.notes if n["id"] == number)
        note["body"] = self._body()["body"]
        self._reply(note)

    def log_message(self, *args: Any) -> None:
        pass


def test_gitlab_plan_job_posts_one_note_and_updates_it(checkout: Path) -> None:
    # Other notes on the merge request, more than one page of them, and another directory's
    # plan: only this directory's note is updated.
    FakeGitLab.notes = [{"id": i, "body": f"review comment {i}"} for i in range(120)]
    FakeGitLab.notes.append({"id": 500, "body": "<!-- tunectl plan: other -->\nold"})
    FakeGitLab.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "CI_API_V4_URL": f"http://127.0.0.1:{server.server_port}/api/v4",
        "CI_PROJECT_ID": "group/proj",
        "CI_MERGE_REQUEST_IID": "7",
        "TUNECTL_GITLAB_TOKEN": "glpat-test",
    }
    script = gitlab_scripts()["plan"]
    script = script.replace("pip install", ": pip install")  # tunectl is installed already
    try:
        first = shell(script, checkout, **env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "created note 1121" in first.stdout
        write(checkout / "tuning", {"main.hcl": HCL.replace("max_trials = 2", "max_trials = 3")})
        second = shell(script, checkout, **env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "updated note 1121" in second.stdout
    finally:
        server.shutdown()
        server.server_close()
    mine = [n for n in FakeGitLab.notes if n["body"].startswith("<!-- tunectl plan: tuning -->")]
    assert len(mine) == 1
    assert "will run up to 3 trials" in mine[0]["body"]
    assert FakeGitLab.notes[120]["body"] == "<!-- tunectl plan: other -->\nold"
    assert {token for _, _, token in FakeGitLab.calls} == {"glpat-test"}
