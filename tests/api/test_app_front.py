"""The HTTP front of the DynamoDB API, through raw HTTP and boto3 against an in-process server:
health, CORS, unknown methods and paths, Content-Encoding both ways, empty answers, the body
budget, per-client connection limits, the idle timeout and the early refusal of oversized item
writes."""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib
from collections.abc import Iterator

import orjson
import pytest
from botocore.exceptions import ClientError

from dynamokv.api.front import ITEM_BODY_CAP, accepted_coding
from dynamokv.runtime.http_api import HttpLimits
from tests.api.test_app_harness import ServerThread, make_table, served
from tests.api.test_app_http import error_type, exchange, read_response, request_bytes

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with served(limits=HttpLimits(compress_min_bytes=1024)) as server:
        make_table(server.client(), "front")
        yield server


def raw(method: str, path: str = "/", headers: dict[str, str] | None = None,
        body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def wait_until(check: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------ health, 404, CORS


@pytest.mark.parametrize("path", ["/", "/?x=1"])
def test_get_of_the_root_is_the_health_answer_naming_the_host(
        running: ServerThread, path: str) -> None:
    status, headers, body = exchange(running, raw("GET", path))
    assert status == 200
    assert body == b"healthy: localhost "  # the Host asked for, as DynamoDB's own name
    assert headers["x-amz-crc32"] == str(zlib.crc32(body))
    assert len(headers["x-amzn-requestid"]) == 52
    status, headers, body = exchange(running, raw("HEAD", path))
    assert status == 200 and body == b""


def test_health_without_a_host_names_the_region_endpoint(running: ServerThread) -> None:
    status, _, body = exchange(running, b"GET / HTTP/1.0\r\n\r\n")
    assert status == 200 and body == b"healthy: dynamodb.us-east-1.amazonaws.com "


@pytest.mark.parametrize("path", ["/ping", "/health", "/index.htm", "/-"])
def test_get_of_another_path_is_404(running: ServerThread, path: str) -> None:
    status, _, body = exchange(running, raw("GET", path))
    assert status == 404 and body == b"<UnknownOperationException/>\n"
    status, headers, body = exchange(running, raw("HEAD", path))
    assert status == 404 and body == b"" and headers["content-length"] == "0"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_404_unknown_operation(running: ServerThread, method: str) -> None:
    status, headers, body = exchange(running, raw(method))
    assert status == 404
    assert body == b"<UnknownOperationException/>\n"
    assert headers["x-amz-crc32"] == "3552371480"  # what DynamoDB sends with this body


def test_a_body_that_is_not_json_is_404(running: ServerThread) -> None:
    status, _, body = exchange(running, raw("POST", headers={
        "Content-Type": "text/plain", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
        body=b"{}"))
    assert status == 404 and body == b"<UnknownOperationException/>\n"
    status, headers, body = exchange(running, raw("POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "X-Amz-Target": "DynamoDB_20120810.ListTables"}, body=b"{}"))
    assert status == 200 and headers["content-type"] == "application/json"


def test_cors_origin_and_preflight(running: ServerThread) -> None:
    status, headers, _ = exchange(running, request_bytes(b"{}", extra="Origin: http://app\r\n"))
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    assert "x-amz-crc32" in headers["access-control-expose-headers"]
    status, headers, body = exchange(running, raw("OPTIONS", headers={
        "Origin": "http://app", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-amz-target, authorization"}))
    assert status == 200 and body == b""
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "POST"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-target, authorization"
    assert headers["access-control-max-age"] == "172800"
    assert "x-amz-crc32" in headers["access-control-expose-headers"]
    assert headers["content-length"] == "0"
    status, headers, _ = exchange(running, request_bytes(b"{}"))
    assert "access-control-allow-origin" not in headers


# ------------------------------------------------------------------------ content coding


def test_compressed_request_bodies(running: ServerThread) -> None:
    item = orjson.dumps({"TableName": "front", "Item": {"pk": {"S": "z"}, "v": {"S": "x" * 900}}})
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    for coding, body in [("gzip", gzip.compress(item)), ("deflate", zlib.compress(item)),
                         ("deflate", raw_deflate.compress(item) + raw_deflate.flush())]:
        status, _, payload = exchange(running, request_bytes(
            body, "PutItem", extra=f"Content-Encoding: {coding}\r\n"))
        assert status == 200, payload
    got = running.client().get_item(TableName="front", Key={"pk": {"S": "z"}})
    assert got["Item"]["v"]["S"] == "x" * 900


def test_gzip_members_one_after_another_are_one_body(running: ServerThread) -> None:
    item = orjson.dumps({"TableName": "front", "Item": {"pk": {"S": "two"}, "v": {"S": "w"}}})
    body = gzip.compress(item[:10]) + gzip.compress(item[10:])
    status, _, payload = exchange(running, request_bytes(
        body, "PutItem", extra="Content-Encoding: gzip\r\n"))
    assert status == 200, payload
    got = running.client().get_item(TableName="front", Key={"pk": {"S": "two"}})
    assert got["Item"]["v"]["S"] == "w"


@pytest.mark.parametrize("coding, body", [
    ("gzip", b"not gzip"),
    ("gzip", b""),
    ("gzip", gzip.compress(b"{}", mtime=0)[:-1]),
    ("gzip", gzip.compress(b"{}", mtime=0) + b"junk"),
    ("br", b"{}"),
    ("garbage", b"{}"),
])
def test_a_body_its_coding_cannot_undo_is_dynamodbs_500(
        running: ServerThread, coding: str, body: bytes) -> None:
    status, _, payload = exchange(running, request_bytes(
        body, extra=f"Content-Encoding: {coding}\r\n"))
    assert status == 500 and error_type(payload) == "InternalServerError"


def test_a_decompression_bomb_is_413() -> None:
    server = ServerThread(limits=HttpLimits(max_body_bytes=64 * 1024))
    try:
        bomb = gzip.compress(b'{"x": "' + b"a" * (1024 * 1024) + b'"}')
        assert len(bomb) < 64 * 1024
        status, _, payload = exchange(server, request_bytes(
            bomb, extra="Content-Encoding: gzip\r\n"))
        assert status == 413 and error_type(payload) == "ValidationException"
    finally:
        server.stop()


def test_responses_compressed_when_accepted_and_large(running: ServerThread) -> None:
    ddb = running.client()
    for i in range(4):
        ddb.put_item(TableName="front", Item={"pk": {"S": f"big{i}"}, "v": {"S": "y" * 2000}})
    scan = b'{"TableName": "front"}'
    for coding, decode in [("gzip", gzip.decompress), ("deflate", zlib.decompress)]:
        status, headers, body = exchange(running, request_bytes(
            scan, "Scan", extra=f"Accept-Encoding: {coding}\r\n"))
        assert status == 200 and headers["content-encoding"] == coding
        assert headers["x-amz-crc32"] == str(zlib.crc32(body))  # over the bytes sent
        assert json.loads(decode(body))["Count"] >= 4
    status, headers, body = exchange(running, request_bytes(
        scan, "Scan", extra="Accept-Encoding: gzip;q=0, identity\r\n"))
    assert "content-encoding" not in headers and json.loads(body)["Count"] >= 4
    status, headers, body = exchange(running, request_bytes(
        b"{}", "ListTables", extra="Accept-Encoding: gzip\r\n"))
    assert "content-encoding" not in headers  # below the size threshold
    assert ddb.scan(TableName="front")["Count"] >= 4  # boto3 asks for identity


@pytest.mark.parametrize("accept, chosen", [
    ("gzip, deflate", "gzip"),
    ("br, identity, deflate, gzip", "deflate"),  # the first one listed
    ("GZIP ,, dog", "gzip"),
    ("x-gzip", None),
    ('"gzip"', None),
    ("gzip br", None),
    ("deflate;q=0.5, gzip;q=0.2", "deflate"),
    ("deflate;q=0.5, gzip; q = 31", "gzip"),  # q above 1 counts as 1
    ("deflate;q=0.5, gzip;q=1;q=0.2", "gzip"),  # the first q counts
    ("deflate;q=0.5, gzip;q=0.x", "gzip"),  # a q that is no number counts as 1
    ("deflate;q=-0.5, gzip;q=0.2", "gzip"),
    ("gzip;q=0, gzip;q=1", "gzip"),
    ("gzip;nq=1;q=0", None),
    ("*", "gzip"),
    ("*, deflate", "deflate"),  # named beats admitted by *
    ("*, gzip;q=0.5", "deflate"),
    ("*;q=0.5, identity", "gzip"),
    ("br;q=0.8, identity;q=0.5, *;q=0", None),
    ("", None),
])
def test_the_response_coding_is_chosen_as_dynamodb_does(accept: str, chosen: str | None) -> None:
    assert accepted_coding({"accept-encoding": accept}) == chosen


def test_tag_resource_and_untag_resource_answer_an_empty_body(running: ServerThread) -> None:
    arn = running.client().describe_table(TableName="front")["Table"]["TableArn"]
    tag = {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]}
    untag = {"ResourceArn": arn, "TagKeys": ["k"]}
    for operation, body in [("TagResource", tag), ("UntagResource", untag)]:
        status, headers, payload = exchange(running, request_bytes(orjson.dumps(body), operation))
        assert status == 200 and payload == b"" and headers["x-amz-crc32"] == "0"
    assert running.client().list_tags_of_resource(ResourceArn=arn)["Tags"] == []


# ------------------------------------------------------------------------ early refusal by size


def test_a_put_item_far_above_400_kb_is_refused_unread(running: ServerThread) -> None:
    attributes = {f"a{i}": {"S": "x"} for i in range(ITEM_BODY_CAP // 16)}
    body = orjson.dumps({"TableName": "front", "Item": {"pk": {"S": "huge"}, **attributes}})
    assert len(body) > ITEM_BODY_CAP
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=30) as sock:
        buffer = bytearray()
        sock.sendall(request_bytes(body, "PutItem"))
        status, _, payload = read_response(sock, buffer)
        assert status == 400
        assert json.loads(payload)["message"] == "Item size has exceeded the maximum allowed size"
        sock.sendall(request_bytes(body.replace(b'"Item"', b'"Ikey"', 1), "UpdateItem"))
        status, _, payload = read_response(sock, buffer)
        assert json.loads(payload)["message"] == (
            "Item size to update has exceeded the maximum allowed size")
        sock.sendall(request_bytes(b"{}"))  # the connection is still usable
        assert read_response(sock, buffer)[0] == 200
    assert running.server.refused["item_too_large"] >= 2
    assert running.server.buffered == 0


def test_boto3_sees_the_item_size_error(running: ServerThread) -> None:
    item = {"pk": {"S": "huge"}} | {f"a{i}": {"S": "x"} for i in range(ITEM_BODY_CAP // 16)}
    with pytest.raises(ClientError) as info:
        running.client().put_item(TableName="front", Item=item)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["Error"]["Message"] == (
        "Item size has exceeded the maximum allowed size")


# ------------------------------------------------------------------------ budget and connections


def test_the_body_budget_refuses_new_bodies_and_recovers() -> None:
    server = ServerThread(limits=HttpLimits(max_buffered_bytes=1 * MIB))
    try:
        body = b'{"x": "' + b"a" * (700 * 1024) + b'"}'
        request = request_bytes(body)
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=20) as held:
            held.sendall(request[: len(request) - 10])  # holds 700 KiB of the 1 MiB budget
            assert wait_until(lambda: server.server.buffered >= len(body))
            status, _, payload = exchange(server, request)
            assert status == 503 and error_type(payload) == "ServiceUnavailable"
            assert b"too many request bytes" in payload
            chunked = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n\r\n")
            for _ in range(4):
                chunked += b"20000\r\n" + b" " * 0x20000 + b"\r\n"
            status, _, payload = exchange(server, chunked + b"2\r\n{}\r\n0\r\n\r\n")
            assert status == 503 and error_type(payload) == "ServiceUnavailable"
            held.sendall(request[len(request) - 10:])
            assert read_response(held, bytearray())[0] == 200  # the held body is served
        assert wait_until(lambda: server.server.buffered == 0)
        assert exchange(server, request)[0] == 200
        assert server.server.refused["buffer_full"] == 2
    finally:
        server.stop()


def test_connections_per_client_address() -> None:
    server = ServerThread(limits=HttpLimits(max_connections_per_client=2))
    try:
        held = [socket.create_connection(("127.0.0.1", server.server.port)) for _ in range(2)]
        status, _, payload = exchange(server, request_bytes(b"{}"))
        assert status == 503 and b"Too many open connections from 127.0.0.1" in payload
        held.pop().close()
        assert wait_until(lambda: server.server.per_client["127.0.0.1"] == 1)
        assert exchange(server, request_bytes(b"{}"))[0] == 200
        for sock in held:
            sock.close()
        assert server.server.refused["client_connections"] == 1
    finally:
        server.stop()


def test_idle_connections_are_closed() -> None:
    server = ServerThread(limits=HttpLimits(idle_timeout=0.3))
    try:
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
            sock.sendall(request_bytes(b"{}"))
            assert read_response(sock, bytearray())[0] == 200
            assert sock.recv(10) == b""  # closed by the server once idle
        assert server.server.refused["idle_timeout"] == 1
    finally:
        server.stop()


def test_an_item_whose_names_pass_400_kb_is_refused_before_conversion(
        running: ServerThread) -> None:
    item = {"pk": {"S": "names"}} | {f"attribute_{i:07d}": {"NULL": True} for i in range(25_000)}
    body = orjson.dumps({"TableName": "front", "Item": item})
    assert len(body) < ITEM_BODY_CAP  # under the size cap: parsed, then refused by its names
    status, _, payload = exchange(running, request_bytes(body, "PutItem"))
    assert status == 400
    assert json.loads(payload)["message"] == "Item size has exceeded the maximum allowed size"
    batch = orjson.dumps({"RequestItems": {"front": [{"PutRequest": {"Item": item}}]}})
    status, _, payload = exchange(running, request_bytes(batch, "BatchWriteItem"))
    assert status == 400
    assert json.loads(payload)["message"] == "Item size has exceeded the maximum allowed size"
    small = {"pk": {"S": "fine"}} | {f"a{i}": {"NULL": True} for i in range(7_000)}
    running.client().put_item(TableName="front", Item=small)  # many attributes, small item


def test_a_refused_body_behind_expect_continue_is_answered_at_once(
        running: ServerThread) -> None:
    head = (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {ITEM_BODY_CAP + 1}\r\n"
            "Expect: 100-continue\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=10) as sock:
        sock.sendall(head)  # no body is sent: the answer comes instead of 100 Continue
        status, headers, payload = read_response(sock, bytearray())
        assert status == 400 and headers["connection"] == "close"
        assert json.loads(payload)["message"] == "Item size has exceeded the maximum allowed size"
