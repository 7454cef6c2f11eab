"""The DynamoDB-compatible application: one HTTP request in, one HTTP response out.

Owns: :class:`DynamoDBApp` -- authentication (SigV4), routing by ``X-Amz-Target``, decoding the
JSON body, running the operation, and shaping every outcome into DynamoDB's response: the JSON
body, ``x-amzn-RequestId``, ``x-amz-crc32`` (botocore checks it) and the error envelope
``{"__type": ..., "message": ...}`` with its HTTP status. Also the health answer to ``GET /``.
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
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dynamokv.api import (
    operations_batch,
    operations_items,
    operations_query,
    operations_tables,
    operations_transact,
    streams,
)
from dynamokv.api.catalog import Catalog, TableInfo
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
from dynamokv.api.operations_common import ApiContext, Params, wrong_type
from dynamokv.api.sigv4 import AuthConfig, verify_request
from dynamokv.errors import DynamoKVError, InvalidRequest, Overloaded, UnavailableError

log = logging.getLogger("dynamokv.api")

TARGET_PREFIX = "DynamoDB_20120810."
STREAMS_PREFIX = "DynamoDBStreams_20120810."  # same endpoint; operations named "Streams.<op>"
CONTENT_TYPE = "application/x-amz-json-1.0"
HEALTH_BODY = b"healthy: dynamokv"

Operation = Callable[[ApiContext, Params], Awaitable[dict[str, Any]]]

OPERATIONS: dict[str, Operation] = {
    "CreateTable": operations_tables.create_table,
    "DescribeTable": operations_tables.describe_table,
    "ListTables": operations_tables.list_tables,
    "DeleteTable": operations_tables.delete_table,
    "UpdateTable": operations_tables.update_table,
    "TagResource": operations_tables.tag_resource,
    "UntagResource": operations_tables.untag_resource,
    "ListTagsOfResource": operations_tables.list_tags_of_resource,
    "DescribeTimeToLive": operations_tables.describe_time_to_live,
    "UpdateTimeToLive": operations_tables.update_time_to_live,
    "DescribeLimits": operations_tables.describe_limits,
    "DescribeContinuousBackups": operations_tables.describe_continuous_backups,
    "PutItem": operations_items.put_item,
    "GetItem": operations_items.get_item,
    "UpdateItem": operations_items.update_item,
    "DeleteItem": operations_items.delete_item,
    "Query": operations_query.query,
    "Scan": operations_query.scan,
    "BatchGetItem": operations_batch.batch_get_item,
    "BatchWriteItem": operations_batch.batch_write_item,
    "TransactWriteItems": operations_transact.transact_write_items,
    "TransactGetItems": operations_transact.transact_get_items,
}
OPERATIONS.update({f"Streams.{name}": op for name, op in streams.OPERATIONS.items()})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def request_id() -> str:
    """52 characters of [A-Z0-9], the shape of DynamoDB's request ids."""
    return base64.b32encode(os.urandom(35)).decode("ascii")[:52].replace("=", "A")


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
    return lambda info: note(info.bucket, streams.stream_enabled(info.description))


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
    ) -> None:
        self.auth = auth
        self.request_timeout = request_timeout
        self.context = ApiContext(
            handle=handle,
            catalog=Catalog(handle, ttl=catalog_ttl, on_table=_stream_noter(handle)),
            region=region,
            account_id=account_id,
        )
        self.stats: Counter[str] = Counter()

    async def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Answer one request. ``target`` is the request target (path and query);
        ``headers`` has lower-case names. Never raises (except on cancellation)."""
        rid = request_id()
        path, _, query = target.partition("?")
        if method in ("GET", "HEAD") and path == "/":
            return Response(
                200,
                [("x-amzn-RequestId", rid), ("Content-Type", "text/plain"),
                 ("x-amz-crc32", crc32(HEALTH_BODY))],
                HEALTH_BODY if method == "GET" else b"",
            )
        operation = "?"
        try:
            if method != "POST":
                raise UnknownOperationException(f"Method {method} is not supported")
            verify_request(self.auth, method, path, query, headers, body)
            operation = self._operation(headers)
            params = self._decode(body)
            self.stats[operation] += 1
            result = await self._run(operation, params, headers)
            payload = orjson.dumps(result)
            status = 200
        except Exception as exc:  # every failure becomes an envelope: never a crash
            error = translate(exc)
            if error.status >= 500 and not isinstance(exc, (DynamoDBError, DynamoKVError)):
                log.exception("%s failed (request %s)", operation, rid)
            self.stats["error:" + error.type] += 1
            status = error.status
            payload = orjson.dumps(error.to_json())
        return Response(
            status,
            [("x-amzn-RequestId", rid), ("x-amz-crc32", crc32(payload)),
             ("Content-Type", CONTENT_TYPE)],
            payload,
        )

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
        async with asyncio.timeout(self.request_timeout):
            return await call
