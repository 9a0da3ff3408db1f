"""`notify "webhook"` from the command line: apply posts `best`, `failed` and `finished`
messages to a local HTTP receiver, retries a receiver that fails first, is never slowed
by a slow one, and never shows or stores the URL (it holds the robot's token)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli.test_apply import apply, config, setup
from tests.conftest import run_cli

TOKEN = "s3cr3t-robot-token"


class Receiver:
    """A local webhook: answers `fail_first` requests with 503, then 200, each after
    `delay` seconds; keeps the JSON bodies it accepted."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.bodies: list[dict] = []
        self.requests = 0
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver.fail_first
                time.sleep(receiver.delay)
                if failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.bodies.append(json.loads(body))
                    receiver.paths.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"errcode":0}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?access_token={TOKEN}"
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.bodies) >= count:
                    return list(self.bodies)
            time.sleep(0.05)
        return list(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make  # type: ignore[misc]
    for r in made:
        r.server.shutdown()
        r.server.server_close()


def hcl(url: str, fmt: str = "json", on: str = '["best", "failed", "finished"]', **kw) -> str:
    extra = (
        f'notify "webhook" {{\n    url    = var.hook\n    on     = {on}\n    format = "{fmt}"\n  }}'
    )
    return f'variable "hook" {{\n  default = "{url}"\n}}\n' + config(extra=extra, **kw)


def test_best_failed_and_finished_reach_the_receiver_in_json(tmp_path: Path, receiver) -> None:
    hook = receiver()
    # Trial 0 completes (the first best), trial 1 fails, trial 2 completes.
    directory = setup(
        tmp_path, hcl(hook.url, max_trials=3, concurrent=1, args="steps=1 n=${trial.number}")
    )
    (directory / "trial.py").write_text(
        (directory / "trial.py")
        .read_text()
        .replace('if args.get("fail") == "1":', 'if args.get("n") == "1":')
    )
    plan = run_cli(directory, "plan")
    assert plan.code == 0, plan.text
    assert "url = (sensitive value)" in plan.out and TOKEN not in plan.out, plan.out

    result = apply(directory)
    assert result.code == 0, result.text
    bodies = hook.wait_for(3)
    events = [b["event"] for b in bodies]
    assert events[0] == "best" and bodies[0]["trial"] == 0, bodies
    assert "failed" in events and events[-1] == "finished", bodies
    failed = next(b for b in bodies if b["event"] == "failed")
    assert failed["trial"] == 1 and "exited with status 3" in failed["text"], failed
    finished = bodies[-1]
    assert finished["status"] == "succeeded" and finished["trials"] == 3, finished
    assert finished["best_trial"] in (0, 2) and "best_value" in finished
    assert all(p.endswith(TOKEN) for p in hook.paths)
    # The token is in no output and not in the state's copy of the configuration.
    assert TOKEN not in result.text
    state = b"".join(p.read_bytes() for p in directory.rglob("*.db"))
    state += b"".join(p.read_bytes() for p in directory.rglob("*.json"))
    assert TOKEN.encode() not in state


def test_dingtalk_format_and_a_receiver_that_fails_first(tmp_path: Path, receiver) -> None:
    hook = receiver(fail_first=2)
    directory = setup(tmp_path, hcl(hook.url, fmt="dingtalk", on='["finished"]', max_trials=1))
    result = apply(directory)
    assert result.code == 0, result.text
    bodies = hook.wait_for(1)
    assert hook.requests == 3, hook.requests  # two 503s retried, then delivered
    assert len(bodies) == 1 and bodies[0]["msgtype"] == "text", bodies
    content = bodies[0]["text"]["content"]
    assert content.startswith("tunectl: experiment demo: succeeded"), content
    assert "could not deliver" not in result.out


def test_slack_format(tmp_path: Path, receiver) -> None:
    hook = receiver()
    directory = setup(tmp_path, hcl(hook.url, fmt="slack", on='["best"]', max_trials=1))
    assert apply(directory).code == 0
    bodies = hook.wait_for(1)
    assert list(bodies[0]) == ["text"] and "new best: trial 0" in bodies[0]["text"], bodies


def test_a_slow_receiver_never_slows_apply(tmp_path: Path, receiver) -> None:
    hook = receiver(delay=30.0)
    directory = setup(tmp_path, hcl(hook.url, max_trials=4, concurrent=2))
    started = time.monotonic()
    result = apply(directory)
    took = time.monotonic() - started
    assert result.code == 0, result.text
    # Trials ran on; apply waited only its short grace at the end, then said so.
    assert took < 20, took
    assert "still undelivered when apply ended" in result.out, result.out
    assert "127.0.0.1" in result.out and TOKEN not in result.text


def test_a_dead_receiver_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    directory = setup(
        tmp_path, hcl("http://127.0.0.1:9/hook?t=" + TOKEN, on='["best"]', max_trials=1)
    )
    result = apply(directory)
    assert result.code == 0, result.text
    assert "Apply complete" in result.out
    assert TOKEN not in result.text


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('url = "ftp://x/y"', "url must be an http:// or https:// address"),
        ('url = "http://x/y"\n    on = ["best", "done"]', '"done" is not an event'),
        ('url = "http://x/y"\n    format = "teams"', "format must be one of json, dingtalk, slack"),
        ('on = ["best"]', 'The argument "url" is required'),
        ('url = "https://bot:pw@hooks.example.com/x"', "must not hold user:password@"),
    ],
)
def test_bad_notify_blocks_are_clear_errors(tmp_path: Path, block: str, message: str) -> None:
    directory = setup(tmp_path, config(extra=f'notify "webhook" {{\n    {block}\n  }}'))
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert message in result.err + result.out, result.text
    assert "Traceback" not in result.err
