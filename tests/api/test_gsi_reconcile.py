"""The log-driven GSI upkeep's step (``api.indexes.drain.reconcile``) on a ``LocalHandle``: an
item's entries follow the item as it is now, whatever the outbox records' images say -- a move, a
record handled late (the item changed since), the same record handled twice, and an inexact
record (an entry replayed over a newer state: both images are the current item) that must
still write the live entry."""

from __future__ import annotations

import asyncio

import orjson

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.attributes import Item, item_from_wire
from dynamokv.api.indexes.drain import reconcile
from dynamokv.api.indexes.layout import entry_key
from dynamokv.api.layout.items import encode_item
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.schema.catalog import TableInfo

TARGET = "DynamoDB_20120810."


async def _setup() -> tuple[DynamoDBApp, LocalHandle, TableInfo]:
    handle = LocalHandle()
    app = DynamoDBApp(handle)
    body = {"TableName": "orders", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "city", "AttributeType": "S"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "by_city", "KeySchema": [{"AttributeName": "city",
                                                       "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}}]}
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + "CreateTable"},
                                orjson.dumps(body))
    assert response.status == 200, response.body
    info = await app.context.catalog.require("orders")
    return app, handle, info


def _item(city: str | None, n: int = 1) -> Item:
    wire = {"pk": {"S": "p"}, "n": {"N": str(n)}}
    if city is not None:
        wire["city"] = {"S": city}
    return item_from_wire(wire)


def _entries(handle: LocalHandle, info: TableInfo) -> dict[bytes, dict[str, object]]:
    bucket = info.indexes["by_city"].bucket
    assert bucket is not None
    stored = handle._buckets.get(bucket)
    return {k: orjson.loads(v) for k, v in (stored.data.items() if stored else ())}


def _key(info: TableInfo, item: Item) -> bytes:
    key = entry_key(info, info.indexes["by_city"], item)
    assert key is not None
    return key


def test_entries_follow_the_item_as_it_is_now_whatever_the_images_say() -> None:
    async def main() -> None:
        app, handle, info = await _setup()
        ctx = app.context
        base = info.storage_key(_item("oslo"))

        async def store(item: Item | None) -> bytes | None:
            raw = encode_item(item) if item is not None else None
            await handle.write(info.bucket, base, raw)
            return raw

        first = await store(_item("oslo"))
        await reconcile(ctx, info, base, [None, first])
        assert list(_entries(handle, info)) == [_key(info, _item("oslo"))]
        moved = await store(_item("rome", 2))  # a move: the old entry goes
        await reconcile(ctx, info, base, [first, moved])
        assert _entries(handle, info) == {_key(info, _item("rome")): {
            "pk": {"S": "p"}, "n": {"N": "2"}, "city": {"S": "rome"}}}
        await store(_item("lima", 3))  # the item changed before the next record was handled
        await reconcile(ctx, info, base, [first, moved])  # late: its images are outdated
        await reconcile(ctx, info, base, [first, moved])  # and handled twice
        assert list(_entries(handle, info)) == [_key(info, _item("lima"))]
        # An inexact record: the entry was lost with a crash, and the replayed record's
        # images are both the current item; the live entry is written all the same.
        bucket = info.indexes["by_city"].bucket
        assert bucket is not None
        await handle.write(bucket, _key(info, _item("lima")), None)
        current = encode_item(_item("lima", 3))
        await reconcile(ctx, info, base, [current, current])
        assert list(_entries(handle, info)) == [_key(info, _item("lima"))]
        gone = await store(_item(None, 4))  # the index key removed: no entry at all
        await reconcile(ctx, info, base, [current, gone])
        assert _entries(handle, info) == {}

    asyncio.run(main())
