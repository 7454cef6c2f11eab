"""The HTTP server and the app's envelope: raw HTTP/1.1 requests, limits, keep-alive,
pipelining, error envelopes, and a fuzz of the request decoder."""

from __future__ import annotations

import asyncio
import json
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamokv.api.app import OPERATIONS, DynamoDBApp
from dynamokv.api.local_handle import LocalHandle
from dynamokv.runtime.http_api import HttpLimits
from tests.api.test_app_harness import ServerThread, served

TARGET = "DynamoDB_20120810."


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with served(limits=HttpLimits(max_body_bytes=64 * 1024, max_header_bytes=8 * 1024)) as server:
        server.client().create_table(
            TableName="http", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
        yield server


def request_bytes(body: bytes, operation: str | None = "ListTables",
                  extra: str = "", method: str = "POST") -> bytes:
    head = f"{method} / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
    head += "Content-Type: application/x-amz-json-1.0\r\n"
    if operation is not None:
        head += f"X-Amz-Target: {TARGET}{operation}\r\n"
    return (head + extra + "\r\n").encode() + body


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def exchange(server: ServerThread, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
        sock.sendall(raw)
        return read_response(sock, bytearray())


def error_type(body: bytes) -> str:
    return str(json.loads(body)["__type"]).rsplit("#", 1)[1]


def test_response_headers_like_dynamodb(running: ServerThread) -> None:
    status, headers, body = exchange(running, request_bytes(b"{}"))
    assert status == 200
    assert json.loads(body) == {"TableNames": ["http"]}
    assert len(headers["x-amzn-requestid"]) == 52
    assert headers["x-amz-crc32"] == str(zlib.crc32(body))
    assert headers["content-type"] == "application/x-amz-json-1.0"


@pytest.mark.parametrize(
    ("body", "operation", "status", "kind"),
    [
        (b"{not json", "ListTables", 400, "SerializationException"),
        (b"[1, 2]", "ListTables", 400, "SerializationException"),
        (b'"text"', "ListTables", 400, "SerializationException"),
        (b"{}", "NoSuchOperation", 400, "UnknownOperationException"),
        (b"{}", None, 400, "UnknownOperationException"),
        (b'{"TableName": "nope"}', "DescribeTable", 400, "ResourceNotFoundException"),
        (b'{"TableName": 7}', "DescribeTable", 400, "SerializationException"),
        (b"{}", "DescribeTable", 400, "ValidationException"),
        (b'{"TableName": "http", "Key": []}', "GetItem", 400, "SerializationException"),
        (b'{"TableName": "http", "Item": {"pk": {"S": "a", "N": "1"}}}', "PutItem", 400,
         "ValidationException"),
    ],
)
def test_error_envelopes(running: ServerThread, body: bytes, operation: str | None,
                         status: int, kind: str) -> None:
    got_status, headers, payload = exchange(running, request_bytes(body, operation))
    assert got_status == status
    assert error_type(payload) == kind
    assert headers["x-amz-crc32"] == str(zlib.crc32(payload))


def test_oversized_body_is_413_and_closes(running: ServerThread) -> None:
    body = b'{"x": "' + b"a" * (70 * 1024) + b'"}'
    status, headers, _ = exchange(running, request_bytes(body))
    assert status == 413
    assert headers.get("connection") == "close"


def test_oversized_headers_are_431(running: ServerThread) -> None:
    status, _, _ = exchange(running, request_bytes(b"{}", extra=f"X-Big: {'b' * 9000}\r\n"))
    assert status == 431


def test_garbage_is_400(running: ServerThread) -> None:
    status, _, _ = exchange(running, b"\x00\x01 not http at all\r\n\r\n")
    assert status == 400


def test_keep_alive_and_pipelining(running: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=10) as sock:
        buffer = bytearray()
        for _ in range(3):  # sequential requests on one connection
            sock.sendall(request_bytes(b"{}"))
            assert read_response(sock, buffer)[0] == 200
        puts = [
            request_bytes(orjson.dumps({"TableName": "http", "Item": {
                "pk": {"S": "pipe"}, "n": {"N": str(i)}}}), "PutItem")
            for i in range(20)
        ]
        get = request_bytes(b'{"TableName": "http", "Key": {"pk": {"S": "pipe"}}}', "GetItem")
        sock.sendall(b"".join(puts) + get)  # pipelined: answered in order
        for _ in puts:
            assert read_response(sock, buffer)[0] == 200
        status, _, body = read_response(sock, buffer)
        assert status == 200 and json.loads(body)["Item"]["n"] == {"N": "19"}


def test_chunked_body_and_expect_continue(running: ServerThread) -> None:
    body = b"{}"
    raw = (f"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           f"X-Amz-Target: {TARGET}ListTables\r\n\r\n").encode()
    raw += f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    assert exchange(running, raw)[0] == 200
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=10) as sock:
        head = request_bytes(body, extra="Expect: 100-continue\r\n")[: -len(body)]
        sock.sendall(head)
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert read_response(sock, bytearray())[0] == 200


def test_http_10_closes_after_the_response(running: ServerThread) -> None:
    raw = request_bytes(b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=10) as sock:
        sock.sendall(raw)
        assert read_response(sock, bytearray())[0] == 200
        assert sock.recv(10) == b""


def test_connection_limit() -> None:
    server = ServerThread(limits=HttpLimits(max_connections=2))
    try:
        held = [socket.create_connection(("127.0.0.1", server.server.port)) for _ in range(2)]
        status, _, body = exchange(server, request_bytes(b"{}"))
        assert status == 503 and error_type(body) == "ServiceUnavailable"
        for sock in held:
            sock.close()
    finally:
        server.stop()


# ------------------------------------------------------------------------ app level


async def _app_with_table() -> DynamoDBApp:
    app = DynamoDBApp(LocalHandle(yield_points=True))
    body = orjson.dumps({
        "TableName": "tbl",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{"IndexName": "gix", "KeySchema": [
            {"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}],
    })
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + "CreateTable"}, body)
    assert response.status == 200, response.body
    for i in range(3):
        item = {"pk": {"S": "a"}, "sk": {"N": str(i)}, "g": {"S": "x"}, "v": {"L": [{"N": "1"}]}}
        await app.handle("POST", "/", {"x-amz-target": TARGET + "PutItem"},
                         orjson.dumps({"TableName": "tbl", "Item": item}))
    return app


async def call(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                orjson.dumps(body))
    return response.status, orjson.loads(response.body)


def test_racing_conditional_puts_at_the_app_level() -> None:
    async def body() -> list[int]:
        app = await _app_with_table()
        requests = [
            call(app, "PutItem", {"TableName": "tbl", "Item": {"pk": {"S": "r"}, "sk": {"N": "0"},
                                                             "w": {"N": str(i)}},
                                  "ConditionExpression": "attribute_not_exists(pk)"})
            for i in range(20)
        ]
        return [status for status, _ in await asyncio.gather(*requests)]

    statuses = asyncio.run(body())
    assert statuses.count(200) == 1 and statuses.count(400) == 19


def test_racing_transactions_conflict_or_serialize() -> None:
    async def body() -> tuple[list[int], Any]:
        app = await _app_with_table()
        await call(app, "PutItem", {"TableName": "tbl", "Item": {
            "pk": {"S": "acct"}, "sk": {"N": "0"}, "bal": {"N": "100"}}})

        def withdraw() -> Any:
            return call(app, "TransactWriteItems", {"TransactItems": [
                {"Update": {"TableName": "tbl", "Key": {"pk": {"S": "acct"}, "sk": {"N": "0"}},
                            "UpdateExpression": "SET bal = bal - :a",
                            "ConditionExpression": "bal >= :a",
                            "ExpressionAttributeValues": {":a": {"N": "30"}}}},
            ]})

        results = await asyncio.gather(*(withdraw() for _ in range(10)))
        _, item = await call(app, "GetItem", {"TableName": "tbl", "Key": {
            "pk": {"S": "acct"}, "sk": {"N": "0"}}})
        return [status for status, _ in results], item

    statuses, item = asyncio.run(body())
    successes = statuses.count(200)
    assert 1 <= successes <= 3
    assert item["Item"]["bal"] == {"N": str(100 - 30 * successes)}


# ------------------------------------------------------------------------ fuzz

FIELDS = [
    "TableName", "Key", "Item", "KeySchema", "AttributeDefinitions", "ConditionExpression",
    "UpdateExpression", "ProjectionExpression", "FilterExpression", "KeyConditionExpression",
    "ExpressionAttributeNames", "ExpressionAttributeValues", "ReturnValues", "Limit",
    "ExclusiveStartKey", "Select", "IndexName", "Segment", "TotalSegments", "RequestItems",
    "TransactItems", "ConsistentRead", "ScanIndexForward", "BillingMode", "ClientRequestToken",
    "ReturnConsumedCapacity", "Keys", "PutRequest", "DeleteRequest", "Put", "Update", "Get",
    "S", "N", "B", "M", "L", "SS", "NS", "BOOL", "NULL", "pk", "sk", "g", "#n", ":v", "tbl",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
    st.sampled_from(["tbl", "pk", "sk", "a", "1", "", "pk = :v", "SET #n = :v", "#n", ":v",
                     "ALL_NEW", "COUNT", "gix", "x" * 300]),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=5)), inner,
                        max_size=5),
    ),
    max_leaves=25,
)
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6).map(
        lambda d: {"TableName": "tbl", **d} if "TableName" not in d else d
    ),
    JSON,
)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(operation=st.sampled_from(sorted(OPERATIONS)), body=BODIES)
def test_random_requests_get_envelopes_never_500(operation: str, body: Any) -> None:
    async def run() -> tuple[int, bytes]:
        app = await _app_with_table()
        response = await app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                    orjson.dumps(body))
        return response.status, response.body

    status, payload = asyncio.run(run())
    decoded = orjson.loads(payload)
    assert status in (200, 400), (status, decoded)
    if status == 400:
        assert set(decoded) >= {"__type", "message"}
        assert "#" in decoded["__type"]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_get_envelopes(raw: bytes) -> None:
    async def run() -> int:
        app = DynamoDBApp(LocalHandle())
        response = await app.handle("POST", "/", {"x-amz-target": TARGET + "PutItem"}, raw)
        return response.status

    assert asyncio.run(run()) == 400
