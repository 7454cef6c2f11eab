"""The replicated catalog: two API nodes over one handle see the same tables and race safely."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.schema.catalog import CATALOG_BUCKET, Catalog

TARGET = "DynamoDB_20120810."


async def call(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                orjson.dumps(body))
    return response.status, orjson.loads(response.body)


def table(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_two_nodes_creating_one_table_race_safely() -> None:
    async def body() -> list[tuple[int, Any]]:
        shared = LocalHandle(yield_points=True)
        nodes = [DynamoDBApp(shared) for _ in range(4)]
        return await asyncio.gather(*(call(n, "CreateTable", table("raced")) for n in nodes))

    results = asyncio.run(body())
    assert [status for status, _ in results].count(200) == 1
    losers = [answer for status, answer in results if status != 200]
    assert all(a["__type"].endswith("#ResourceInUseException") for a in losers)


def test_tables_are_visible_from_every_node() -> None:
    async def body() -> None:
        shared = LocalHandle()
        a = DynamoDBApp(shared)
        b = DynamoDBApp(shared, catalog_ttl=0.0)
        assert (await call(a, "CreateTable", table("shared")))[0] == 200
        status, _ = await call(b, "PutItem", {"TableName": "shared", "Item": {"pk": {"S": "x"}}})
        assert status == 200
        status, answer = await call(a, "GetItem", {"TableName": "shared",
                                                   "Key": {"pk": {"S": "x"}}})
        assert answer["Item"] == {"pk": {"S": "x"}}
        assert (await call(b, "ListTables", {}))[1]["TableNames"] == ["shared"]
        assert (await call(a, "DeleteTable", {"TableName": "shared"}))[0] == 200
        # b caches nothing (ttl 0): it sees the deletion at once.
        status, answer = await call(b, "DescribeTable", {"TableName": "shared"})
        assert status == 400 and answer["__type"].endswith("#ResourceNotFoundException")
        await asyncio.sleep(0.01)  # let the background drop finish
        assert shared.bucket_size(CATALOG_BUCKET) == 0

    asyncio.run(body())


def test_catalog_cache_expires() -> None:
    async def body() -> None:
        now = [100.0]
        shared = LocalHandle()
        writer = Catalog(shared)
        reader = Catalog(shared, ttl=3.0, clock=lambda: now[0])
        await writer.create({**table("cached"), "TableId": "id-1", "CreationDateTime": 1.0})
        assert (await reader.get("cached")) is not None
        reads = shared.calls["read"]
        assert (await reader.get("cached")) is not None
        assert shared.calls["read"] == reads  # served from the cache
        await writer.delete("cached")
        assert (await reader.get("cached")) is not None  # stale for up to ttl
        now[0] += 3.5
        assert (await reader.get("cached")) is None

    asyncio.run(body())
