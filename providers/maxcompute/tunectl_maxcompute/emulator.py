"""An emulator of the MaxCompute (ODPS) REST API, for tests and dry runs.

It speaks the part of the API pyodps 0.13 uses, with XML bodies, so pyodps works against it
with its ordinary settings (`ODPS(ak, sk, project, endpoint="http://127.0.0.1:PORT/api")`):

    GET  /logview/host, /webconsole/host, /tenants (404, as for a tenant without schemas)
    GET  /projects/{p}                              project meta (`?properties=all`)
    POST /projects/{p}/instances                    create from Job XML (SQL) or XflowInstance
    GET  /projects/{p}/instances                    list (status, daterange, onlyowner,
                                                    maxitems, marker, jobname)
    GET  /projects/{p}/instances/{id}               status; `?taskstatus`, `?result` (CSV),
                                                    `?source`, `?xsource`, `?xresult`
    PUT  /projects/{p}/instances/{id}               stop (`<Status>Terminated</Status>`)
    POST /projects/{p}/authorization?sign_bearer_token   a Logview token
    PUT  /projects/{p}/logs                         pyodps' usage reports (ignored)
    GET  /projects/{p}/tables/{t}                   table meta; `?data&linenum=n` its head (CSV)

Every request must carry a valid ODPS signature (v2 `ODPS ak:sig`, or v4) made with the
configured test key; a wrong secret is refused with 401 `SignatureNotMatch` as in the cloud.

SQL runs on SQLite (`tunectl_maxcompute.sql`); PAI commands run fake algorithms
(`tunectl_maxcompute.algorithms`). Both take time (`sql_seconds`, `algo_seconds`) in a
background thread; the instance is Running, then Terminated with its task Success or Failed
(Cancelled when stopped). The Job XML is kept and served back by `?source`, so what a client
set (settings such as `odps.task.workflow.custom_job_name` or `EXT_*` keys, priority, Guid,
job name) can be found again; a second create with the same Guid returns the first instance.

Faults on demand, through unauthenticated admin paths (also `Emulator.faults`):

    POST /_emulator/faults   {"throttle": 0.1, "unavailable": 0.1, "error": 0.1,
                              "slow": 0.0, "seed": 1}
    POST /_emulator/instances/{id}/vanish        the instance disappears (404 from then on)
    POST /_emulator/instances/{id}/stop-outside  the instance is stopped by someone else
    GET  /_emulator/calls                        how many calls of each kind were served

Run it by hand: `tunectl-maxcompute-emulator --port 8480` (test key `LTAI-test` /
`test-secret` unless --access-key-id / --access-key-secret say otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from tunectl_maxcompute.state import (
    DEMO_TABLE,
    TEST_KEY_ID,
    TEST_KEY_SECRET,
    ApiError,
    Emulator,
    Faults,
    Instance,
    cdata,
    rfc822,
)

__all__ = ["TEST_KEY_ID", "TEST_KEY_SECRET", "ApiError", "Emulator", "Faults", "Server", "main"]

_PROJECT = re.compile(r"^/projects/([\w-]+)$")
_INSTANCES = re.compile(r"^/projects/([\w-]+)/instances$")
_INSTANCE = re.compile(r"^/projects/([\w-]+)/instances/([\w-]+)$")
_TABLE = re.compile(r"^/projects/([\w-]+)/(?:schemas/[\w-]+/)?tables/([\w.-]+)$")
_AUTHORIZATION = re.compile(r"^/projects/([\w-]+)/authorization$")
_LOGS = re.compile(r"^/projects/([\w-]+)/logs$")
_ADMIN_INSTANCE = re.compile(r"^/_emulator/instances/([\w-]+)/(vanish|stop-outside)$")
_XML = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    content_type: str = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)


class Server:
    """The emulator over HTTP on 127.0.0.1. Use as a context manager."""

    def __init__(self, port: int = 0, **kwargs: Any) -> None:
        self.emulator = Emulator(**kwargs)
        self._port = port
        self._http: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._http is not None
        return int(self._http.server_address[1])

    @property
    def endpoint(self) -> str:
        """What pyodps takes as `endpoint`."""
        return f"http://127.0.0.1:{self.port}/api"

    def __enter__(self) -> Server:
        emulator = self.emulator

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and delayed ACKs add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, answer: Answer, request_id: str) -> None:
                body = answer.body.encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-odps-request-id", request_id)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw = self.path[4:] if self.path.startswith("/api/") else self.path
                url = urlsplit(raw)
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                request_id = uuid.uuid4().hex.upper()
                try:
                    if url.path.startswith("/_emulator/"):
                        answer = self._admin(url.path, body)
                    else:
                        owner = emulator.verify(self.command, raw, self.headers)
                        with emulator.lock:
                            emulator.calls[_kind(self.command, url.path, query)] += 1
                        emulator.inject()
                        answer = self._api(url.path, query, body, owner)
                except Exception as exc:  # every failure is an <Error> answer
                    if not isinstance(exc, ApiError):
                        exc = ApiError(500, "InternalServerError", f"ODPS-0010000:{exc}")
                    answer = Answer(
                        exc.status,
                        f"{_XML}<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}"
                        f"</Message><RequestId>{request_id}</RequestId>"
                        f"<HostId>127.0.0.1</HostId></Error>",
                    )
                self._reply(answer, request_id)

            def _api(self, path: str, query: dict[str, str], body: bytes, owner: str) -> Answer:
                method = self.command
                if path in ("/logview/host", "/webconsole/host") and method == "GET":
                    host = self.headers.get("Host") or "127.0.0.1"
                    return Answer(body=f"http://{host}", content_type="text/plain")
                if path == "/tenants":
                    raise ApiError(404, "NoSuchObject", "ODPS-0420111:Tenant not found")
                if (m := _PROJECT.match(path)) and method == "GET":
                    return Answer(body=_project(m.group(1), owner))
                if (m := _INSTANCES.match(path)) and method == "POST":
                    instance = emulator.create(m.group(1), owner, body)
                    with emulator.lock:
                        lose, emulator.lose_answers = (
                            emulator.lose_answers > 0,
                            max(0, emulator.lose_answers - 1),
                        )
                    if lose:  # created, but the client never learns it
                        raise ApiError(502, "BadGateway", "ODPS-0010000:Bad gateway")
                    host = self.headers.get("Host") or "127.0.0.1"
                    location = f"http://{host}/api/projects/{m.group(1)}/instances/{instance.id}"
                    return Answer(201, headers={"Location": location})
                if (m := _INSTANCES.match(path)) and method == "GET":
                    return Answer(body=_XML + emulator.listing(m.group(1), query))
                if (m := _INSTANCE.match(path)) and method == "GET":
                    return _instance(emulator.get(m.group(1), m.group(2)), query)
                if (m := _INSTANCE.match(path)) and method == "PUT":
                    instance = emulator.get(m.group(1), m.group(2))
                    if _status_of(body) != "Terminated":
                        raise ApiError(400, "InvalidArgument", "ODPS-0420031:Invalid status")
                    emulator.stop(instance.project, instance.id)
                    return Answer()
                if (m := _AUTHORIZATION.match(path)) and method == "POST":
                    token = uuid.uuid4().hex
                    return Answer(body=f"<Authorization><Result>{token}</Result></Authorization>")
                if _LOGS.match(path) and method == "PUT":
                    return Answer()
                if (m := _TABLE.match(path)) and method == "GET":
                    return _table(emulator, m.group(1), m.group(2), query)
                raise ApiError(404, "NoSuchObject", f"ODPS-0420111:{method} {path} is not an API")

            def _admin(self, path: str, body: bytes) -> Answer:
                if path == "/_emulator/faults":
                    spec = json.loads(body or b"{}")
                    with emulator.lock:
                        emulator.faults = Faults(**spec)
                        emulator.random = random.Random(emulator.faults.seed)
                    return Answer(body='{"ok": true}', content_type="application/json")
                if path == "/_emulator/calls":
                    with emulator.lock:
                        calls = dict(emulator.calls)
                    return Answer(body=json.dumps(calls), content_type="application/json")
                if m := _ADMIN_INSTANCE.match(path):
                    if m.group(2) == "vanish":
                        emulator.vanish(m.group(1))
                    else:
                        emulator.stop_outside(m.group(1))
                    return Answer(body='{"ok": true}', content_type="application/json")
                raise ApiError(404, "NoSuchObject", path)

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle

        self._http = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        with self.emulator.lock:
            for instance in self.emulator.instances.values():
                instance.cancel.set()


def _kind(method: str, path: str, query: dict[str, str]) -> str:
    """A call's name in the call counts: `GET instance?taskstatus`, `POST instances`, ..."""
    parts = path.strip("/").split("/")
    noun = parts[2] if len(parts) > 2 else parts[0]
    if len(parts) == 4:
        noun = noun.rstrip("s")
    actions = sorted(k for k, v in query.items() if v == "" and k != "curr_project")
    return f"{method} {noun}" + ("?" + "&".join(actions) if actions else "")


def _status_of(body: bytes) -> str:
    try:
        return ET.fromstring(body).findtext("Status") or ""
    except ET.ParseError:
        return ""


def _project(name: str, owner: str) -> str:
    return (
        f"{_XML}<Project><Name>{name}</Name><Comment></Comment><Owner>{escape(owner)}</Owner>"
        f"<State>AVAILABLE</State><CreationTime>{rfc822(0)}</CreationTime>"
        f"<LastModifiedTime>{rfc822(0)}</LastModifiedTime><ProjectGroupName></ProjectGroupName>"
        "<Properties></Properties></Project>"
    )


def _instance(instance: Instance, query: dict[str, str]) -> Answer:
    task = f'<Task Type="{instance.task_type}"><Name>{escape(instance.task_name)}</Name>'
    if "taskstatus" in query:
        started = rfc822(instance.started) if instance.started else ""
        ended = rfc822(instance.ended) if instance.ended else ""
        body = (
            f"<Instance><Status>{instance.status}</Status><Tasks>{task}"
            f"<StartTime>{started}</StartTime><EndTime>{ended}</EndTime>"
            f"<Status>{instance.task_status}</Status><Histories/></Task></Tasks></Instance>"
        )
    elif "result" in query:
        body = (
            f'<Instance><Tasks>{task}<Result Format="{instance.result_format}">'
            f"{cdata(instance.result)}</Result><Status>{instance.task_status}</Status>"
            "</Task></Tasks></Instance>"
        )
    elif "source" in query or "xsource" in query:
        root = ET.fromstring(instance.source)
        job = root.find("Job")
        # A SQL job's source is its <Job>; an XFlow's is the <Instance> as posted.
        return Answer(body=_XML + ET.tostring(job if job is not None else root, "unicode"))
    elif "xresult" in query:
        body = "<Xinstance><Actions></Actions></Xinstance>"
    else:
        headers = {"x-odps-owner": instance.owner, "x-odps-start-time": rfc822(instance.created)}
        if instance.ended is not None:
            headers["x-odps-end-time"] = rfc822(instance.ended)
        return Answer(
            body=f"{_XML}<Instance><Status>{instance.status}</Status></Instance>", headers=headers
        )
    return Answer(body=_XML + body)


def _table(emulator: Emulator, project: str, name: str, query: dict[str, str]) -> Answer:
    database = emulator.database(project)
    schema = database.schema(name)
    if schema is None:
        raise ApiError(404, "NoSuchObject", f"ODPS-0130131:Table not found - {project}.{name}")
    if "data" in query:
        return Answer(
            body=database.head(name, int(query.get("linenum") or 10000)).csv(),
            content_type="text/plain",
        )
    meta = {
        "columns": [{"name": c, "type": t, "comment": "", "isNullable": True} for c, t in schema],
        "partitionKeys": [],
        "comment": "",
        "owner": f"ALIYUN${next(iter(emulator.keys))}",
        "lifecycle": -1,
        "isVirtualView": False,
        "createTime": 0,
        "lastModifiedTime": int(time.time()),
    }
    table_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{project}.{name}").hex
    return Answer(
        body=f"{_XML}<Table><Name>{escape(name)}</Name><TableId>{table_id}</TableId>"
        f"<Schema>{cdata(json.dumps(meta))}</Schema><Owner>{meta['owner']}</Owner>"
        f"<Type>MANAGED_TABLE</Type></Table>"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="An emulator of the MaxCompute REST API.",
        epilog="With a command after --, the emulator runs it with ALIBABA_CLOUD_ACCESS_KEY_ID, "
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET and TUNECTL_VAR_endpoint set to reach it, then "
        "stops and exits with the command's exit code.",
    )
    parser.add_argument("--port", type=int, default=8480, help="0 for any free port")
    parser.add_argument("--access-key-id", default=TEST_KEY_ID)
    parser.add_argument("--access-key-secret", default=TEST_KEY_SECRET)
    parser.add_argument("--sql-seconds", type=float, default=0.5, help="how long SQL runs")
    parser.add_argument("--algo-seconds", type=float, default=5.0, help="how long PAI runs")
    parser.add_argument("--throttle", type=float, default=0.0, help="share of calls throttled")
    parser.add_argument("--unavailable", type=float, default=0.0, help="share answered 503")
    parser.add_argument("--error", type=float, default=0.0, help="share of calls failing (500)")
    parser.add_argument("--slow", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument(
        "--demo-data",
        metavar="PROJECT",
        help=f"create the table {DEMO_TABLE} (a small labelled dataset) in PROJECT",
    )
    given = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    if "--" in given:
        at = given.index("--")
        given, command = given[:at], given[at + 1 :]
    args = parser.parse_args(given)
    try:
        server = Server(
            port=args.port,
            sql_seconds=args.sql_seconds,
            algo_seconds=args.algo_seconds,
            access_key_id=args.access_key_id,
            access_key_secret=args.access_key_secret,
        ).__enter__()
    except OSError as exc:
        parser.exit(
            1,
            f"tunectl-maxcompute-emulator: cannot listen on port {args.port}: "
            f"{exc.strerror or exc}; choose another with --port (0 for any free one)\n",
        )
    try:
        server.emulator.faults = Faults(
            throttle=args.throttle, unavailable=args.unavailable, error=args.error, slow=args.slow
        )
        if args.demo_data:
            server.emulator.demo_data(args.demo_data)
        print(
            f"MaxCompute emulator on {server.endpoint} (key {args.access_key_id}); "
            f'ODPS(ak, sk, project="p", endpoint="{server.endpoint}")',
            file=sys.stderr if command else sys.stdout,
            flush=True,
        )
        if command:
            env = {
                **os.environ,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": args.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": args.access_key_secret,
                "TUNECTL_VAR_endpoint": server.endpoint,
            }
            env.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
            try:
                code = subprocess.run(command, env=env).returncode
            except OSError as exc:
                parser.exit(127, f"tunectl-maxcompute-emulator: cannot run {command[0]}: {exc}\n")
            except KeyboardInterrupt:
                code = 130
            sys.exit(code)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    finally:
        server.__exit__(None, None, None)


if __name__ == "__main__":
    main()
