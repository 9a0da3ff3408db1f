"""The `maxcompute` provider: each trial task is one MaxCompute instance — a PAI command
(`pai = "-name xgboost -project algo_public -Deta=${param.eta} ..."`) or a SQL script
(`sql = "..."` or a list of statements) — driven through pyodps.

- Bodies: a PAI command is read into its algorithm, project and `-D` parameters
  (`tunectl.providers.xflow`) and sent as an `<XflowInstance>` whose parameter values are
  XML text: a value cannot add a parameter. SQL placeholders are quoted as MaxCompute
  string literals (`SQL_BACKSLASH`); several statements run as one script
  (`odps.sql.submit.mode=script`). One task runs one of the two; PAI AutoML's `cmd1`,
  `cmd2`, ... are tasks, run in order, and a trial resumes from the task that failed.
- Submission: the job carries the task's key as its Guid and as `EXT_TASK_ID` in its
  settings. A key recorded by an earlier apply (a crash between recording and learning the
  instance id) and a create whose answer was lost are looked up before creating: the
  owner's instances since the key was recorded, each job's source read once.
- Status: one list call (1000 instances a page) of the owner's running instances per
  poll; an instance missing from it is asked for once (`?taskstatus`, and `?result` when
  it failed): calls grow with pages and with instances that end, not with polls × trials.
- Timeouts: tunectl stops an instance that runs past its task's `timeout` (kept in the
  job's settings, so a restarted apply enforces it too).
- Metrics: `metrics "table" { sql = "..." }` (`tunectl_maxcompute.tables`), and
  `metrics "stdout"` on the task's result text (a query's CSV rows, or the error).
- Logs: the task's result; `tunectl logs` first prints the instance's Logview address.
- Credentials: the environment (`ALIBABA_CLOUD_ACCESS_KEY_ID`, `_SECRET`, `_SECURITY_TOKEN`)
  or Alibaba Cloud's default chain; never from HCL, never stored or logged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunectl.providers.base import (
    AttrSpec,
    Capabilities,
    LogChunk,
    MetricSource,
    MetricsRef,
    Provider,
    ProviderError,
    TaskHandle,
    TaskRequest,
    TaskState,
    TaskStatus,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
)
from tunectl.providers.bodies import SQL_BACKSLASH, XFLOW, BodySpec, ListOf
from tunectl.providers.xflow import XFlowSyntaxError, parse
from tunectl.retry import retry_call
from tunectl_maxcompute import checks
from tunectl_maxcompute.client import (
    ATTEMPTS,
    KEY_SETTING,
    TIMEOUT_SETTING,
    Client,
    not_found,
)
from tunectl_maxcompute.client import TaskState as McTaskState
from tunectl_maxcompute.tables import Tables

# How far before a key's recording an instance of it may have started (clock skew).
SKEW = 600.0
LOOKBACK = 86400.0  # how far back a key recorded at an unknown time is searched for
_GUIDS = uuid.UUID("6f1d8a52-3c1e-4d36-9d55-2f0b6f8f2a10")


class MaxComputeProvider(Provider):
    name = "maxcompute"
    version = "0.1.0"
    capabilities = Capabilities(
        price=True,  # with `price_per_hour` (`hourly_price`)
        metric_sources=frozenset({MetricSource.STDOUT, MetricSource.TABLE}),
    )
    price_setting = "price_per_hour"
    task_bodies = (
        BodySpec(
            "pai",
            (XFLOW,),
            noun="a PAI command",
            description='A PAI command: "-name ALGORITHM -project algo_public -Dkey=value ...".',
        ),
        BodySpec(
            "sql",
            (SQL_BACKSLASH, ListOf(SQL_BACKSLASH)),
            noun="a query",
            description="A SQL statement, or a list of statements run as one script.",
        ),
    )
    config_schema = (
        AttrSpec("project", required=True, description="the MaxCompute project jobs run in"),
        AttrSpec(
            "endpoint",
            required=True,
            description="e.g. http://service.cn-hangzhou.maxcompute.aliyun.com/api",
        ),
        AttrSpec("tunnel_endpoint", description="the Tunnel endpoint (default: found)"),
        AttrSpec("logview_host", description="the Logview address (default: found)"),
        AttrSpec("region_name", description="sign requests for this region (v4)"),
        AttrSpec("quota", description="the computing quota jobs run in"),
        AttrSpec("priority", "int", description="0 (first) to 9; MaxCompute's default 9"),
        AttrSpec("hints", "any", description="MaxCompute settings for every job"),
        AttrSpec(
            "metrics_interval",
            "number",
            description="also query metrics tables while a task runs, at most this often "
            "(seconds); by default only once it has ended (each query is a job)",
        ),
        AttrSpec(
            "price_per_hour",
            "number",
            description="what an hour of a task costs (a quota's share), for max_cost and the "
            "plan's estimate; unknown without it (SQL is billed by the data it reads)",
        ),
        AttrSpec("currency", default="¥"),
    )
    trial_schema = (
        AttrSpec("priority", "int", description="0 (first) to 9"),
        AttrSpec("hints", "any", description="MaxCompute settings for this trial's jobs"),
    )
    replace_on_change = ()

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        super().__init__(config, state_dir)
        self.client = Client(self.config)
        self.started = time.time()
        self._by_key: dict[str, str] = {}  # key -> instance id
        self._keys: dict[str, str] = {}  # instance id -> key (or "" for another's job)
        self._final: dict[str, TaskStatus] = {}
        self._deadline: dict[str, float | None] = {}  # instance id -> clock time
        self._running_since: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self._quiet: set[str] = set()  # instances whose body is sensitive
        self._logs: dict[str, list[str]] = {}
        self._polled: set[str] = set()
        interval = self.config.get("metrics_interval")
        self.tables = Tables(
            self.client, self._query_settings, None if interval is None else float(interval)
        )

    @property
    def calls(self) -> int:
        return self.client.calls

    @classmethod
    def validate_config(cls, request: ValidateConfigRequest) -> ValidateResponse:
        return checks.check_config(request)

    @classmethod
    def validate_task(cls, request: ValidateTaskRequest) -> ValidateResponse:
        return checks.check_task(request)

    @classmethod
    def hourly_price(
        cls, config: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> float | None:
        """`price_per_hour` of the provider block; None without it: pay-as-you-go SQL is
        billed by the data it reads, which no running time tells."""
        price = config.get("price_per_hour")
        return None if price is None else float(price)

    # -- submitting -----------------------------------------------------------------------

    def submit(self, request: TaskRequest) -> TaskHandle:
        known = self._by_key.get(request.key)
        if known is not None:
            return TaskHandle(request.key, known)
        # A key an earlier process recorded may have reached MaxCompute already; without
        # the time it was recorded, the last day is searched.
        recorded = request.recorded_at
        since = recorded if recorded is not None else time.time() - LOOKBACK
        look_first = recorded is None or recorded < self.started
        tries = 0

        def once() -> str:
            nonlocal tries
            tries += 1
            if look_first or tries > 1:
                found = self._find(request.key, since)
                if found is not None:
                    return found
            return self._create(request)

        instance_id = retry_call(
            once,
            lambda exc: isinstance(exc, ProviderError) and not exc.permanent,
            attempts=ATTEMPTS,
            max_wait=5.0,
        )
        self._by_key[request.key] = instance_id
        self._keys[instance_id] = request.key
        if request.timeout:
            self._deadline[instance_id] = time.time() + request.timeout
        if request.sensitive & {"pai", "sql"}:
            self._quiet.add(instance_id)
        return TaskHandle(request.key, instance_id)

    def _create(self, request: TaskRequest) -> str:
        guid = str(uuid.uuid5(_GUIDS, request.key))
        settings = self._settings(request.settings)
        settings[KEY_SETTING] = request.key
        settings["EXT_NODE_NAME"] = (
            f"{request.experiment}/trial-{request.trial_number}/{request.task_name}"[:128]
        )
        if request.timeout:
            settings[TIMEOUT_SETTING] = f"{request.timeout:g}"
        priority = request.settings.get("priority", self.config.get("priority"))
        pai = request.bodies.get("pai")
        if isinstance(pai, str):
            try:
                command = parse(pai)
            except XFlowSyntaxError as exc:  # validate checks it: a bug if it gets here
                raise ProviderError(
                    f"maxcompute: not a PAI command: {exc}", permanent=True
                ) from None
            return self.client.create_xflow(command, guid, settings, priority)
        sql = request.bodies.get("sql")
        if isinstance(sql, list):
            settings["odps.sql.submit.mode"] = "script"
            sql = ";\n".join(s.strip().rstrip(";") for s in sql)
        if not sql:
            raise ProviderError("maxcompute: the task has no pai or sql body", permanent=True)
        return self.client.create_sql(sql, guid, settings, priority, "AnonymousSQLTask")

    def _settings(self, trial: Mapping[str, Any]) -> dict[str, str]:
        settings = {"EXT_PLATFORM_ID": "tunectl"}
        if self.config.get("quota"):
            settings["odps.task.wlm.quota"] = str(self.config["quota"])
        for hints in (self.config.get("hints"), trial.get("hints")):
            settings.update({str(k): _text(v) for k, v in (hints or {}).items()})
        return settings

    def _query_settings(self) -> dict[str, str]:
        return self._settings({})

    def _find(self, key: str, since: float) -> str | None:
        """The instance created for `key`: the owner's instances from `since` on, each
        job's source read once (its key in the settings)."""
        for listed in self.client.since(since - SKEW):
            if listed.id not in self._keys:
                guid, settings = self.client.source(listed.id)
                self._keys[listed.id] = settings.get(KEY_SETTING, "")
                if settings.get(TIMEOUT_SETTING):
                    limit = float(settings[TIMEOUT_SETTING])
                    self._deadline[listed.id] = (listed.start_time or time.time()) + limit
            if self._keys[listed.id] == key:
                self._by_key[key] = listed.id
                return listed.id
        return None

    # -- following --------------------------------------------------------------------------

    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        out = {h.id: self._final[h.id] for h in handles if h.id in self._final}
        open_ = [h for h in handles if h.id not in out]
        if not open_:
            return out
        running = {listed.id: listed for listed in self.client.running()}
        self._polled.update(h.id for h in open_)
        for handle in open_:
            listed = running.get(handle.id)
            if listed is not None:
                # Listed as running: its task waits for resources or runs (the list does
                # not say which, and asking costs a call per instance).
                started = self._running_since.setdefault(
                    handle.id, listed.start_time or time.time()
                )
                status = TaskStatus(TaskState.RUNNING, started_at=started)
            else:
                status = self._status(handle.id)
            out[handle.id] = self._enforce_timeout(handle.id, status)
        return out

    def _status(self, instance_id: str) -> TaskStatus:
        try:
            state = self.client.task_state(instance_id)
        except ProviderError as exc:
            if exc.__cause__ is not None and not_found(exc.__cause__):
                status = TaskStatus(TaskState.LOST, message="the MaxCompute instance is gone")
                self._final[instance_id] = status
                return status
            raise
        if state.instance != "Terminated":
            if state.task in ("", "Waiting"):
                return TaskStatus(TaskState.PENDING)
            started = self._running_since.setdefault(instance_id, state.started or time.time())
            return TaskStatus(TaskState.RUNNING, started_at=started)
        status = self._ended(instance_id, state)
        self._final[instance_id] = status
        return status

    def _ended(self, instance_id: str, state: McTaskState) -> TaskStatus:
        started, ended = state.started, state.ended
        if state.task == "Success":
            return TaskStatus(TaskState.SUCCEEDED, 0, "", started, ended)
        if state.task == "Cancelled" or instance_id in self._cancelled:
            return TaskStatus(TaskState.CANCELLED, None, "the instance was stopped", started, ended)
        result = self.client.result(instance_id)
        self._logs[instance_id] = result.splitlines()
        first = next((line.strip() for line in result.splitlines() if line.strip()), "")
        if instance_id in self._quiet:
            first = first.split(":", 1)[0]  # the error code only: the text may quote the body
        message = first[:300] or f"task {state.task}"
        return TaskStatus(TaskState.FAILED, 1, message, started, ended)

    def _enforce_timeout(self, instance_id: str, status: TaskStatus) -> TaskStatus:
        deadline = self._deadline.get(instance_id)
        if deadline is None or status.state.terminal or time.time() <= deadline:
            return status
        self.cancel(TaskHandle("", instance_id))
        timed_out = TaskStatus(TaskState.FAILED, exit_code=None, message="timed out")
        self._final[instance_id] = timed_out
        return timed_out

    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        # An instance's result is there once it has ended. The engine polls every task
        # before reading: only a task this process has never polled is asked for here.
        if handle.id not in self._final and handle.id not in self._polled:
            self.poll([handle])
        final = self._final.get(handle.id)
        if final is None or final.state is TaskState.LOST:
            return LogChunk([], cursor)
        if handle.id not in self._logs:
            try:
                self._logs[handle.id] = self.client.result(handle.id).splitlines()
            except ProviderError:
                self._logs[handle.id] = []
        lines = self._logs[handle.id][cursor:]
        return LogChunk(lines, cursor + len(lines))

    def read_metrics(self, handle: TaskHandle, ref: MetricsRef, cursor: int) -> LogChunk:
        if ref.source is not MetricSource.TABLE:
            return super().read_metrics(handle, ref, cursor)
        ended = handle.id in self._final
        return self.tables.read(handle.id, ref.location, cursor, ended)

    def log_header(self, handle: TaskHandle) -> list[str]:
        head = f"MaxCompute instance {handle.id} in project {self.client.project}"
        try:
            return [head, f"Logview: {self.client.logview(handle.id)}"]
        except ProviderError as exc:
            return [head, f"Logview: not available ({exc})"]

    # -- stopping ---------------------------------------------------------------------------

    def cancel(self, handle: TaskHandle) -> None:
        instance_id = handle.id
        if handle.key and instance_id == handle.key:  # never learned its instance
            found = self._by_key.get(handle.key) or self._find(handle.key, time.time() - LOOKBACK)
            if found is None:
                return
            instance_id = found
        if instance_id in self._final:
            return
        self._cancelled.add(instance_id)
        try:
            self.client.stop(instance_id)
        except ProviderError as exc:
            if exc.__cause__ is not None and not_found(exc.__cause__):
                return
            # Stopping an ended instance may be refused: fine when it has ended.
            if self.client.task_state(instance_id).instance != "Terminated":
                raise

    def cleanup(self, handle: TaskHandle) -> None:
        for table in (self._final, self._deadline, self._running_since, self._logs):
            table.pop(handle.id, None)
        self._polled.discard(handle.id)
        self.tables.forget(handle.id)

    def close(self) -> None:
        self.client.close()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
