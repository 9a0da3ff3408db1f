"""An S3 server on 127.0.0.1 for tests and dry runs, and a proxy that injects faults.

    with S3Server() as server:                 # moto's server mode, on a free port
        server.create_bucket("models")
        with FaultProxy(server.url, rate=0.3) as proxy:
            ...  # point endpoint = proxy.url at it: 30% of requests fail

`FaultProxy` answers a share of requests itself with what S3 sends under stress — 503
SlowDown (throttling), 500 InternalError — or drops the connection without answering, and
forwards the rest unchanged. Faults are drawn from a seeded generator, so a failing run can
be replayed. Runnable by hand: `python -m tunectl.testing.s3 --port 9000 --fault-rate 0.2`
starts a server (and a proxy in front of it) for dry runs of experiments.
"""

from __future__ import annotations

import argparse
import http.client
import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

# Credentials a moto server accepts: what a test or a dry run puts in the environment.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's S3 server in a thread (no credentials checked, data in memory)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def __enter__(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


class FaultProxy:
    """A reverse proxy in front of `upstream` that fails `rate` of the requests."""

    KINDS = ("throttle", "error", "drop")

    def __init__(self, upstream: str, rate: float = 0.3, seed: int = 0, port: int = 0) -> None:
        self.upstream = urlparse(upstream)
        self.rate = rate
        self.random = random.Random(seed)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: Counter[str] = Counter()
        self.forwarded = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def draw(self) -> str | None:
        with self._lock:
            if self.random.random() >= self.rate:
                self.forwarded += 1
                return None
            kind = self.random.choice(self.KINDS)
            self.faults[kind] += 1
            return kind

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                fault = proxy.draw()
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None:
                    code, status = (
                        ("SlowDown", 503) if fault == "throttle" else ("InternalError", 500)
                    )
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>injected by FaultProxy</Message></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port, timeout=60
                )
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                self.send_response(response.status, response.reason)
                head = self.command == "HEAD"
                for key, value in response.getheaders():
                    if key.lower() not in _HOP and (head or key.lower() != "content-length"):
                        self.send_header(key, value)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args()
    with S3Server(port=args.port if args.fault_rate == 0 else 0) as server:
        for bucket in args.bucket:
            server.create_bucket(bucket)
        if args.fault_rate:
            with FaultProxy(server.url, args.fault_rate, port=args.port) as proxy:
                print(f"S3 at {proxy.url} ({args.fault_rate:.0%} faults)", flush=True)
                _forever()
        else:
            print(f"S3 at {server.url}", flush=True)
            _forever()


def _forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
