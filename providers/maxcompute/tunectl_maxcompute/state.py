"""The emulator's state: projects, their tables, instances and faults, without HTTP.

`Emulator` creates instances from the XML bodies pyodps posts, runs them in background
threads, answers their status, and checks request signatures; `tunectl_maxcompute.emulator`
puts HTTP in front of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from tunectl_maxcompute.algorithms import DURATIONS, REGISTRY, AlgoError, Models
from tunectl_maxcompute.sql import Database, SqlError

DEMO_TABLE = "pai_demo_train"
TEST_KEY_ID = "LTAI-test"
TEST_KEY_SECRET = "test-secret"


class ApiError(Exception):
    """An error answer: HTTP status and the `<Error>` body's Code and Message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Instance:
    id: str
    project: str
    owner: str
    source: bytes  # the Job XML as posted
    task_type: str  # "SQL" or "AlgoTask"
    task_name: str
    created: float
    job_name: str = ""
    guid: str = ""
    priority: int = 9
    settings: dict[str, str] = field(default_factory=dict)
    task_status: str = "Waiting"  # Running, Success, Failed, Cancelled
    result: str = ""
    result_format: str = "text"
    started: float | None = None
    ended: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def status(self) -> str:
        return "Running" if self.ended is None else "Terminated"


@dataclass
class Faults:
    throttle: float = 0.0  # share of API calls answered 429 RequestQuotaExceeded
    unavailable: float = 0.0  # share answered 503 ServiceUnavailable
    error: float = 0.0  # share answered 500 InternalServerError
    slow: float = 0.0  # seconds added to every answer
    seed: int = 0


class Emulator:
    """Projects, their tables and instances; `Server` puts HTTP in front of it."""

    def __init__(
        self,
        sql_seconds: float = 0.05,
        algo_seconds: float = 0.5,
        access_key_id: str = TEST_KEY_ID,
        access_key_secret: str = TEST_KEY_SECRET,
    ) -> None:
        self.sql_seconds = sql_seconds
        self.algo_seconds = algo_seconds
        self.keys = {access_key_id: access_key_secret}
        self.instances: dict[str, Instance] = {}
        self.databases: dict[str, Database] = {}
        self.models: dict[str, Models] = {}
        self.lock = threading.RLock()
        self.faults = Faults()
        self.random = random.Random(0)
        self.calls: Counter[str] = Counter()
        # A second create with a job's Guid returns the first instance, as the service's
        # unique-id mechanism does; off, it makes a duplicate (how long the service keeps
        # a Guid is not documented: clients must not count on it).
        self.guid_dedup = True
        self.lose_answers = 0  # creates whose answer is lost (the instance exists)

    def database(self, project: str) -> Database:
        with self.lock:
            if project not in self.databases:
                self.databases[project] = Database(project)
                self.models[project] = Models()
            return self.databases[project]

    def demo_data(self, project: str, rows: int = 200) -> None:
        """`DEMO_TABLE` in `project`: two features and a label that depends on them."""
        rand = random.Random(7)
        data = []
        for _ in range(rows):
            f1, f2 = round(rand.uniform(-1, 1), 4), round(rand.uniform(-1, 1), 4)
            data.append((f1, f2, int(f1 + 0.5 * f2 + rand.gauss(0, 0.3) > 0)))
        columns = [("f1", "double"), ("f2", "double"), ("label", "bigint")]
        self.database(project).write(DEMO_TABLE, columns, data)

    # -- instances ----------------------------------------------------------------------

    def create(self, project: str, owner: str, body: bytes) -> Instance:
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise ApiError(400, "InvalidXmlFormat", f"ODPS-0410000:Invalid xml - {exc}") from None
        job, xflow = root.find("Job"), root.find("XflowInstance")
        settings: dict[str, str] = {}
        if job is not None:
            sql = job.find("Tasks/SQL")
            if sql is None:
                raise ApiError(400, "InvalidArgument", "ODPS-0420031:Only SQL tasks are supported")
            task_type, task_name = "SQL", sql.findtext("Name") or "AnonymousSQLTask"
            settings = _settings(sql.find("Config"))
            guid, name = job.findtext("Guid") or "", job.findtext("Name") or ""
            priority = job.findtext("Priority") or "9"
            run: Any = (self._run_sql, sql.findtext("Query") or "")
        elif xflow is not None:
            xflow_name = xflow.findtext("Xflow") or ""
            if xflow_name not in REGISTRY:
                raise ApiError(404, "NoSuchObject", f"ODPS-0420111:Xflow not found - {xflow_name}")
            task_type, task_name = "AlgoTask", xflow_name
            settings = _settings(xflow.find("Config"))
            guid, name = xflow.findtext("Guid") or "", ""
            priority = xflow.findtext("Priority") or "9"
            params = {
                p.findtext("Key") or "": p.findtext("Value") or ""
                for p in xflow.findall("Parameters/Parameter")
            }
            run = (self._run_algo, (xflow_name, params))
        else:
            raise ApiError(400, "InvalidArgument", "ODPS-0420031:Neither Job nor XflowInstance")
        with self.lock:
            if guid and self.guid_dedup:
                for known in self.instances.values():
                    if known.project == project and known.guid == guid:
                        return known
            instance = Instance(
                id=time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:16],
                project=project,
                owner=owner,
                source=body,
                task_type=task_type,
                task_name=task_name,
                created=time.time(),
                job_name=name or settings.get("odps.task.workflow.custom_job_name", ""),
                guid=guid,
                priority=int(priority) if priority.isdigit() else 9,
                settings=settings,
            )
            self.instances[instance.id] = instance
        self.database(project)
        threading.Thread(target=self._work, args=(instance, *run), daemon=True).start()
        return instance

    def _work(self, instance: Instance, step: Any, arg: Any) -> None:
        with self.lock:
            instance.started, instance.task_status = time.time(), "Running"
        seconds = self.sql_seconds if instance.task_type == "SQL" else self.algo_seconds
        if instance.task_type != "SQL" and instance.task_name in DURATIONS:
            try:
                seconds = DURATIONS[instance.task_name](arg[1])
            except AlgoError:
                pass  # the algorithm reports it
        if instance.cancel.wait(seconds):
            return
        try:
            fmt, result = step(instance.project, arg)
            status = "Success"
        except (SqlError, AlgoError) as exc:
            status, fmt, result = "Failed", "text", str(exc)
        except Exception as exc:  # a fault of the emulator itself fails the task, not the thread
            status, fmt, result = "Failed", "text", f"ODPS-0010000:System internal error - {exc}"
        with self.lock:
            if instance.ended is None:
                instance.task_status, instance.result_format, instance.result = status, fmt, result
                instance.ended = time.time()

    def _run_sql(self, project: str, query: str) -> tuple[str, str]:
        rows = self.database(project).run(query)
        return ("csv", rows.csv()) if rows is not None else ("text", "")

    def _run_algo(self, project: str, arg: tuple[str, dict[str, str]]) -> tuple[str, str]:
        name, params = arg
        return "text", REGISTRY[name](self.database(project), self.models[project], params) or ""

    def get(self, project: str, instance_id: str) -> Instance:
        with self.lock:
            instance = self.instances.get(instance_id)
        if instance is None or instance.project != project:
            raise ApiError(404, "NoSuchObject", f"ODPS-0420111:Instance not found - {instance_id}")
        return instance

    def stop(self, project: str, instance_id: str) -> None:
        instance = self.get(project, instance_id)
        with self.lock:
            instance.cancel.set()
            if instance.ended is None:
                instance.task_status, instance.ended = "Cancelled", time.time()
                instance.result_format, instance.result = "text", "Instance is cancelled"

    def vanish(self, instance_id: str) -> None:
        """The instance disappears, as if its record had been lost."""
        with self.lock:
            instance = self.instances.pop(instance_id, None)
        if instance is not None:
            instance.cancel.set()

    def stop_outside(self, instance_id: str) -> None:
        """Someone else stops the instance."""
        with self.lock:
            instance = self.instances.get(instance_id)
        if instance is not None:
            self.stop(instance.project, instance_id)

    def listing(self, project: str, query: dict[str, str]) -> str:
        with self.lock:
            found = sorted(
                (i for i in self.instances.values() if i.project == project),
                key=lambda i: (i.created, i.id),
            )
        if query.get("status"):
            found = [i for i in found if i.status == query["status"]]
        if query.get("jobname"):
            found = [i for i in found if i.job_name == query["jobname"]]
        low, _, high = query.get("daterange", "").partition(":")
        if low:
            found = [i for i in found if i.created >= float(low)]
        if high:
            found = [i for i in found if i.created <= float(high)]
        start = int(query.get("marker") or 0)
        size = int(query.get("maxitems") or 1000)
        page = found[start : start + size]
        marker = str(start + size) if start + size < len(found) else ""
        items = "".join(
            f"<Instance><Name>{i.id}</Name><Owner>{escape(i.owner)}</Owner>"
            f"<StartTime>{rfc822(i.created)}</StartTime>"
            f"<EndTime>{rfc822(i.ended) if i.ended else ''}</EndTime>"
            f"<Status>{i.status}</Status></Instance>"
            for i in page
        )
        return f"<Instances><Marker>{marker}</Marker><MaxItems>{size}</MaxItems>{items}</Instances>"

    # -- signatures and faults -----------------------------------------------------------

    def verify(self, method: str, raw_path: str, headers: Any) -> str:
        """Check the request's signature; the owner the key belongs to."""
        match = re.match(r"ODPS ([^:]+):(.+)$", headers.get("Authorization") or "")
        if not match:
            raise ApiError(401, "Unauthorized", "ODPS-0410051:Invalid credentials - not signed")
        credential, signature = match.groups()
        key_id = credential.split("/", 1)[0]
        secret = self.keys.get(key_id)
        if secret is None:
            raise ApiError(
                401, "Unauthorized", "ODPS-0410051:Invalid credentials - accessKeyId not found"
            )
        key = secret.encode()
        if "/" in credential:  # v4: AK/yyyymmdd/region/odps/<prefix>_request
            try:
                _, date, region, _, request = credential.split("/")
            except ValueError:
                raise ApiError(
                    401, "Unauthorized", "ODPS-0410051:Invalid credentials - bad credential"
                ) from None
            prefix = request.removesuffix("_request")
            key = (prefix + secret).encode()
            for part in (date, region, "odps", request):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        canonical = _canonical(method, raw_path, headers)
        expected = base64.b64encode(hmac.new(key, canonical.encode(), hashlib.sha1).digest())
        if not hmac.compare_digest(expected.decode(), signature):
            raise ApiError(
                401,
                "SignatureNotMatch",
                "ODPS-0410042:Invalid signature value - User signature dose not match",
            )
        return f"ALIYUN${key_id}"

    def inject(self) -> None:
        """Raise the fault the configured rates draw for this call, if any."""
        with self.lock:
            draw = self.random.random()
            faults = self.faults
        if faults.slow:
            time.sleep(faults.slow)
        if draw < faults.throttle:
            raise ApiError(
                429, "RequestQuotaExceeded", "ODPS-0420095:Access Denied - request quota exceeded"
            )
        draw -= faults.throttle
        if draw < faults.unavailable:
            raise ApiError(503, "ServiceUnavailable", "ODPS-0010000:Service is unavailable")
        draw -= faults.unavailable
        if draw < faults.error:
            raise ApiError(500, "InternalServerError", "ODPS-0010000:System internal error")


def _settings(config: ET.Element | None) -> dict[str, str]:
    """A task's Config properties; the `settings` property's JSON is merged in."""
    found: dict[str, str] = {}
    for prop in config.findall("Property") if config is not None else []:
        name, value = prop.findtext("Name") or "", prop.findtext("Value") or ""
        if name == "settings":
            try:
                found.update({str(k): str(v) for k, v in json.loads(value).items()})
            except (ValueError, AttributeError):
                pass
        else:
            found[name] = value
    return found


def _canonical(method: str, raw_path: str, headers: Any) -> str:
    """The string pyodps signs (odps/accounts.py, BaseAccount._build_canonical_str)."""
    url = urlsplit(unquote(raw_path))
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    resource = url.path
    if url.query:
        resource += "?" + "&".join(k if v == "" else f"{k}={v}" for k, v in sorted(params.items()))
    signed = {"content-type": "", "content-md5": ""}
    for k, v in headers.items():
        k = k.lower()
        if k in ("content-type", "content-md5") or k.startswith("x-odps-"):
            signed[k] = v
    signed["date"] = headers.get("Date") or ""
    signed.update({k: v for k, v in params.items() if k.startswith("x-odps-")})
    lines = [method]
    for k in sorted(signed):
        lines.append(f"{k}:{signed[k]}" if k.startswith("x-odps-") else signed[k])
    lines.append(resource)
    return "\n".join(lines)


def rfc822(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
