"""The `dlc` provider: each trial task is a PAI-DLC job, driven through Alibaba's official
SDK (`alibabacloud-pai-dlc20201203`).

- Submission: `CreateJob` with the task's key as the job's `DisplayName` and in its tags
  (`Settings.Tags`), after a `ListJobs` by that key — so a restarted apply, or a retry after
  a lost response, finds the job instead of creating a second one.
- Status: `ListJobs` filtered by job ids, 100 per page: the calls per pass grow with pages,
  not with trials. `GetJob` only for a job missing from the list (vanished?) and once per
  job for its pod id.
- Logs: `GetPodLogs` of the rank-0 pod (pinned by `PodUid`), read in bounded pages from
  where the last read stopped (`tunectl_dlc.logs`), at most every `log_interval` seconds per
  running job, then to the end once it ended. A job that ended on its own is reported ended
  `log_delay` seconds later, so lines that reach the log service late are read too.
- Cancel: `StopJob` (a job already ended or gone is fine).
- Faults: throttling, 5xx, timeouts and dropped connections are retried with tunectl's
  shared policy (`tunectl.retry`: exponential backoff with jitter, at most `ATTEMPTS`
  tries); the SDK's own retry is off so there is one policy. Missing credentials, a failing
  proxy, a refused key or permission and a refused request are permanent: apply stops at
  once with the fix in the message (`tunectl_dlc.errors`).
- Credentials: Alibaba Cloud's default chain (`ALIBABA_CLOUD_ACCESS_KEY_ID` /
  `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, the `~/.alibabacloud/credentials.ini` profile, an ECS RAM
  role, ...), resolved on the first API call; never read from HCL, never stored or logged.
"""

from __future__ import annotations

import calendar
import logging
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tunectl.durations import parse_duration
from tunectl.providers.base import (
    AttributeDiagnostic,
    AttrSpec,
    Capabilities,
    LogChunk,
    MetricSource,
    Provider,
    ProviderError,
    TaskHandle,
    TaskRequest,
    TaskState,
    TaskStatus,
    ValidateConfigRequest,
    ValidateResponse,
    ValidateTaskRequest,
    attribute_error,
)
from tunectl.retry import retry_call
from tunectl_dlc.errors import DlcError, transient, translate
from tunectl_dlc.extras import check_extras, image_config, request_extras
from tunectl_dlc.jobs import (
    JOB_TYPES,
    PRICES,
    ROLES,
    check_role,
    check_roles,
    job_spec,
    job_status,
    max_running_minutes,
)
from tunectl_dlc.logs import LogReader, Pod, PodPins, rank0
from tunectl_dlc.since import Since

T = TypeVar("T")

# Region ids: cn-hangzhou, ap-southeast-1, cn-shanghai-finance-1, ...
_REGION = re.compile(r"[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*")

ATTEMPTS = 6
PAGE = 100


class DlcProvider(Provider):
    name = "dlc"
    version = "0.1.0"
    price_setting = "prices"
    capabilities = Capabilities(
        events=False,
        price=True,
        local_model_dir=False,
        metric_sources=frozenset({MetricSource.STDOUT}),
    )
    config_schema = (
        AttrSpec("region", required=True, description="e.g. cn-hangzhou"),
        AttrSpec(
            "workspace_id", required=True, description="the PAI workspace jobs are created in"
        ),
        AttrSpec("resource_id", description="a dedicated resource quota (else public)"),
        AttrSpec("endpoint", description="API endpoint; default pai-dlc.REGION.aliyuncs.com"),
        AttrSpec("protocol", default="https", choices=("https", "http")),
        AttrSpec("prices", "any", description="map of ecs_spec -> price per hour"),
        AttrSpec("currency", default="¥"),
        AttrSpec("log_interval", "number", default=10, description="seconds between log reads"),
        AttrSpec(
            "log_delay",
            "number",
            default=5,
            description="seconds a log line may reach GetPodLogs late",
        ),
    )
    trial_schema = (
        AttrSpec("job_type", default="PyTorchJob", choices=JOB_TYPES),
        AttrSpec("image", required=True, description="the container image"),
        AttrSpec(
            "worker",
            "any",
            description="{ count, ecs_spec | cpu, gpu, memory, shared_memory }",
        ),
        *(AttrSpec(role, "any") for role in ROLES if role != "worker"),
        AttrSpec("data_sources", "any", description="[{ uri, mount_path } | { id }]"),
        AttrSpec("code_source", "any", description="{ id, branch, commit, mount_path }"),
        AttrSpec("priority", "int"),
        AttrSpec("user_vpc", "any", description="{ vpc_id, security_group_id, switch_id }"),
        AttrSpec("thirdparty_libs", "any", description="pip requirements installed first"),
        AttrSpec("image_config", "any", description="{ registry, username_env, password_env }"),
        AttrSpec("success_policy", choices=("ChiefWorker", "AllWorkers")),
        AttrSpec("max_running_time", description='e.g. "2h"'),
        AttrSpec("resource_id"),
    )
    replace_on_change = ("image", "job_type")

    def __init__(self, config: Mapping[str, Any], state_dir: Path) -> None:
        super().__init__(config, state_dir)
        self._client: Any = None
        self._pins = PodPins(state_dir)
        self._since = Since(state_dir)
        delay = self.config.get("log_delay")
        self._delay = 5.0 if delay is None else float(delay)
        self._logs = LogReader(self._fetch_log, self._delay)
        self._ended_at: dict[str, float] = {}  # job -> when it may be reported ended
        self._last_read: dict[str, float] = {}
        self._states: dict[str, TaskState] = {}
        self._polled: dict[str, float] = {}
        self._by_experiment: dict[str, dict[str, str]] = {}
        self.calls = 0  # API calls made (for benchmarks)

    # -- validation (no network) ------------------------------------------------------

    @classmethod
    def validate_config(cls, request: ValidateConfigRequest) -> ValidateResponse:
        config = request.config
        out: list[AttributeDiagnostic] = []
        region = str(config.get("region") or "")
        if not _REGION.fullmatch(region):
            out.append(
                attribute_error(
                    ("region",),
                    "Invalid region",
                    f'"region" must be an Alibaba Cloud region id such as cn-hangzhou, not '
                    f"{region!r}.",
                )
            )
        endpoint = config.get("endpoint")
        if endpoint is not None and (not str(endpoint).strip() or " " in str(endpoint)):
            detail = f'"endpoint" must be a host name, not {endpoint!r}.'
            out.append(attribute_error(("endpoint",), "Invalid endpoint", detail))
        for name in ("log_interval", "log_delay"):
            seconds = config.get(name)
            if seconds is not None and (
                isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0
            ):
                out.append(
                    attribute_error(
                        (name,),
                        f"Invalid {name}",
                        f'"{name}" must be a number of seconds, 0 or more, not {seconds!r}.',
                    )
                )
        prices = config.get("prices")
        if prices is not None and (
            not isinstance(prices, Mapping)
            or any(
                isinstance(v, bool) or not isinstance(v, int | float) or v < 0
                for v in prices.values()
            )
        ):
            out.append(
                attribute_error(
                    ("prices",),
                    "Invalid prices",
                    '"prices" must be a map of ecs_spec = price per hour (a number, 0 or more).',
                )
            )
        return ValidateResponse(tuple(out))

    @classmethod
    def validate_task(cls, request: ValidateTaskRequest) -> ValidateResponse:
        settings = request.settings
        problems: list[tuple[str, str]] = []  # (attribute, sentence)
        if not str(settings.get("image") or "").strip():
            problems.append(("image", 'a DLC trial needs image = "registry/repo:tag"'))
        roles = [r for r in ROLES if settings.get(r) is not None]
        if not roles:
            problems.append(
                ("worker", 'a DLC trial needs worker = { count = N, ecs_spec = "..." }')
            )
        job_type = str(settings.get("job_type") or "PyTorchJob")
        problems += check_roles(job_type, {r: settings[r] for r in roles})
        problems += check_extras(settings, job_type)
        resource_id = settings.get("resource_id") or request.config.get("resource_id")
        for role in roles:
            problems += [(role, p) for p in check_role(role, settings[role], resource_id)]
        priority = settings.get("priority")
        if priority is not None and (
            isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 9
        ):
            problems.append(("priority", f"priority must be between 1 and 9, got {priority}"))
        if settings.get("max_running_time") is not None:
            try:
                parse_duration(str(settings["max_running_time"]))
            except ValueError as exc:
                problems.append(("max_running_time", f"max_running_time: {exc}"))
        for i, source in enumerate(settings.get("data_sources") or []):
            if not isinstance(source, Mapping) or not (source.get("uri") or source.get("id")):
                problems.append(
                    (
                        "data_sources",
                        f'data_sources[{i}] must be {{ uri = "oss://...", '
                        'mount_path = "/mnt/data" } or { id = "d-..." }',
                    )
                )
        code = settings.get("code_source")
        if code is not None and (not isinstance(code, Mapping) or not code.get("id")):
            problems.append(
                ("code_source", 'code_source must be { id = "code-...", branch = "main" }')
            )
        return ValidateResponse(
            tuple(attribute_error((a,), "Invalid trial settings", p) for a, p in problems)
        )

    # -- the SDK ------------------------------------------------------------------------

    def _sdk(self) -> Any:
        if self._client is None:
            from alibabacloud_credentials.client import Client as Credentials
            from alibabacloud_pai_dlc20201203.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            region = str(self.config.get("region") or "")
            endpoint = self.config.get("endpoint") or f"pai-dlc.{region}.aliyuncs.com"
            # The chain logs each provider it tried, with tracebacks, to the root logger's
            # last resort; the error this provider raises says what to do instead.
            # (Its modules add their own stderr handler when imported: imported by now.)
            logging.getLogger("credentials").disabled = True
            try:
                credential = Credentials()
            except Exception as exc:
                raise translate("authentication", exc) from None
            self._client = Client(
                Config(
                    credential=credential,
                    endpoint=str(endpoint),
                    protocol=str(self.config.get("protocol") or "https"),
                    region_id=region,
                    connect_timeout=5000,
                    read_timeout=30000,
                )
            )
        return self._client

    def _call(self, action: str, fn: Callable[[Any, Any], T]) -> T:
        """`fn(client, models)` with tunectl's retry policy; ProviderError when it fails."""
        from alibabacloud_pai_dlc20201203 import models

        client = self._sdk()

        def once() -> T:
            self.calls += 1
            return fn(client, models)

        try:
            return retry_call(once, transient, attempts=ATTEMPTS, max_wait=5.0)
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(action, exc, self.config.get("workspace_id")) from None

    # -- running ------------------------------------------------------------------------

    def submit(self, request: TaskRequest) -> TaskHandle:
        # The experiment's jobs are listed once per process (by tag, 100 a page), so a job
        # made by an earlier, crashed apply is found without a call per trial. After a
        # failed CreateJob, look again by key before retrying: the job may exist although
        # the answer was lost.
        known = self._experiment_jobs(request.experiment)
        if request.key in known:
            return TaskHandle(request.key, known[request.key])
        self._since.record(request.experiment)  # before any job of it exists
        for attempt in range(ATTEMPTS):
            found = self._find_one(request.key, request.experiment) if attempt else None
            if found is not None:
                known[request.key] = found
                return TaskHandle(request.key, found)
            try:
                job_id = self._call(
                    "CreateJob",
                    lambda c, m: c.create_job(self._create_request(m, request)).body.job_id,
                )
            except ProviderError as exc:
                if exc.permanent or self._find_one(request.key, request.experiment) is None:
                    raise
                continue
            known[request.key] = str(job_id)
            return TaskHandle(request.key, str(job_id))
        raise ProviderError(f"dlc: could not submit {request.key}")

    def _create_request(self, m: Any, request: TaskRequest) -> Any:
        s = request.settings
        command = request.command
        if not isinstance(command, str):
            # DLC runs a shell command line; `exec` keeps the exec form's meaning (a
            # program, never a shell builtin or shell syntax). bash's exec (and a shell
            # given the line) would read a first word such as `-c` as an option and run
            # the next word instead: quoted and without exec, it is just a program name.
            argv = [shlex.quote(str(arg)) for arg in command]
            if argv and argv[0].startswith("-"):
                argv[0] = f"'{argv[0]}'"  # shlex.quote left it bare: safe characters only
                command = " ".join(argv)
            else:
                command = "exec " + " ".join(argv)
        if request.workdir:
            command = f"cd {shlex.quote(request.workdir)} && {command}"
        envs = {
            **{str(k): str(v) for k, v in request.env.items()},
            "TUNECTL_TRIAL_KEY": request.key,
        }
        if request.model_dir:
            envs["TUNECTL_MODEL_DIR"] = request.model_dir
        registry = image_config(m, s)
        specs = [
            job_spec(m, ROLES[role], s[role], str(s.get("image")), registry)
            for role in ROLES
            if s.get(role) is not None
        ]
        sources = [
            m.CreateJobRequestDataSources(
                data_source_id=src.get("id"), uri=src.get("uri"), mount_path=src.get("mount_path")
            )
            for src in (s.get("data_sources") or [])
        ]
        code = s.get("code_source")
        max_minutes = None
        if s.get("max_running_time"):
            max_minutes = max_running_minutes(parse_duration(str(s["max_running_time"])), False)
        elif request.timeout:
            max_minutes = max_running_minutes(request.timeout, True)
        tags = {
            **{k: str(v) for k, v in request.tags.items()},
            "tunectl-key": request.key,
            "tunectl-experiment": request.experiment,  # how a restarted apply finds them
        }
        if request.timeout:
            # DLC's own limit counts whole minutes; tunectl enforces the exact timeout
            # itself (and can, after a restart, because it is on the job).
            tags["tunectl-timeout"] = f"{request.timeout:g}"
        return m.CreateJobRequest(
            display_name=request.key,
            job_type=str(s.get("job_type") or "PyTorchJob"),
            job_specs=specs,
            user_command=command,
            envs=envs,
            data_sources=sources or None,
            code_source=m.CreateJobRequestCodeSource(
                code_source_id=code.get("id"),
                branch=code.get("branch"),
                commit=code.get("commit"),
                mount_path=code.get("mount_path"),
            )
            if code
            else None,
            workspace_id=self.config.get("workspace_id"),
            resource_id=s.get("resource_id") or self.config.get("resource_id"),
            priority=s.get("priority"),
            job_max_running_time_minutes=max_minutes,
            settings=m.JobSettings(tags=tags),
            **request_extras(m, s),
        )

    def _experiment_jobs(self, experiment: str) -> dict[str, str]:
        """Display name -> job id of every job tagged with `experiment` (cached)."""
        if experiment not in self._by_experiment:
            found: dict[str, str] = {}
            page = 1
            while True:

                def list_page(c: Any, m: Any, page: int = page) -> Any:
                    return c.list_jobs(
                        m.ListJobsRequest(
                            workspace_id=self.config.get("workspace_id"),
                            start_time=self._since.start(experiment),
                            tags={"tunectl-experiment": experiment},
                            page_size=PAGE,
                            page_number=page,
                        )
                    ).body

                body = self._call("ListJobs", list_page)
                for job in body.jobs or []:
                    found[str(job.display_name)] = str(job.job_id)
                if page * PAGE >= int(body.total_count or 0):
                    break
                page += 1
            self._by_experiment[experiment] = found
        return self._by_experiment[experiment]

    def _find_one(self, key: str, experiment: str) -> str | None:
        def lookup(c: Any, m: Any) -> str | None:
            body = c.list_jobs(
                m.ListJobsRequest(
                    display_name=key,
                    workspace_id=self.config.get("workspace_id"),
                    start_time=self._since.start(experiment),
                    tags={"tunectl-key": key},
                    page_size=10,
                )
            ).body
            for job in body.jobs or []:
                if job.display_name == key:
                    return str(job.job_id)
            return None

        return self._call("ListJobs", lookup)

    def poll(self, handles: Sequence[TaskHandle]) -> dict[str, TaskStatus]:
        out: dict[str, TaskStatus] = {}
        ids = [h.id for h in handles]
        for start in range(0, len(ids), PAGE):
            page = ids[start : start + PAGE]

            def list_page(c: Any, m: Any, page: list[str] = page) -> Any:
                request = m.ListJobsRequest(
                    job_ids=",".join(page),
                    workspace_id=self.config.get("workspace_id"),
                    start_time=self._since.start(),
                    page_size=PAGE,
                )
                return c.list_jobs(request).body

            body = self._call("ListJobs", list_page)
            for job in body.jobs or []:
                status = self._enforce_timeout(job, job_status(job))
                out[str(job.job_id)] = self._hold(str(job.job_id), job, status)
        for handle in handles:
            if handle.id not in out:  # not listed: ask for it, it may be gone
                out[handle.id] = self._get_status(handle.id)
        now = time.monotonic()
        for job_id, status in out.items():
            self._states[job_id] = status.state
            self._polled[job_id] = now
        return out

    def _enforce_timeout(self, job: Any, status: TaskStatus) -> TaskStatus:
        tags = (job.settings.tags if job.settings is not None else None) or {}
        limit = tags.get("tunectl-timeout")
        if status.state is not TaskState.RUNNING or not limit or not job.gmt_running_time:
            return status
        started = calendar.timegm(time.strptime(job.gmt_running_time, "%Y-%m-%dT%H:%M:%SZ"))
        if time.time() - started <= float(limit):
            return status
        self.cancel(TaskHandle("", str(job.job_id)))
        return TaskStatus(TaskState.FAILED, message=f"timed out after {float(limit):g}s")

    def _get_status(self, job_id: str) -> TaskStatus:
        job = self._get_job(job_id)
        if job is None:
            return TaskStatus(TaskState.LOST, message="the DLC job no longer exists")
        return job_status(job)

    def _get_job(self, job_id: str) -> Any:
        """GetJob's answer, or None when the service answers 404 about the job."""
        try:
            return self._call("GetJob", lambda c, m: c.get_job(job_id, m.GetJobRequest()).body)
        except DlcError as exc:
            if exc.not_found:
                return None
            raise

    def _hold(self, job_id: str, job: Any, status: TaskStatus) -> TaskStatus:
        """A job that ended on its own is reported running until `log_delay` seconds after
        its end, so its last lines have reached GetPodLogs before it is read to the end."""
        if status.state not in (TaskState.SUCCEEDED, TaskState.FAILED) or not self._delay:
            return status
        now = time.monotonic()
        if job_id not in self._ended_at:
            left = self._delay + 1  # GmtFinishTime has whole seconds
            finish = getattr(job, "gmt_finish_time", None)
            if finish:
                try:
                    ended = calendar.timegm(time.strptime(str(finish), "%Y-%m-%dT%H:%M:%SZ"))
                    left = min(left, max(0.0, ended + self._delay + 1 - time.time()))
                except ValueError:
                    pass
            self._ended_at[job_id] = now + left
        if now >= self._ended_at[job_id]:
            return status
        return TaskStatus(TaskState.RUNNING)

    def read_log(self, handle: TaskHandle, cursor: int) -> LogChunk:
        state = self._states.get(handle.id)
        if state is None or (
            state is TaskState.PENDING and time.monotonic() - self._polled[handle.id] > 5
        ):
            # Never polled by this process, or long ago: the engine polls every task right
            # before reading logs, so this costs nothing there.
            self.poll([handle])
            state = self._states.get(handle.id)
        if state is None or state is TaskState.PENDING or state is TaskState.LOST:
            return LogChunk([], cursor)
        now = time.monotonic()
        configured = self.config.get("log_interval")
        interval = 10.0 if configured is None else float(configured)
        last = self._last_read.get(handle.id)
        if state is TaskState.RUNNING and last is not None and now - last < interval:
            return LogChunk([], cursor)
        pod = self._pod(handle.id)
        if pod is None:
            return LogChunk([], cursor)
        lines, after = self._logs.read(handle.id, pod, cursor, ended=state.terminal)
        self._last_read[handle.id] = now
        return LogChunk(lines, after)

    def _fetch_log(
        self, job_id: str, pod: Pod, start: str | None, end: str | None, lines: int
    ) -> list[str]:

        def get(c: Any, m: Any) -> Any:
            # From the start, the window starts with the state's jobs: GetPodLogs, too,
            # serves only the last 7 days unless told otherwise.
            request = m.GetPodLogsRequest(
                max_lines=lines,
                start_time=start or self._since.start(),
                end_time=end,
                pod_uid=pod.uid,
            )
            return c.get_pod_logs(job_id, pod.id, request).body.logs

        return [str(line) for line in (self._call("GetPodLogs", get) or [])]

    def _pod(self, job_id: str) -> Pod | None:
        pod = self._pins.get(job_id)
        if pod is None:
            job = self._call("GetJob", lambda c, m: c.get_job(job_id, m.GetJobRequest()).body)
            pod = rank0(list(job.pods or []))
            if pod is None:
                return None
            self._pins.put(job_id, pod)
        return pod

    def cancel(self, handle: TaskHandle) -> None:
        try:
            self._call("StopJob", lambda c, m: c.stop_job(handle.id))
        except DlcError as exc:
            # Refused: decide from the job itself, not from the wording of the refusal.
            if exc.status is None or not 400 <= exc.status < 500:
                raise
            job = self._get_job(handle.id)
            if job is None or job_status(job).state.terminal:
                return  # gone or ended already: nothing to stop
            raise

    @classmethod
    def hourly_price(
        cls, config: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> float | None:
        """The instances a task asks for at the price table (`PRICES`, extended by the
        provider's `prices`); None for an unknown instance type or none priced (a
        dedicated `resource_id` quota), rather than a wrong figure."""
        table = {
            **PRICES,
            **{str(k): float(v) for k, v in (config.get("prices") or {}).items()},
        }
        total = 0.0
        for role in ROLES:
            spec = settings.get(role)
            if not isinstance(spec, Mapping):
                continue
            price = table.get(str(spec.get("ecs_spec")))
            if price is None:
                return None  # an unknown instance type: no estimate rather than a wrong one
            total += int(spec.get("count", 1)) * price
        return total if total else None
