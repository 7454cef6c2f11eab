"""The DynamoDB-compatible application: one HTTP request in, one HTTP response out.

Owns: :class:`DynamoDBApp` -- authentication (SigV4), routing by ``X-Amz-Target``, decoding the
JSON body, running the operation, and shaping every outcome into DynamoDB's response: the JSON
body, ``x-amzn-RequestId``, ``x-amz-crc32`` (botocore checks it) and the error envelope
``{"__type": ..., "message": ...}`` with its HTTP status. What comes before an operation (health,
CORS, unknown methods, Content-Encoding both ways) is :mod:`dynamokv.api.front`'s; this module
only calls it in DynamoDB's order: CORS preflight, health, method and content type, signature,
target, body decoding, then the operation.
May import: stdlib, ``orjson``, :mod:`dynamokv.errors` and the modules of :mod:`dynamokv.api`;
never :mod:`dynamokv.runtime` (the HTTP server there calls this, transport-free, object).

Nothing escapes :meth:`DynamoDBApp.handle`: a DynamoDB error becomes its envelope and status,
an error of the cluster becomes the DynamoDB error an SDK retries (ThrottlingException for
overload, ServiceUnavailable 503 when no quorum could be reached, InternalServerError 500
otherwise), and any other exception is logged and answered with InternalServerError 500.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from dynamokv.api import bodies, constraints, front, response_json, streams
from dynamokv.api.errors import (
    DynamoDBError,
    InternalServerError,
    SerializationException,
    ServiceUnavailable,
    ThrottlingException,
    UnknownOperationException,
    ValidationException,
)
from dynamokv.api.handle import NodeHandle
from dynamokv.api.indexes.node import start_drain
from dynamokv.api.operations import batch as operations_batch
from dynamokv.api.operations import features as operations_features
from dynamokv.api.operations import items as operations_items
from dynamokv.api.operations import query as operations_query
from dynamokv.api.operations import scan as operations_scan
from dynamokv.api.operations import table_settings as operations_settings
from dynamokv.api.operations import table_update as operations_update
from dynamokv.api.operations import tables as operations_tables
from dynamokv.api.operations.common import ApiContext, Params, wrong_type
from dynamokv.api.schema.catalog import Catalog, TableInfo
from dynamokv.api.sigv4 import AuthConfig, payload_hash_of, verify_request
from dynamokv.api.transactions import coordinator as operations_transact
from dynamokv.errors import DynamoKVError, InvalidRequest, Overloaded, UnavailableError

log = logging.getLogger("dynamokv.api")

TARGET_PREFIX = "DynamoDB_20120810."
STREAMS_PREFIX = "DynamoDBStreams_20120810."  # same endpoint; operations named "Streams.<op>"
CONTENT_TYPE = "application/x-amz-json-1.0"
# Operations whose answer has no members: DynamoDB sends an empty body for them, not ``{}``.
EMPTY_ANSWERS = frozenset({"TagResource", "UntagResource"})
# Hashing, inflating and deflating release the GIL: above this size they run in a thread so
# that one large body does not hold the event loop.
OFFLOAD_BYTES = 256 * 1024

T = TypeVar("T")

Operation = Callable[[ApiContext, Params], Awaitable[dict[str, Any]]]

OPERATIONS: dict[str, Operation] = {
    "CreateTable": operations_tables.create_table,
    "DescribeTable": operations_tables.describe_table,
    "ListTables": operations_tables.list_tables,
    "DeleteTable": operations_tables.delete_table,
    "UpdateTable": operations_update.update_table,
    "TagResource": operations_settings.tag_resource,
    "UntagResource": operations_settings.untag_resource,
    "ListTagsOfResource": operations_settings.list_tags_of_resource,
    "DescribeTimeToLive": operations_settings.describe_time_to_live,
    "UpdateTimeToLive": operations_settings.update_time_to_live,
    "DescribeLimits": operations_settings.describe_limits,
    "DescribeContinuousBackups": operations_settings.describe_continuous_backups,
    "PutItem": operations_items.put_item,
    "GetItem": operations_items.get_item,
    "UpdateItem": operations_items.update_item,
    "DeleteItem": operations_items.delete_item,
    "Query": operations_query.query,
    "Scan": operations_scan.scan,
    "BatchGetItem": operations_batch.batch_get_item,
    "BatchWriteItem": operations_batch.batch_write_item,
    "TransactWriteItems": operations_transact.transact_write_items,
    "TransactGetItems": operations_transact.transact_get_items,
}
OPERATIONS.update({f"Streams.{name}": op for name, op in streams.OPERATIONS.items()})
OPERATIONS.update(operations_features.OPERATIONS)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def request_id(ids: Callable[[], uuid.UUID] | None = None) -> str:
    """52 characters of [A-Z0-9], the shape of DynamoDB's request ids (from ``ids`` when
    given, so a simulated run replays them). Without ``ids``: 26 random bytes in upper-case
    hex, which is C all the way (base32 is pure Python and cost ~3% of a GetItem)."""
    if ids is None:
        return os.urandom(26).hex().upper()
    raw = b"".join(ids().bytes for _ in range(3))[:35]
    return base64.b32encode(raw).decode("ascii")[:52].replace("=", "A")


def crc32(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


def translate(error: BaseException) -> DynamoDBError:
    """The DynamoDB error a client should see for any exception raised by an operation."""
    if isinstance(error, DynamoDBError):
        return error
    if isinstance(error, Overloaded):
        return ThrottlingException("Rate of requests exceeds the allowed throughput.")
    if isinstance(error, UnavailableError):
        return ServiceUnavailable(f"The service is unavailable: {error.message}")
    if isinstance(error, InvalidRequest):
        return ValidationException(error.message)
    if isinstance(error, DynamoKVError):
        return InternalServerError(f"Internal server error: {error.message}")
    if isinstance(error, TimeoutError):
        return InternalServerError("Internal server error: the request timed out")
    return InternalServerError()


def _stream_noter(handle: NodeHandle) -> Callable[[TableInfo], None] | None:
    """Tell a handle that flags streamed writes which tables have a stream, as the catalog
    learns it (``runtime.handle.ClusterHandle.note_stream``)."""
    note = getattr(handle, "note_stream", None)
    if note is None:
        return None
    note_indexes = getattr(handle, "note_indexes", None)

    def noter(info: TableInfo) -> None:
        note(info.bucket, streams.stream_enabled(info.description))
        if note_indexes is not None:  # writes of tables with global indexes are INDEXED
            note_indexes(info.bucket, bool(info.gsis))

    return noter


class DynamoDBApp:
    """A DynamoDB endpoint over a ``NodeHandle``; transport-agnostic (see runtime/http_api)."""

    def __init__(
        self,
        handle: NodeHandle,
        *,
        auth: AuthConfig | None = None,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        catalog_ttl: float = 3.0,
        request_timeout: float | None = 60.0,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None,
        ids: Callable[[], uuid.UUID] | None = None,
        rng: random.Random | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
        compress_min_bytes: int = 4096,
    ) -> None:
        """``clock`` (wall seconds), ``monotonic`` (the catalog cache's clock), ``ids`` and
        ``rng``: production's when ``None``; the simulator passes virtual and seeded ones."""
        self.auth = auth
        self.request_timeout = request_timeout
        self._ids = ids
        noter = _stream_noter(handle)
        catalog = (Catalog(handle, ttl=catalog_ttl, on_table=noter) if monotonic is None
                   else Catalog(handle, ttl=catalog_ttl, clock=monotonic, on_table=noter))
        self.region = region
        self.max_body_bytes = max_body_bytes
        self.compress_min_bytes = compress_min_bytes  # 0: never compress responses
        self.context = ApiContext(
            handle=handle,
            catalog=catalog,
            region=region,
            account_id=account_id,
        )
        if clock is not None:
            self.context.clock = clock
        if ids is not None:
            self.context.ids = ids
        if rng is not None:
            self.context.rng = rng
        self.stats: Counter[str] = Counter()
        self._timer = _RequestTimer()
        start_drain(self.context)  # the index outbox; at the first request without a loop

    async def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Answer one request. ``target`` is the request target (path and query);
        ``headers`` has lower-case names. Never raises (except on cancellation)."""
        rid = request_id(self._ids)
        if getattr(self.context.handle, "index_drain", True) is None:
            start_drain(self.context)
        cors = front.cors_headers(headers)
        if method == "OPTIONS" and cors:
            return Response(200, [("x-amzn-RequestId", rid), *front.preflight_headers(headers)],
                            b"")
        if method in ("GET", "HEAD") and front.is_health_path(target):
            health = front.health_body(self.region, headers.get("host"))
            return Response(200, [("x-amzn-RequestId", rid), ("x-amz-crc32", crc32(health)),
                                  *cors], health if method == "GET" else b"")
        if method != "POST" or front.refused_content_type(headers, body):
            self.stats["error:UnknownOperationException"] += 1
            return Response(404, [("x-amzn-RequestId", rid),
                                  ("x-amz-crc32", crc32(front.NOT_FOUND_BODY)), *cors],
                            b"" if method == "HEAD" else front.NOT_FOUND_BODY)  # HEAD: no body
        status, payload = await self._answer(method, target, headers, body, rid)
        out = [("x-amzn-RequestId", rid), ("Content-Type", front.response_type(headers)), *cors]
        coding = (front.accepted_coding(headers)
                  if self.compress_min_bytes and len(payload) >= self.compress_min_bytes
                  else None)  # parsed only for a body worth compressing (most are small)
        if coding is not None:
            payload = await _offload(len(payload), front.compress, payload, coding)
            out.append(("Content-Encoding", coding))
        # DynamoDB's checksum covers the bytes sent, compressed or not.
        out.append(("x-amz-crc32", crc32(payload)))
        return Response(status, out, payload)

    async def _answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                      rid: str) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        operation = "?"
        try:
            body_hash = None
            if self.auth is not None:
                body_hash = await _offload(len(body), payload_hash_of, body)
            verify_request(self.auth, method, path, query, headers, body, body_hash=body_hash)
            operation = self._operation(headers)
            body = await self._decoded(operation, headers, body)
            params = (Params(await bodies.decode_large(body, operation), large=True)
                      if bodies.is_large(body) else self._decode(body))
            constraints.check(operation, params.body)  # every model violation, at once
            front.precheck_items(operation, params.body)
            self.stats[operation] += 1
            result = await self._run(operation, params, headers)
            if not result and operation in EMPTY_ANSWERS:
                return 200, b""
            return 200, response_json.dumps(result)
        except Exception as exc:  # every failure becomes an envelope: never a crash
            error = translate(exc)
            if error.status >= 500 and not isinstance(exc, (DynamoDBError, DynamoKVError)):
                log.exception("%s failed (request %s)", operation, rid)
            self.stats["error:" + error.type] += 1
            return error.status, orjson.dumps(error.to_json())

    async def _decoded(self, operation: str, headers: Mapping[str, str], body: bytes) -> bytes:
        """The body with its Content-Encoding undone, within the operation's size cap."""
        cap = front.body_cap(operation, self.max_body_bytes)
        if headers.get("content-encoding"):
            body = await _offload(len(body), front.decode_body, headers, body, cap.limit)
        if len(body) > cap.limit:
            raise cap.error
        return body

    @staticmethod
    def _operation(headers: Mapping[str, str]) -> str:
        target = headers.get("x-amz-target", "")
        prefix, dot, name = target.partition(".")
        if prefix + dot == STREAMS_PREFIX and name in streams.OPERATIONS:
            return f"Streams.{name}"
        if not dot or prefix + "." != TARGET_PREFIX or (
            name not in OPERATIONS and name != "DescribeEndpoints"
        ):
            raise UnknownOperationException()
        return name

    @staticmethod
    def _decode(body: bytes) -> Params:
        if not body.strip():
            return Params({})
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SerializationException() from None
        if not isinstance(decoded, dict):
            raise wrong_type(decoded, "structure")
        return Params(decoded)

    async def _run(
        self, operation: str, params: Params, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        if operation == "DescribeEndpoints":
            return {
                "Endpoints": [
                    {"Address": headers.get("host", "localhost"), "CachePeriodInMinutes": 1440}
                ]
            }
        call = OPERATIONS[operation](self.context, params)
        if self.request_timeout is None:
            return await call
        task = asyncio.current_task()
        assert task is not None
        self._timer.start(task, self.request_timeout)
        try:
            return await call
        except asyncio.CancelledError:
            if self._timer.expired(task):
                raise TimeoutError from None
            raise
        finally:
            self._timer.stop(task)


class _RequestTimer:
    """The app's request timeout, with one loop timer for all requests in flight instead of
    one per request (``asyncio.timeout`` cost ~4% of a GetItem's CPU). Every request gets the
    same timeout, so deadlines come in start order: the timer waits for the oldest request's
    and, when it fires, cancels every task past its deadline and re-arms for the next one, if
    any. It is left armed when the last request ends (a GetItem often starts and ends within
    one loop step, and re-arming per request would cost what ``asyncio.timeout`` did), so an
    idle app keeps at most one timer, which fires once and is not renewed."""

    def __init__(self) -> None:
        self._deadlines: dict[asyncio.Task[Any], float] = {}  # in start order
        self._handle: asyncio.TimerHandle | None = None
        self._expired: set[asyncio.Task[Any]] = set()

    def start(self, task: asyncio.Task[Any], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._deadlines[task] = deadline
        if self._handle is None:
            self._handle = loop.call_at(deadline, self._fire)

    def stop(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()  # our cancellation is over (as ``asyncio.timeout`` leaves it)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` was cancelled by this timer alone (nobody else asked too)."""
        return task in self._expired and task.cancelling() <= 1

    def _fire(self) -> None:
        self._handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._deadlines.items()):
            if deadline > now:
                self._handle = loop.call_at(deadline, self._fire)
                return
            del self._deadlines[task]
            self._expired.add(task)
            task.cancel()


async def _offload(size: int, function: Callable[..., T], *args: Any) -> T:
    """Run a GIL-releasing byte transform in a thread when its input (``size``) is large."""
    if size <= OFFLOAD_BYTES:
        return function(*args)
    return await asyncio.to_thread(function, *args)
