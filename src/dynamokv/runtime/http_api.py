"""The HTTP/1.1 server of the DynamoDB-compatible API.

Owns: :func:`start_http_api` and :class:`HttpApiServer` -- an asyncio server that parses
HTTP/1.1 with ``httptools`` (keep-alive, pipelining answered in order, Content-Length and
chunked bodies), enforces limits (body size -> 413, header size -> 431, connections per port
and per client address -> 503, request body bytes buffered by the whole server -> 503, a body
above its operation's cap -> that operation's error, slow or idle connections are closed), and
hands each complete request to :class:`dynamokv.api.app.DynamoDBApp`. Every refusal is counted
by reason (``HttpApiServer.refused`` and, on a node, the ``dynamokv_http_refused`` metric).
May import: stdlib, ``httptools``, ``orjson``, :mod:`dynamokv.api`, :mod:`dynamokv.runtime`.

Memory. A body is only buffered once its bytes are reserved against ``max_buffered_bytes``:
the declared Content-Length when the headers end, or chunk by chunk for a chunked body. A
request that cannot reserve, or whose body is above its operation's cap (a PutItem far above
the 400 KB item limit), is not buffered: its bytes are read and dropped and it is answered, in
order, with the error, so the connection stays usable and an SDK sees a proper answer (503
ServiceUnavailable is retried by every SDK). Reservations end when the answer is written or the
connection is lost.

Each connection has one worker task that answers its requests one at a time, in order; a
client that pipelines more than ``max_pipelined`` requests is paused (its socket is not read)
until the worker catches up, and a client that stops reading responses pauses the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Protocol, cast

import httptools  # type: ignore[import-untyped,unused-ignore]
import orjson

from dynamokv.api import front
from dynamokv.api.app import DynamoDBApp, Response, crc32, request_id
from dynamokv.api.errors import DynamoDBError, ServiceUnavailable
from dynamokv.api.handle import NodeHandle
from dynamokv.api.sigv4 import AuthConfig

log = logging.getLogger("dynamokv.http_api")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 64 * 1024  # request line plus all headers
    max_connections: int = 1024
    max_connections_per_client: int = 256  # per client IP address
    max_buffered_bytes: int = 128 * 1024 * 1024  # request bodies held by the whole server
    max_pipelined: int = 16
    idle_timeout: float = 120.0  # an open connection with nothing to do
    receive_timeout: float = 60.0  # from the first byte of a request to its last
    compress_min_bytes: int = 4096  # smallest response body sent compressed; 0: never


class HttpMetrics(Protocol):
    """Where a node's HTTP front end reports (``dynamokv.runtime.metrics.NodeMetrics``)."""

    def count_http_refusal(self, reason: str) -> None: ...

    def set_http_load(self, connections: int, buffered_bytes: int) -> None: ...


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    reserved: int = 0  # bytes of the server's body budget this request holds
    answer: Response | None = None  # refused before it was read: the answer is known


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
        if len(_STATUS_LINES) < 1024:
            _STATUS_LINES[status] = line
    return line


_STATUS_LINES: dict[int, bytes] = {}  # status -> its line, formatted once


class _DateCache:
    """The Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True)
        return self._value


def render(response: Response, *, close: bool, date: str) -> bytes:
    lines = [_status_line(response.status)]
    for name, value in response.headers:
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(f"Content-Length: {len(response.body)}\r\nDate: {date}\r\n".encode("ascii"))
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    lines.append(response.body)
    return b"".join(lines)


def _error_response(status: int, error_type: str, message: str) -> Response:
    body = orjson.dumps({"__type": f"com.amazon.coral.service#{error_type}", "message": message})
    headers = [("x-amzn-RequestId", request_id()), ("x-amz-crc32", crc32(body)),
               ("Content-Type", "application/x-amz-json-1.0")]
    return Response(status, headers, body)


def _answer_for(error: DynamoDBError, headers: dict[str, str]) -> Response:
    body = orjson.dumps(error.to_json())
    out = [("x-amzn-RequestId", request_id()), ("x-amz-crc32", crc32(body)),
           ("Content-Type", front.response_type(headers)), *front.cors_headers(headers)]
    return Response(error.status, out, body)


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpApiServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Request] = deque()
        self.wakeup = asyncio.Event()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.worker: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: float | None = None  # loop time the armed timeout expires at
        self.closing = False
        self.reading_paused = False
        self.in_message = False
        self.client = ""  # the peer's IP address, once counted against its limit
        self.active: _Request | None = None  # the request the worker is answering
        self.timer_reason = "idle_timeout"
        self._reset_message()

    def _reset_message(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.header_name = b""
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.reject: tuple[int, str, str] | None = None
        self.reserved = 0
        self.cap = self.server.default_cap  # the operation's, once its headers are read
        self.answer: Response | None = None  # set: the body is dropped, this is the answer
        self.answer_now: Response | None = None  # set: answer before the body, then close

    # ----------------------------------------------------------------------- lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        server = self.server
        if len(server.connections) >= self.limits.max_connections:
            server.refuse("connections")
            self._fail(503, "ServiceUnavailable", "Too many open connections")
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if server.per_client[client] >= self.limits.max_connections_per_client:
            server.refuse("client_connections")
            self._fail(503, "ServiceUnavailable",
                       f"Too many open connections from {client} "
                       f"(at most {self.limits.max_connections_per_client})")
            return
        self.client = client
        server.per_client[client] += 1
        server.connections.add(self)
        server.report_load()
        self.worker = asyncio.get_running_loop().create_task(self._work())
        self._arm(self.limits.idle_timeout, "idle_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        server = self.server
        if self in server.connections:
            server.connections.discard(self)
            server.per_client[self.client] -= 1
            if server.per_client[self.client] <= 0:
                del server.per_client[self.client]
        self._cancel_timer()
        if self.worker is not None:
            self.worker.cancel()
        self.can_write.set()
        # Whatever this connection still holds of the body budget goes back.
        held = [self.active, *self.queue] if self.active else list(self.queue)
        released = self.reserved + sum(r.reserved for r in held if r is not None)
        self.reserved = 0
        for request in held:
            if request is not None:
                request.reserved = 0
        self.queue.clear()
        self.body = []
        server.release(released)
        server.report_load()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject = (400, "SerializationException", "Protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self.reject is None:
                self.reject = (400, "SerializationException", f"Malformed HTTP request: {exc}")
        if self.answer_now is not None and self.reject is None:
            if self.transport is not None and not self.closing:
                self.transport.write(render(self.answer_now, close=True,
                                            date=self.server.date.get()))
            self.close()
            return
        if self.reject is not None:
            status, error_type, message = self.reject
            self._fail(status, error_type, message)
            return
        if len(self.queue) >= self.limits.max_pipelined and not self.reading_paused:
            self.reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def close(self) -> None:
        self.closing = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    def _fail(self, status: int, error_type: str, message: str) -> None:
        """Answer an unparseable or refused request and close (its framing may be lost)."""
        if self.transport is not None and not self.closing:
            response = _error_response(status, error_type, message)
            self.transport.write(render(response, close=True, date=self.server.date.get()))
        self.close()

    # ----------------------------------------------------------------------- timers

    # One loop timer per connection, moved lazily: arming only records the deadline, and the
    # timer is replaced only when the new deadline is earlier than the one it waits for (a
    # timer that fires early re-arms itself for the current deadline). Arming and disarming
    # happen two or three times per request, and a new loop timer each time cost about 2% of a
    # request's CPU.

    def _arm(self, delay: float, reason: str) -> None:
        loop = asyncio.get_running_loop()
        self.timer_reason = reason
        self.deadline = loop.time() + delay
        if self.timer is None or self.timer.when() > self.deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(self.deadline, self._expired)

    def _disarm(self) -> None:
        self.deadline = None

    def _cancel_timer(self) -> None:
        self.deadline = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.deadline is None or self.transport is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline:
            self.timer = loop.call_at(self.deadline, self._expired)
            return
        self.deadline = None
        self.server.refuse(self.timer_reason)
        self.transport.abort()

    # ----------------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        self._reset_message()
        self.in_message = True
        self._arm(self.limits.receive_timeout, "receive_timeout")

    def on_url(self, url: bytes) -> None:
        self.header_bytes += len(url)
        if self.header_bytes > self.limits.max_header_bytes:
            self.reject = (414, "ValidationException", "Request URI too long")
            self.server.refuse("header_too_large")
        elif self.reject is None:
            self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.limits.max_header_bytes:
            if self.reject is None:
                self.server.refuse("header_too_large")
            self.reject = (431, "ValidationException", "Request headers too large")
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Repeated headers are one comma-separated value (also what SigV4 signs).
        self.headers[key] = f"{self.headers[key]},{text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if self.reject is not None:
            return
        length_text = self.headers.get("content-length", "")
        length = int(length_text) if length_text.isdigit() else 0
        if length > self.limits.max_body_bytes:
            self.server.refuse("body_too_large")
            self.reject = (413, "ValidationException", "Request body too large")
            return
        self.cap = front.body_cap(self.headers.get("x-amz-target", ""),
                                  self.limits.max_body_bytes)
        if length > self.cap.limit:
            self._drop_body("item_too_large", self.cap.error)
        elif length and not self._reserve(length):
            return
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport:
            if self.answer is None:
                self.transport.write(_CONTINUE)
            elif not self.queue and self.active is None:
                # Refused: answer now (nothing is ahead of it) instead of asking for the body.
                self.answer_now = self.answer

    def _reserve(self, count: int) -> bool:
        """Hold ``count`` more body bytes against the server's budget, or drop the body."""
        if self.server.reserve(count):
            self.reserved += count
            return True
        self._drop_body("buffer_full", ServiceUnavailable(
            "The node holds too many request bytes (limit "
            f"{self.limits.max_buffered_bytes} bytes); retry later"))
        return False

    def _drop_body(self, reason: str, error: DynamoDBError) -> None:
        """Read the rest of this body without keeping it; answer ``error`` once it ends."""
        self.server.refuse(reason)
        self.answer = _answer_for(error, self.headers)
        self.body = []
        self.server.release(self.reserved)
        self.reserved = 0

    def on_body(self, body: bytes) -> None:
        if self.reject is not None:
            return
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.max_body_bytes:
            self.server.refuse("body_too_large")
            self.reject = (413, "ValidationException", "Request body too large")
            self._drop_body_silently()
            return
        if self.answer is not None:
            return
        if self.body_bytes > self.cap.limit:
            self._drop_body("item_too_large", self.cap.error)
            return
        if self.body_bytes > self.reserved and not self._reserve(self.body_bytes - self.reserved):
            return
        self.body.append(body)

    def _drop_body_silently(self) -> None:
        self.body = []
        self.server.release(self.reserved)
        self.reserved = 0

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.reject is not None:
            return
        self._disarm()
        method = self.parser.get_method().decode("ascii", "replace")
        request = _Request(
            method,
            self.url.decode("latin-1"),
            self.headers,
            b"".join(self.body),
            bool(self.parser.should_keep_alive()),
            self.reserved,
            self.answer,
        )
        self.reserved = 0  # now the request's to give back
        self.queue.append(request)
        self._reset_message()
        self.wakeup.set()

    # ----------------------------------------------------------------------- worker

    async def _work(self) -> None:
        app = self.server.app
        while not self.closing:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            request = self.queue.popleft()
            if self.reading_paused and len(self.queue) < self.limits.max_pipelined:
                self.reading_paused = False
                assert self.transport is not None
                self.transport.resume_reading()
            self.active = request
            try:
                response = request.answer or await app.handle(
                    request.method, request.target, request.headers, request.body
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # the app never raises; this is a last resort, not a path
                log.exception("the API application raised")
                response = _error_response(500, "InternalServerError", "Internal server error")
            self.active = None
            request.body = b""
            self.server.release(request.reserved)
            request.reserved = 0
            await self.can_write.wait()
            if self.closing or self.transport is None:
                return
            close = not request.keep_alive
            self.transport.write(render(response, close=close, date=self.server.date.get()))
            if close:
                self.close()
                return
            if not self.queue and not self.in_message:
                self._arm(self.limits.idle_timeout, "idle_timeout")


@dataclass
class HttpApiServer:
    """A running API server; ``port`` is the bound port (useful with port 0)."""

    app: DynamoDBApp
    limits: HttpLimits
    host: str = ""
    port: int = 0
    server: asyncio.Server | None = None
    connections: set[_Connection] = field(default_factory=set)
    date: _DateCache = field(default_factory=_DateCache)
    metrics: HttpMetrics | None = None
    per_client: Counter[str] = field(default_factory=Counter)
    buffered: int = 0  # body bytes reserved by requests being read or answered
    refused: Counter[str] = field(default_factory=Counter)  # refusals by reason
    default_cap: front.BodyCap = field(init=False)
    _load_report_due: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.default_cap = front.BodyCap(self.limits.max_body_bytes, front.RequestTooLarge)

    def reserve(self, count: int) -> bool:
        if self.buffered + count > self.limits.max_buffered_bytes:
            return False
        self.buffered += count
        self.report_load()
        return True

    def release(self, count: int) -> None:
        if count:
            self.buffered -= count
            self.report_load()

    def refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        if self.metrics is not None:
            self.metrics.count_http_refusal(reason)

    def report_load(self) -> None:
        """Tell the metrics the load, once per loop iteration: every request reserves and
        releases its body bytes, and two gauge updates per request cost ~2% of its CPU."""
        if self.metrics is None or self._load_report_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not in the loop (a test driving the server by hand)
            self._report_load_now()
            return
        self._load_report_due = True
        loop.call_soon(self._report_load_now)

    def _report_load_now(self) -> None:
        self._load_report_due = False
        if self.metrics is not None:
            self.metrics.set_http_load(len(self.connections), self.buffered)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, close every connection, wait for the workers. Idempotent."""
        if self.server is not None:
            self.server.close()
        connections = list(self.connections)
        for connection in connections:
            connection.close()
        workers = [c.worker for c in connections if c.worker is not None]
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None


async def start_http_api(
    handle: NodeHandle,
    host: str,
    port: int,
    *,
    auth: AuthConfig | None = None,
    limits: HttpLimits | None = None,
    region: str = "us-east-1",
    app: DynamoDBApp | None = None,
    metrics: HttpMetrics | None = None,
    ssl: SSLContext | None = None,  # HTTPS (runtime/tls.py); None: plain HTTP
) -> HttpApiServer:
    """Serve the DynamoDB API for ``handle`` on ``host:port`` (port 0 picks a free port)."""
    limits = limits or HttpLimits()
    api = app if app is not None else DynamoDBApp(
        handle, auth=auth, region=region, max_body_bytes=limits.max_body_bytes,
        compress_min_bytes=limits.compress_min_bytes)
    result = HttpApiServer(api, limits, host=host, metrics=metrics)
    loop = asyncio.get_running_loop()
    result.server = await loop.create_server(
        lambda: _Connection(result), host, port, reuse_address=True, backlog=1024, ssl=ssl
    )
    sockets = result.server.sockets
    if sockets:
        result.port = sockets[0].getsockname()[1]
    log.info("DynamoDB API listening on %s", result.endpoint)
    return result
