"""The in-process server the app and boto3 tests run against, and a smoke test of it.

Owns: ``ServerThread`` -- an asyncio loop in a background thread serving
``dynamokv.runtime.http_api`` over a ``LocalHandle`` on 127.0.0.1 (port 0) -- and boto3 client
factories, ``served`` (a server for a ``with`` block) and ``refused`` (a call's error code
and message). Test modules import these helpers; this module's own tests check the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.sigv4 import AuthConfig
from dynamokv.runtime.http_api import HttpApiServer, HttpLimits, start_http_api

T = TypeVar("T")


class ServerThread:
    """A DynamoDB API server over a LocalHandle, on its own event loop thread."""

    def __init__(
        self,
        *,
        auth: AuthConfig | None = None,
        limits: HttpLimits | None = None,
        yield_points: bool = False,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.handle = LocalHandle(yield_points=yield_points)
        limits = limits or HttpLimits()
        self.app = DynamoDBApp(self.handle, auth=auth, max_body_bytes=limits.max_body_bytes,
                               compress_min_bytes=limits.compress_min_bytes)
        self.server: HttpApiServer = self.call(
            start_http_api(self.handle, "127.0.0.1", 0, limits=limits, app=self.app)
        )
        self.endpoint = self.server.endpoint

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def client(self, **kwargs: Any) -> Any:
        options = {
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "x",
            "aws_secret_access_key": "y",
            "config": Config(retries={"max_attempts": 1}),
        }
        options.update(kwargs)
        return boto3.client("dynamodb", **options)

    def resource(self) -> Any:
        return boto3.resource(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@contextlib.contextmanager
def served(**options: Any) -> Iterator[ServerThread]:
    """A ``ServerThread(**options)`` for the span of a ``with`` block, always stopped."""
    server = ServerThread(**options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with served() as running:
        yield running


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    """The error code and message of a call that must fail with a ClientError."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def make_table(client: Any, name: str = "t", *, sort: bool = False, sort_type: str = "S") -> None:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    defs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        defs.append({"AttributeName": "sk", "AttributeType": sort_type})
    client.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=defs, BillingMode="PAY_PER_REQUEST"
    )


def test_health_answer(server: ServerThread) -> None:
    with urllib.request.urlopen(server.endpoint + "/", timeout=5) as answer:
        assert answer.status == 200
        assert answer.read().startswith(b"healthy")


def test_list_tables_on_an_empty_node(server: ServerThread) -> None:
    assert server.client().list_tables()["TableNames"] == []
