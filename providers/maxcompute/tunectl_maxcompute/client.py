"""MaxCompute through pyodps: the calls the provider makes, each retried by tunectl's one
policy and its failures turned into `ProviderError`s that say what to do.

Requests are built here from parts, never from text: a SQL job is pyodps' `SQLTask` with
its settings, a PAI command an `<XflowInstance>` written with ElementTree (pyodps has no
way to give an XFlow instance a Guid). Every job carries the task's key twice: as its
`<Guid>` (MaxCompute's idempotency id) and in its settings as `EXT_TASK_ID`, the key
MaxCompute's job-identifier convention defines for a scheduler's task, so a restarted
apply can find it (`find`) and a console user can see which trial it is.

Faults (docs: "Common errors", pyodps' RestClient): throttling (429, `RequestQuotaExceeded`
and its kinds), 5xx, a skewed clock, a 409 on create, dropped connections and timeouts are
transient; a rejected signature or key, a missing permission, an invalid request or a
missing project are permanent. pyodps never retries a create once sent: neither does
this module (the provider looks the key up first).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tunectl.providers.base import ProviderError
from tunectl.providers.xflow import XFlowCommand
from tunectl.retry import retry_call

T = TypeVar("T")

ATTEMPTS = 6
PAGE = 1000

KEY_SETTING = "EXT_TASK_ID"
TIMEOUT_SETTING = "TUNECTL_TIMEOUT"

_TRANSIENT_CODES = frozenset(
    {
        "RequestQuotaExceeded",
        "QPSExceeded",
        "SlotExceeded",
        "FlowExceeded",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalServerError",
        "Conflict",
    }
)
_PERMANENT_STATUS = {400: "rejected", 401: "unauthorized", 403: "forbidden"}
NO_CREDENTIALS = (
    "maxcompute: no Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for an STS token), "
    "or configure a profile in ~/.alibabacloud/credentials.ini; credentials are never read "
    "from the configuration"
)


def transient(exc: BaseException) -> bool:
    import requests
    from odps import errors

    if isinstance(exc, requests.ConnectionError | requests.Timeout | errors.ConnectTimeout):
        return True
    if isinstance(exc, errors.BaseODPSError):
        status = getattr(exc, "status_code", None) or 0
        return status == 429 or status == 409 or status >= 500 or _code(exc) in _TRANSIENT_CODES
    return isinstance(exc, ConnectionError | TimeoutError)


def not_found(exc: BaseException) -> bool:
    from odps import errors

    return isinstance(exc, errors.NoSuchObject) or getattr(exc, "status_code", None) == 404


def _code(exc: BaseException) -> str:
    code = str(getattr(exc, "code", "") or "")
    return code if code and not code.isdigit() else type(exc).__name__


def _message(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return " ".join(text.split())[:500]


@dataclass(frozen=True)
class Listed:
    """An instance as the list call gives it."""

    id: str
    status: str  # Running, Suspended, Terminated
    start_time: float | None


@dataclass(frozen=True)
class TaskState:
    """An instance's status and its (only) task's."""

    instance: str  # Running, Suspended, Terminated
    task: str  # Waiting, Running, Success, Failed, Suspended, Cancelled ("" when none yet)
    task_name: str
    started: float | None
    ended: float | None


class Client:
    """One project's calls. Not thread-safe."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.project = str(config.get("project") or "")
        self._odps: Any = None
        self.calls = 0  # API calls made (for benchmarks and tests)

    # -- connection -----------------------------------------------------------------------

    def odps(self) -> Any:
        if self._odps is None:
            from odps import ODPS

            kwargs: dict[str, Any] = {"project": self.project}
            kwargs["endpoint"] = str(self.config.get("endpoint"))
            for name in ("logview_host", "tunnel_endpoint", "region_name"):
                if self.config.get(name):
                    kwargs[name] = str(self.config[name])
            if self.config.get("quota"):
                kwargs["quota_name"] = str(self.config["quota"])
            self._odps = ODPS(account=_account(), **kwargs)
        return self._odps

    def close(self) -> None:
        if self._odps is not None:
            session = getattr(self._odps.rest, "session", None)
            if session is not None:
                session.close()
            self._odps = None

    def call(
        self, action: str, fn: Callable[[Any], T], *, retry: bool = True, counted: bool = True
    ) -> T:
        """`fn(odps)` with tunectl's retry policy; ProviderError when it fails. A call that
        makes several requests counts them itself (`counted=False`)."""
        odps = self.odps()

        def once() -> T:
            self.calls += counted
            return fn(odps)

        try:
            if not retry:
                return once()
            return retry_call(once, transient, attempts=ATTEMPTS, max_wait=5.0)
        except ProviderError:
            raise
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            permanent = not transient(exc) and not not_found(exc)
            hint = ""
            if status in (401, 403) or _code(exc) in ("SignatureNotMatch", "NoPermission"):
                hint = (
                    " (check the credentials in ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET or the "
                    f"profile, and that they may use project {self.project})"
                )
            raise ProviderError(
                f"maxcompute: {action} failed: {_code(exc)}: {_message(exc)}{hint}",
                permanent=permanent or status in _PERMANENT_STATUS,
            ) from exc

    def _url(self, *parts: str) -> str:
        return "/".join((self.odps().endpoint.rstrip("/"), "projects", self.project, *parts))

    def _get(
        self, odps: Any, url: str, params: dict[str, Any] | None = None, action: str = ""
    ) -> Any:
        return odps.rest.get(
            url, params={"curr_project": self.project, **(params or {})}, action=action or None
        )

    # -- creating -------------------------------------------------------------------------

    def create_sql(
        self,
        query: str,
        guid: str,
        settings: Mapping[str, str],
        priority: int | None,
        name: str,
        retry: bool = False,
    ) -> str:
        """Start a SQL job; its instance id. Not retried unless asked (a job that must run
        once is looked up by its key before it is created again)."""
        from odps.models import SQLTask

        def create(odps: Any) -> str:
            task = SQLTask(name=name, query=query)
            task.update_sql_settings(dict(settings))
            instance = odps.get_project().instances.create(
                task=task, priority=priority, unique_identifier_id=guid
            )
            return str(instance.id)

        return self.call("create instance", create, retry=retry)

    def create_xflow(
        self,
        command: XFlowCommand,
        guid: str,
        settings: Mapping[str, str],
        priority: int | None,
    ) -> str:
        """Start a PAI command; its instance id. Not retried (the caller looks the key up)."""
        root = ET.Element("Instance")
        xflow = ET.SubElement(root, "XflowInstance")
        ET.SubElement(xflow, "Project").text = command.project or self.project
        ET.SubElement(xflow, "Xflow").text = command.name
        parameters = ET.SubElement(xflow, "Parameters")
        for key, value in command.parameters.items():
            parameter = ET.SubElement(parameters, "Parameter")
            ET.SubElement(parameter, "Key").text = key
            ET.SubElement(parameter, "Value").text = _qualified(self.project, key, value)
        ET.SubElement(xflow, "Guid").text = guid
        if priority is not None:
            ET.SubElement(xflow, "Priority").text = str(priority)
        config = ET.SubElement(xflow, "Config")
        prop = ET.SubElement(config, "Property")
        ET.SubElement(prop, "Name").text = "settings"
        ET.SubElement(prop, "Value").text = json.dumps(dict(settings))
        # A carriage return is written as a reference: XML parsers turn a raw one into a
        # line feed, and a value must arrive byte for byte.
        body = ET.tostring(root, encoding="unicode").replace("\r", "&#13;")

        def create(odps: Any) -> str:
            return str(odps.get_project().instances.create(xml=body).id)

        return self.call("create instance", create, retry=False)

    # -- reading --------------------------------------------------------------------------

    def running(self) -> list[Listed]:
        """The owner's running instances, in as many pages as there are."""
        return self.listing({"status": "Running", "onlyowner": "yes"})

    def listing(self, params: dict[str, Any]) -> list[Listed]:
        def fetch(odps: Any) -> list[Listed]:
            out: list[Listed] = []
            marker = ""
            while True:
                page = {**params, "maxitems": PAGE}
                if marker:
                    page["marker"] = marker
                self.calls += 1
                root = ET.fromstring(self._get(odps, self._url("instances"), page).content)
                for item in root.findall("Instance"):
                    out.append(
                        Listed(
                            item.findtext("Name") or "",
                            item.findtext("Status") or "",
                            _time(item.findtext("StartTime")),
                        )
                    )
                marker = root.findtext("Marker") or ""
                if not marker:
                    return out

        return self.call("list instances", fetch, counted=False)

    def since(self, start: float) -> list[Listed]:
        """The owner's instances created from `start` (clock time) on."""
        return self.listing({"daterange": f"{int(start)}:", "onlyowner": "yes"})

    def task_state(self, instance_id: str) -> TaskState:
        def fetch(odps: Any) -> TaskState:
            url = self._url("instances", instance_id)
            root = ET.fromstring(self._get(odps, url, action="taskstatus").content)
            task = root.find("Tasks/Task")
            return TaskState(
                root.findtext("Status") or "",
                (task.findtext("Status") or "").capitalize() if task is not None else "",
                (task.findtext("Name") or "") if task is not None else "",
                _time(task.findtext("StartTime")) if task is not None else None,
                _time(task.findtext("EndTime")) if task is not None else None,
            )

        return self.call("get instance status", fetch)

    def result(self, instance_id: str) -> str:
        """The text of the instance's task result (CSV rows, or an error message)."""

        def fetch(odps: Any) -> str:
            url = self._url("instances", instance_id)
            root = ET.fromstring(self._get(odps, url, action="result").content)
            return "".join(r.text or "" for r in root.iter("Result"))

        return self.call("get instance result", fetch)

    def source(self, instance_id: str) -> tuple[str, dict[str, str]]:
        """The job's Guid and settings, as it was posted."""

        def fetch(odps: Any) -> tuple[str, dict[str, str]]:
            url = self._url("instances", instance_id)
            root = ET.fromstring(self._get(odps, url, action="source").content)
            guid = root.findtext(".//Guid") or ""
            settings: dict[str, str] = {}
            for prop in root.iter("Property"):
                if prop.findtext("Name") == "settings":
                    try:
                        settings.update(json.loads(prop.findtext("Value") or "{}"))
                    except ValueError:
                        pass
            return guid, {str(k): str(v) for k, v in settings.items()}

        return self.call("get instance source", fetch)

    def stop(self, instance_id: str) -> None:
        def put(odps: Any) -> None:
            odps.get_instance(instance_id).stop()

        self.call("stop instance", put)

    def logview(self, instance_id: str) -> str:
        return self.call(
            "get Logview address", lambda odps: odps.get_instance(instance_id).get_logview_address()
        )

    def query(self, sql: str, settings: Mapping[str, str], priority: int | None) -> str:
        """Start a query (for a metrics table); its instance id. Retried: running a query
        twice only reads twice."""
        return self.create_sql(sql, "", settings, priority, "tunectl_metrics", retry=True)


def rows(result: str) -> Iterator[dict[str, str]]:
    """The rows of a CSV task result, by column name."""
    reader = csv.reader(io.StringIO(result))
    header = next(reader, None)
    if not header:
        return
    for row in reader:
        yield dict(zip(header, row, strict=False))


def _qualified(project: str, key: str, value: str) -> str:
    """A parameter as pyodps' run_xflow sends it: models under the project's offline
    models, tables with the project's name, unless already qualified."""
    if key == "modelName" and "/" not in value:
        return f"{project}/offlinemodels/{value}"
    if key in ("inputTableName", "outputTableName") and "." not in value:
        return f"{project}.{value}"
    return value


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def _account() -> Any:
    """The caller's credentials: the environment, else Alibaba Cloud's default chain
    (profile, ECS RAM role, ...). Raises a permanent ProviderError when there are none."""
    from odps.accounts import AliyunAccount, StsAccount

    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    token = os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN")
    if key_id and secret:
        return StsAccount(key_id, secret, token) if token else AliyunAccount(key_id, secret)
    try:
        from alibabacloud_credentials.client import Client as Credentials
        from odps.accounts import CredentialProviderAccount

        chain = Credentials()
        # The chain logs each provider it tries, with tracebacks, through a handler its
        # modules add to the logger "credentials" (setting it to INFO as they are
        # imported): keep that off the terminal; the error below says what to do.
        logging.getLogger("credentials").setLevel(logging.CRITICAL + 1)
        chain.get_credential()
    except Exception:
        raise ProviderError(NO_CREDENTIALS, permanent=True) from None
    return CredentialProviderAccount(chain)
