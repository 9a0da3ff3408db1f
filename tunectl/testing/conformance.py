"""Provider-agnostic conformance tests every provider distribution runs.

Subclass `ProviderConformance` in a test module as `TestXxxConformance` and supply:

* `make_provider(tmp_path)`: a provider whose bookkeeping lives in `tmp_path` (called
  again with the same path to simulate a restarted tunectl adopting its tasks);
* `make_request(key, command, **fields)`: a `TaskRequest` for that provider whose
  `command` body is `command`.

Most cases run *scripted* tasks — output written in chunks, an exit code, a running time
— built by `scripted`. By default it writes a POSIX shell command (`printf`, `sleep`,
`exit`); a provider whose tasks are not shell commands overrides `scripted` (see
`tunectl.testing.fake`). The other cases are gated by what the provider declares:

* its `command` body accepts the shell kind (`SHELL`): cases on quoting, environment,
  and processes the task starts; a provider whose tasks cannot write to the test
  machine's files overrides `shared_path` (a path both the test and the task can reach)
  and `process_running` (whether a process whose command line contains a pattern runs);
* its `command` body accepts the argv kind (`ARGV`): exec-form cases;
* `capabilities.events`: `wait` returns promptly;
* `MetricSource.FILE` in `capabilities.metric_sources`: `read_metrics` of a task file.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tunectl.providers.base import (
    MetricSource,
    MetricsRef,
    Provider,
    ProviderError,
    TaskHandle,
    TaskRequest,
    TaskState,
    TaskStatus,
)
from tunectl.providers.bodies import ARGV, SHELL, BodyKind


def accepts(provider: Provider, kind: BodyKind, body: str = "command") -> bool:
    """Whether `provider`'s tasks take `body` in the `kind` language."""
    return any(spec.name == body and kind in spec.kinds for spec in provider.task_bodies)


def _printf(chunk: bytes) -> str:
    """A `printf` format that writes exactly `chunk`."""
    out = []
    for byte in chunk:
        ch = chr(byte)
        if ch == "%":
            out.append("%%")
        elif ch == "\\":
            out.append("\\\\")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "printf " + shlex.quote("".join(out))


class ProviderConformance:
    """Cases every provider passes; see the module docstring for what a subclass supplies."""

    #: seconds a simple task may take to be seen finished (raise for slow providers)
    finish_within: float = 30.0
    #: how promptly `wait` must return after a task exits (providers with events)
    wait_latency: float = 0.5
    #: whether `read_log` cursors are byte offsets (else opaque, e.g. line counts of an
    #: API that serves logs by line); both must resume exactly where they were returned
    cursor_is_bytes: bool = True
    #: seconds between two chunks of a scripted task's output
    chunk_pause: float = 0.3
    #: whether a running task's output can be read before it ends (MaxCompute gives a
    #: task's result when it has ended: its cases wait for the task to run instead)
    streams_output: bool = True
    #: whether a failed task carries its program's exit code (else any code but 0)
    exit_codes: bool = True

    # -- to supply -----------------------------------------------------------------------

    def make_provider(self, tmp_path: Path) -> Provider:
        raise NotImplementedError

    def make_request(self, key: str, command: str | list[str], **fields: Any) -> TaskRequest:
        raise NotImplementedError

    # -- to override when the tasks are not shell commands ---------------------------------

    def scripted(
        self,
        key: str,
        output: Sequence[bytes] = (),
        exit_code: int = 0,
        seconds: float = 0.0,
        files: Mapping[str, bytes] | None = None,
        **fields: Any,
    ) -> TaskRequest:
        """A task that writes `files` (relative to its workdir), then each chunk of
        `output` (`chunk_pause` apart), runs `seconds` longer, and exits with
        `exit_code`."""
        steps = [f"{_printf(data)} > {shlex.quote(path)}" for path, data in (files or {}).items()]
        for i, chunk in enumerate(output):
            if i:
                steps.append(f"sleep {self.chunk_pause:g}")
            steps.append(_printf(chunk))
        if seconds:
            steps.append(f"sleep {seconds:g}")
        if exit_code:
            steps.append(f"exit {exit_code}")
        return self.make_request(key, "; ".join(steps) or "true", **fields)

    # -- to override when the tasks run elsewhere ------------------------------------------

    def shared_path(self, tmp_path: Path, name: str) -> Path:
        return tmp_path / name

    def process_running(self, pattern: str) -> bool:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        return bool(found.stdout.strip())

    # -- helpers -------------------------------------------------------------------------

    @pytest.fixture
    def provider(self, tmp_path: Path) -> Iterator[Provider]:
        self.tmp_path = tmp_path
        self._providers: list[Provider] = []
        self._handles: list[TaskHandle] = []
        provider = self.new_provider(tmp_path)
        yield provider
        for handle in self._handles:  # nothing a test started may outlive it
            for p in self._providers[:1]:
                try:
                    p.cancel(handle)
                except ProviderError:
                    pass
        for p in self._providers:
            p.close()

    def new_provider(self, tmp_path: Path) -> Provider:
        provider = self.make_provider(tmp_path)
        self._providers.append(provider)
        return provider

    def submit(self, provider: Provider, key: str, command: str | list[str], **fields: Any):
        return self.submit_request(provider, self.make_request(key, command, **fields))

    def submit_request(self, provider: Provider, request: TaskRequest) -> TaskHandle:
        handle = provider.submit(request)
        self._handles.append(handle)
        return handle

    def run_script(self, provider: Provider, *args: Any, **fields: Any) -> TaskHandle:
        return self.submit_request(provider, self.scripted(self.key(), *args, **fields))

    @staticmethod
    def key() -> str:
        return "t-" + uuid.uuid4().hex[:12]

    def run_to_end(self, provider: Provider, handle: TaskHandle, within: float | None = None):
        give_up = time.monotonic() + (within or self.finish_within)
        while True:
            status = provider.poll([handle])[handle.id]
            if status.state.terminal:
                return status
            assert time.monotonic() < give_up, f"task still {status.state.value}"
            provider.wait([handle], min(1.0, max(0.01, give_up - time.monotonic())))

    def wait_for_state(
        self, provider: Provider, handle: TaskHandle, state: TaskState, within: float = 10.0
    ) -> TaskStatus:
        give_up = time.monotonic() + within
        while True:
            status = provider.poll([handle])[handle.id]
            if status.state is state:
                return status
            assert not status.state.terminal, f"task ended {status.state.value}: {status}"
            assert time.monotonic() < give_up, f"task still {status.state.value}"
            time.sleep(0.02)

    def wait_for_lines(
        self, provider: Provider, handle: TaskHandle, lines: list[str], within: float = 10.0
    ) -> None:
        give_up = time.monotonic() + within
        while provider.read_log(handle, 0).lines != lines:
            assert time.monotonic() < give_up, "the task did not start"
            provider.poll([handle])
            time.sleep(0.02)

    def all_lines(self, provider: Provider, handle: TaskHandle) -> list[str]:
        lines: list[str] = []
        cursor = 0
        while True:
            chunk = provider.read_log(handle, cursor)
            if not chunk.lines and chunk.cursor == cursor:
                return lines
            lines.extend(chunk.lines)
            cursor = chunk.cursor

    @staticmethod
    def require(provider: Provider, *kinds: BodyKind) -> None:
        missing = [k.name for k in kinds if not accepts(provider, k)]
        if missing:
            pytest.skip(f"the provider's command body takes no {' or '.join(missing)} kind")

    # -- cases: every provider -------------------------------------------------------------

    def test_success(self, provider: Provider) -> None:
        handle = self.run_script(provider, [b"hello\n"])
        status = self.run_to_end(provider, handle)
        assert status.state is TaskState.SUCCEEDED
        assert status.exit_code == 0
        assert self.all_lines(provider, handle) == ["hello"]

    def test_failure_has_exit_code(self, provider: Provider) -> None:
        handle = self.run_script(provider, [b"boom\n"], 3)
        status = self.run_to_end(provider, handle)
        assert status.state is TaskState.FAILED
        if self.exit_codes:
            assert status.exit_code == 3
        else:
            assert status.exit_code not in (None, 0)
        assert self.all_lines(provider, handle) == ["boom"]

    def test_poll_is_keyed_by_handle_id(self, provider: Provider) -> None:
        a = self.run_script(provider, [], 0)
        b = self.run_script(provider, [], 1)
        self.run_to_end(provider, a)
        self.run_to_end(provider, b)
        statuses = provider.poll([a, b])
        assert set(statuses) == {a.id, b.id}
        assert statuses[a.id].state is TaskState.SUCCEEDED
        assert statuses[b.id].state is TaskState.FAILED

    def test_submit_is_idempotent(self, provider: Provider, tmp_path: Path) -> None:
        key = self.key()
        request = self.scripted(key, [b"ran\n"], seconds=0.3)
        first = self.submit_request(provider, request)
        assert self.submit_request(provider, request) == first  # while it runs
        self.run_to_end(provider, first)
        assert self.submit_request(provider, request) == first  # after it ended
        restarted = self.new_provider(tmp_path)  # from another tunectl process
        assert self.submit_request(restarted, request) == first
        assert restarted.poll([first])[first.id].state is TaskState.SUCCEEDED
        assert self.all_lines(restarted, first) == ["ran"]

    def test_submit_adopts_a_running_task(self, provider: Provider, tmp_path: Path) -> None:
        # A restarted apply adopts its tasks by submitting their recorded keys again.
        key = self.key()
        request = self.scripted(key, [b"done\n"], seconds=0.8)
        handle = self.submit_request(provider, request)
        self.wait_for_state(provider, handle, TaskState.RUNNING)
        restarted = self.new_provider(tmp_path)
        adopted = self.submit_request(restarted, request)
        assert adopted == handle
        assert restarted.poll([adopted])[handle.id].state is TaskState.RUNNING
        status = self.run_to_end(restarted, adopted)
        assert status.state is TaskState.SUCCEEDED
        assert self.all_lines(restarted, adopted) == ["done"]

    def test_cancel_stops_the_task(self, provider: Provider) -> None:
        handle = self.run_script(provider, [b"up\n"], seconds=300)
        if self.streams_output:
            self.wait_for_lines(provider, handle, ["up"])
        else:
            self.wait_for_state(provider, handle, TaskState.RUNNING)
        started = time.monotonic()
        provider.cancel(handle)
        assert time.monotonic() - started < 6
        assert provider.poll([handle])[handle.id].state is TaskState.CANCELLED
        provider.cancel(handle)  # idempotent
        assert provider.poll([handle])[handle.id].state is TaskState.CANCELLED

    def test_cancel_after_the_end_changes_nothing(self, provider: Provider) -> None:
        handle = self.run_script(provider)
        self.run_to_end(provider, handle)
        provider.cancel(handle)
        assert provider.poll([handle])[handle.id].state is TaskState.SUCCEEDED

    def test_read_log_cursor_and_unicode(self, provider: Provider) -> None:
        output = [b"a\n", "héllo ✓\nb".encode(), b"c\n\xffx\ntail"]
        handle = self.run_script(provider, output)
        lines: list[str] = []
        cursor = 0
        cursors = []
        while True:
            status = provider.poll([handle])[handle.id]
            chunk = provider.read_log(handle, cursor)
            assert chunk.cursor >= cursor
            lines.extend(chunk.lines)
            cursors.append(chunk.cursor)
            cursor = chunk.cursor
            if status.state.terminal and not chunk.lines:
                break
            time.sleep(0.05)
        assert lines == ["a", "héllo ✓", "bc", "\ufffdx", "tail"]
        if self.streams_output:
            assert len(set(cursors)) > 2  # read in several pieces while it ran
        if self.cursor_is_bytes:
            assert cursor == len(b"".join(output))
        again = provider.read_log(handle, cursor)
        assert again.lines == [] and again.cursor == cursor
        # a cursor from the middle continues exactly there
        after_a = provider.read_log(handle, 0)
        first = after_a.lines.index("a") + 1
        middle = self._cursor_after(provider, handle, first)
        assert provider.read_log(handle, middle).lines == ["héllo ✓", "bc", "\ufffdx", "tail"]

    def _cursor_after(self, provider: Provider, handle: TaskHandle, n: int) -> int:
        """The cursor that follows the first `n` lines of a finished task's output."""
        if self.cursor_is_bytes:
            return len("\n".join(self.all_lines(provider, handle)[:n]).encode()) + 1
        return n

    def test_read_metrics_of_stdout_is_the_log(self, provider: Provider) -> None:
        handle = self.run_script(provider, [b"acc=1\n", b"acc=2\n"])
        self.run_to_end(provider, handle)
        stdout = MetricsRef(MetricSource.STDOUT)
        for cursor in (0, provider.read_log(handle, 0).cursor):
            assert provider.read_metrics(handle, stdout, cursor) == provider.read_log(
                handle, cursor
            )

    def test_timeout_fails_the_task(self, provider: Provider) -> None:
        handle = self.run_script(provider, seconds=200, timeout=0.5)
        started = time.monotonic()
        status = self.run_to_end(provider, handle, within=15)
        assert status.state is TaskState.FAILED
        assert "timed out" in status.message
        assert time.monotonic() - started < 10

    # -- cases gated by capabilities -------------------------------------------------------

    def test_wait_returns_promptly(self, provider: Provider) -> None:
        if not provider.capabilities.events:
            pytest.skip("the provider has no events: wait returns after its timeout")
        handle = self.run_script(provider, seconds=0.1)
        assert provider.poll([handle])[handle.id].state in (TaskState.PENDING, TaskState.RUNNING)
        started = time.monotonic()
        while not provider.poll([handle])[handle.id].state.terminal:
            provider.wait([handle], 10)
            assert time.monotonic() - started < self.wait_latency
        elapsed = time.monotonic() - started
        assert elapsed < self.wait_latency, elapsed
        assert provider.poll([handle])[handle.id].state is TaskState.SUCCEEDED

    def test_read_metrics_of_a_task_file(self, provider: Provider, tmp_path: Path) -> None:
        if MetricSource.FILE not in provider.capabilities.metric_sources:
            pytest.skip("the provider reads no task files")
        workdir = self.shared_path(tmp_path, "work")
        workdir.mkdir(parents=True, exist_ok=True)
        handle = self.run_script(
            provider,
            files={"m.jsonl": b'{"acc": 1}\n{"acc": 2}\n'},
            workdir=str(workdir),
            metrics_files=("m.jsonl",),
        )
        assert self.run_to_end(provider, handle).state is TaskState.SUCCEEDED
        chunk = provider.read_metrics(handle, MetricsRef(MetricSource.FILE, "m.jsonl"), 0)
        assert chunk.lines == ['{"acc": 1}', '{"acc": 2}']
        rest = provider.read_metrics(handle, MetricsRef(MetricSource.FILE, "m.jsonl"), chunk.cursor)
        assert rest.lines == []

    def test_submit_runs_a_key_once(self, provider: Provider, tmp_path: Path) -> None:
        self.require(provider, SHELL)
        counter = self.shared_path(tmp_path, "count")
        command = f"echo ran >> {shlex.quote(str(counter))}; sleep 0.3"
        key = self.key()
        first = self.submit(provider, key, command)
        assert self.submit(provider, key, command) == first
        self.run_to_end(provider, first)
        restarted = self.new_provider(tmp_path)
        assert self.submit(restarted, key, command) == first
        time.sleep(0.2)
        assert counter.read_text().splitlines() == ["ran"]

    def test_cancel_stops_the_task_s_children(self, provider: Provider) -> None:
        self.require(provider, SHELL)
        # A unique duration identifies this test's sleeps on the command line.
        duration = f"300.{uuid.uuid4().int % 10**9:09d}"
        command = f"sleep {duration} & echo up; sleep {duration}"
        handle = self.submit(provider, self.key(), command)
        give_up = time.monotonic() + 10
        while provider.read_log(handle, 0).lines != ["up"] or not self.process_running(
            f"sleep {duration}"
        ):
            assert time.monotonic() < give_up, "the task did not start"
            time.sleep(0.02)
        started = time.monotonic()
        provider.cancel(handle)
        assert time.monotonic() - started < 6
        assert provider.poll([handle])[handle.id].state is TaskState.CANCELLED
        give_up = time.monotonic() + 5
        while self.process_running(f"sleep {duration}"):
            assert time.monotonic() < give_up, "a child of the cancelled task survived"
            time.sleep(0.02)

    def test_timeout_ends_the_task_s_processes(self, provider: Provider) -> None:
        self.require(provider, SHELL)
        duration = f"200.{uuid.uuid4().int % 10**9:09d}"
        handle = self.submit(provider, self.key(), f"sleep {duration}", timeout=0.5)
        status = self.run_to_end(provider, handle, within=15)
        assert status.state is TaskState.FAILED
        assert not self.process_running(f"sleep {duration}")

    def test_env_is_passed(self, provider: Provider) -> None:
        self.require(provider, SHELL, ARGV)
        env = {"TUNECTL_TEST_VALUE": "two words; $HOME `x`"}
        a = self.submit(provider, self.key(), 'echo "$TUNECTL_TEST_VALUE"', env=env)
        b = self.submit(provider, self.key(), ["sh", "-c", 'echo "$TUNECTL_TEST_VALUE"'], env=env)
        for handle in (a, b):
            assert self.run_to_end(provider, handle).state is TaskState.SUCCEEDED
            assert self.all_lines(provider, handle) == ["two words; $HOME `x`"]

    def test_values_are_not_parsed_by_a_shell(self, provider: Provider, tmp_path: Path) -> None:
        self.require(provider, SHELL, ARGV)
        pwned = self.shared_path(tmp_path, f"pwned-{uuid.uuid4().hex}")
        value = f"x; touch {pwned}"
        as_list = self.submit(provider, self.key(), ["echo", value])
        as_shell = self.submit(provider, self.key(), f"echo {shlex.quote(value)}")
        for handle in (as_list, as_shell):
            assert self.run_to_end(provider, handle).state is TaskState.SUCCEEDED
            assert self.all_lines(provider, handle) == [value]
        assert not pwned.exists()

    def test_exec_form_runs_a_program_not_a_shell_builtin(self, provider: Provider) -> None:
        self.require(provider, ARGV)
        handle = self.submit(provider, self.key(), ["exit", "3"])
        status = self.run_to_end(provider, handle)
        assert status.state is TaskState.FAILED  # `exit` is no program: not found
        assert status.exit_code not in (None, 0, 3)
