"""A fault-injecting HTTP proxy in front of an S3 endpoint (the moto server), for tests.

`FaultProxy(upstream, plan)` listens on 127.0.0.1 (free port) and forwards every request to
`upstream`, except those the plan picks, which get a fault instead:

- `slowdown`: 503 with an S3 `<Error><Code>SlowDown</Code>…` body (a throttling error for botocore),
- `internal`: 500 `InternalError`,
- `denied`: 403 `AccessDenied`,
- `reset`: the request is read, then the connection is closed with SO_LINGER 0 (TCP RST, no response),
- `timeout`: the request is read, nothing is answered for `hold` seconds (longer than the client's
  read timeout), then the connection is closed.

A `Fault` picks the `first` N matching requests, or every `every`-th one (at most `limit` times),
or, with neither, every matching request (persistent); `bucket` and `methods` narrow what matches
(path-style addressing: the bucket is the first path segment). Rules are tried in order; the first
that fires answers. `injected` counts the faults by kind, `forwarded` the requests passed through.
"""

from __future__ import annotations

import http.client
import io
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

KINDS = ("slowdown", "internal", "denied", "reset", "timeout")
_ERRORS = {  # kind → (status, S3 error code, message)
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "denied": (403, "AccessDenied", "Access Denied"),
}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "expect", "content-length"}


@dataclass
class Fault:
    """One rule of a plan: which requests get which fault."""

    kind: str
    first: int | None = None  # the first N matching requests
    every: int | None = None  # every K-th matching request
    limit: int | None = None  # at most this many faults from this rule
    bucket: str | None = None  # only requests to this bucket
    methods: tuple[str, ...] | None = None  # only these HTTP methods (e.g. ("PUT",))
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.first is not None and self.every is not None:
            raise ValueError("a fault rule takes `first` or `every`, not both")
        if self.every is not None and self.every < 1:
            raise ValueError("`every` must be at least 1")

    def matches(self, method: str, bucket: str) -> bool:
        return (self.bucket is None or self.bucket == bucket) and (self.methods is None or method in self.methods)

    def fires(self) -> bool:
        """Count one matching request; True when this rule answers it."""
        self.seen += 1
        if self.limit is not None and self.fired >= self.limit:
            return False
        if self.first is not None:
            hit = self.seen <= self.first
        elif self.every is not None:
            hit = self.seen % self.every == 0
        else:
            hit = True
        self.fired += hit
        return hit


@dataclass(frozen=True)
class Seen:
    """One request through the proxy and what happened to it (`forwarded` or a fault kind)."""

    method: str
    path: str
    outcome: str
    status: int | None


class FaultProxy:
    """Threaded HTTP proxy to `upstream` injecting the faults of `plan`; a context manager."""

    def __init__(self, upstream: str, plan: Iterable[Fault] = (), *, hold: float = 3.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.hold = hold
        self.plan: list[Fault] = list(plan)
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes the handlers holding a `timeout`
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_plan(self, plan: Sequence[Fault]) -> None:
        """Replace the plan (counters of injected faults are kept)."""
        with self._lock:
            self.plan = list(plan)

    def stats(self) -> dict:
        """Faults injected by kind, requests forwarded, requests seen, and per-rule counters."""
        with self._lock:
            return {"injected": {k: self.injected[k] for k in KINDS if self.injected[k]},
                    "injected_total": sum(self.injected.values()), "forwarded": self.forwarded,
                    "requests": len(self.requests),
                    "rules": [{"kind": f.kind, "first": f.first, "every": f.every, "limit": f.limit,
                               "bucket": f.bucket, "methods": list(f.methods) if f.methods else None,
                               "seen": f.seen, "fired": f.fired} for f in self.plan]}

    def _decide(self, method: str, path: str) -> str | None:
        bucket = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        with self._lock:
            for rule in self.plan:
                if rule.matches(method, bucket) and rule.fires():
                    self.injected[rule.kind] += 1
                    return rule.kind
            return None

    def _record(self, method: str, path: str, outcome: str, status: int | None) -> None:
        with self._lock:
            if outcome == "forwarded":
                self.forwarded += 1
            self.requests.append(Seen(method, path, outcome, status))


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real S3 endpoint
    proxy: FaultProxy

    def log_message(self, format: str, *args) -> None:  # silence the per-request lines on stderr
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        method, path = self.command, self.path
        kind = self.proxy._decide(method, path)
        if kind is None:
            self._forward(body)
        elif kind == "reset":
            self.proxy._record(method, path, kind, None)
            self._reset()
        elif kind == "timeout":
            self.proxy._record(method, path, kind, None)
            self.proxy._stopping.wait(self.proxy.hold)
            self.close_connection = True
        else:
            status, code, message = _ERRORS[kind]
            self.proxy._record(method, path, kind, status)
            self._error(status, code, message, path)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    def _reset(self) -> None:
        """Close abruptly: SO_LINGER 0 makes close() send a TCP RST instead of a FIN."""
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the file objects' references, so close() really closes
        self.wfile.close()
        sock.close()
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()  # what the request loop still flushes/closes

    def _error(self, status: int, code: str, message: str, path: str) -> None:
        bucket, _, key = path.lstrip("/").split("?", 1)[0].partition("/")
        request_id = uuid.uuid4().hex[:16].upper()
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                + (f"<BucketName>{escape(bucket)}</BucketName>" if bucket else "")
                + (f"<Key>{escape(key)}</Key>" if key else "")
                + f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>").encode()
        head = self.command == "HEAD"
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if head else str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        self.send_header("Date", self.date_time_string(time.time()))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _forward(self, body: bytes) -> None:
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.proxy._record(self.command, self.path, "forwarded", resp.status)  # before the client hears back
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_BY_HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if self.command == "HEAD":
            length = resp.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
        elif not no_body:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not no_body:
            self.wfile.write(data)
