"""Global secondary indexes over a real in-process cluster of three nodes (ClusterHandle: quorum
writes, eventually consistent reads, per-key Paxos), one API instance per node, each step
through another node: index reads follow puts, updates and deletes (polled with a bounded
wait, since the upkeep is asynchronous), an item whose indexed attribute a plain PutItem changed
leaves the old partition's results and its stale entry is retracted, paging through an index,
and an index created by UpdateTable is backfilled and then dropped when deleted."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.handle import NodeHandle
from dynamokv.runtime.server import RunningNode
from tests.api.test_gsi import GSIS, STAGE, TARGET, N, S, item, keys, table_spec
from tests.inprocess import start_inprocess_cluster

T = TypeVar("T")
TABLE = "orders"
WAIT = 20.0  # seconds any one eventual outcome may take


async def _cluster(root: Path, count: int = 3) -> list[RunningNode]:
    return await start_inprocess_cluster(root, count)


class Node:
    def __init__(self, handle: NodeHandle) -> None:
        self.handle = handle
        self.app = DynamoDBApp(handle, catalog_ttl=0.3)

    async def call(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                         orjson.dumps(body))
        return response.status, orjson.loads(response.body)

    async def ok(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        # Paxos contention may answer a retryable 503; SDKs retry it, so do we (bounded).
        for _ in range(20):
            status, out = await self.call(operation, body)
            if status == 200:
                return out
            assert status >= 500, (operation, out)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{operation} kept failing: {out}")

    async def query_all(self, index: str, cond: str, values: dict[str, Any], **kw: Any
                        ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start = None
        for _ in range(100):
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            out = await self.ok("Query", {"TableName": TABLE, "IndexName": index,
                                          "KeyConditionExpression": cond,
                                          "ExpressionAttributeValues": values, **kw, **extra})
            found += out["Items"]
            start = out.get("LastEvaluatedKey")
            if start is None:
                return found
        raise AssertionError("too many pages")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = WAIT) -> T:
    """Await ``check`` until it stops raising AssertionError (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def bucket_keys(handle: NodeHandle, bucket: str) -> int:
    count = 0
    after = None
    for _ in range(1000):
        page = await handle.scan(bucket, 0, 1, after, 500)
        count += len(page.items)
        if page.last_key is None:
            return count
        after = page.last_key
    raise AssertionError("scan did not end")


def test_index_reads_follow_writes_across_nodes(tmp_path: Path) -> None:
    async def main() -> None:
        running = await _cluster(tmp_path)
        try:
            nodes = [Node(n.handle) for n in running if n.handle is not None]
            a, b, c = nodes
            await a.ok("CreateTable", table_spec())
            for i in range(12):
                writer = nodes[i % 3]
                await writer.ok("PutItem", {"TableName": TABLE, "Item": item(
                    f"p{i % 4}", i, stage="open" if i % 3 else "done", amount=i, note=f"n{i}")})
            expected = [i for i in range(12) if i % 3]

            async def open_amounts(node: Node, want: list[int]) -> None:
                got = await node.query_all("by_stage", "stage = :s", STAGE, Limit=3)
                assert [int(x["amount"]["N"]) for x in got] == want
                assert all(set(x) == {"pk", "sk", "stage", "amount", "note"} for x in got)

            for node in nodes:
                await eventually(functools.partial(open_amounts, node, expected))
            # An update through a, a plain put through b (old entry left stale), a delete
            # through c that reads the old item.
            await a.ok("UpdateItem", {"TableName": TABLE, "Key": {"pk": S("p1"), "sk": N(1)},
                                      "UpdateExpression": "SET stage = :d",
                                      "ExpressionAttributeValues": {":d": S("done")}})
            await b.ok("PutItem", {"TableName": TABLE, "Item": item(
                "p2", 2, stage="done", amount=2)})
            await c.ok("DeleteItem", {"TableName": TABLE, "Key": {"pk": S("p0"), "sk": N(4)},
                                      "ReturnValues": "ALL_OLD"})
            await b.ok("UpdateItem", {"TableName": TABLE, "Key": {"pk": S("p3"), "sk": N(3)},
                                      "UpdateExpression": "SET stage = :o",
                                      "ExpressionAttributeValues": {":o": S("open")}})
            expected = [3, 5, 7, 8, 10, 11]
            for node in nodes:
                await eventually(functools.partial(open_amounts, node, expected))

            async def done_keys() -> None:
                got = await c.query_all("by_stage", "stage = :s", {":s": S("done")},
                                        ScanIndexForward=False)
                assert keys(got) == [("p1", 9), ("p2", 6), ("p2", 2), ("p1", 1), ("p0", 0)]

            await eventually(done_keys)
            # The stale entry the plain put left has been retracted by the reads that met it:
            # one entry per item with a stage.
            info = await a.app.context.catalog.require(TABLE)
            bucket = info.indexes["by_stage"].bucket
            assert bucket is not None

            async def entries() -> None:
                assert await bucket_keys(a.handle, bucket) == 11

            await eventually(entries)
            # KEYS_ONLY and a scan of an index.
            scanned = await c.ok("Scan", {"TableName": TABLE, "IndexName": "by_holder"})
            assert scanned["Count"] == 0
            status, out = await a.call("Query", {
                "TableName": TABLE, "IndexName": "by_stage", "ConsistentRead": True,
                "KeyConditionExpression": "stage = :s", "ExpressionAttributeValues": STAGE})
            assert status == 400 and "Consistent reads are not supported" in out["message"]
        finally:
            for n in running:
                await n.stop()

    asyncio.run(main())


def test_backfill_and_drop_across_nodes(tmp_path: Path) -> None:
    async def main() -> None:
        running = await _cluster(tmp_path)
        try:
            nodes = [Node(n.handle) for n in running if n.handle is not None]
            a, b, c = nodes
            await a.ok("CreateTable", table_spec(gsis=[], lsis=False))
            for i in range(30):
                await nodes[i % 3].ok("PutItem", {"TableName": TABLE, "Item": item(
                    f"p{i % 5}", i, holder=f"h{i % 2}" if i % 4 else None)})
            out = await b.ok("UpdateTable", {
                "TableName": TABLE,
                "AttributeDefinitions": [{"AttributeName": "holder", "AttributeType": "S"}],
                "GlobalSecondaryIndexUpdates": [{"Create": GSIS[1]}]})
            assert out["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"] == (
                "CREATING")
            # A write through another node while the index is being built.
            await c.ok("PutItem", {"TableName": TABLE, "Item": item("late", 99, holder="h1")})

            async def active() -> None:
                described = (await c.ok("DescribeTable", {"TableName": TABLE}))["Table"]
                # c's cached description may not list the index yet (catalog TTL).
                indexes = described.get("GlobalSecondaryIndexes") or [{}]
                assert indexes[0].get("IndexStatus") == "ACTIVE"

            await eventually(active)
            want = sorted([i for i in range(30) if i % 4 and i % 2 == 1] + [99])

            async def h1() -> None:
                got = await a.query_all("by_holder", "holder = :h", {":h": S("h1")}, Limit=4)
                assert sorted(int(x["sk"]["N"]) for x in got) == want
                assert all(set(x) == {"pk", "sk", "holder"} for x in got)

            await eventually(h1)
            info = await a.app.context.catalog.require(TABLE)
            bucket = info.indexes["by_holder"].bucket
            assert bucket is not None
            assert await bucket_keys(a.handle, bucket) == sum(1 for i in range(30) if i % 4) + 1
            await c.ok("UpdateTable", {"TableName": TABLE, "GlobalSecondaryIndexUpdates": [
                {"Delete": {"IndexName": "by_holder"}}]})

            async def dropped() -> None:
                assert await bucket_keys(b.handle, bucket) == 0

            await eventually(dropped)
        finally:
            for n in running:
                await n.stop()

    asyncio.run(main())


def test_long_names_large_keys_and_multi_attribute_keys_across_nodes(tmp_path: Path) -> None:
    """The index regressions on a real cluster: a 255-character index name (its bucket name
    stays within the node's limit), a legal 2048-byte index partition-key value and a
    2048-byte table partition key (the composed storage keys are longer than 2048 bytes), a
    multi-attribute key, a backfill over an item whose key the index cannot hold, and
    DeleteTable dropping the index's entries."""

    long_name = "x" * 255
    big = "b" * 2048

    async def main() -> None:
        running = await _cluster(tmp_path)
        try:
            a, b, c = [Node(n.handle) for n in running if n.handle is not None]
            await a.ok("CreateTable", {
                "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"}
                                         for n in ("pk", "g1", "g2", "r")],
                "GlobalSecondaryIndexes": [{
                    "IndexName": long_name, "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [{"AttributeName": "g1", "KeyType": "HASH"},
                                  {"AttributeName": "g2", "KeyType": "HASH"},
                                  {"AttributeName": "r", "KeyType": "RANGE"}]}]})
            for i, g2 in enumerate((big, "small", big)):
                await b.ok("PutItem", {"TableName": TABLE, "Item": {
                    "pk": S(f"{i}" * 2048), "g1": S("one"), "g2": S(g2), "r": S(f"r{i}"),
                    "s": S("y" * 1025 if i == 1 else f"s{i}")}})

            async def found() -> None:
                got = await c.query_all(long_name, "g1 = :a AND g2 = :b AND r >= :r",
                                        {":a": S("one"), ":b": S(big), ":r": S("r1")})
                assert [x["r"]["S"] for x in got] == ["r2"]

            await eventually(found)
            # An index over "s", which one item holds with 1025 bytes: too long for a sort key.
            await a.ok("UpdateTable", {
                "TableName": TABLE,
                "AttributeDefinitions": [{"AttributeName": "s", "AttributeType": "S"}],
                "GlobalSecondaryIndexUpdates": [{"Create": {
                    "IndexName": "by_s", "Projection": {"ProjectionType": "KEYS_ONLY"},
                    "KeySchema": [{"AttributeName": "g1", "KeyType": "HASH"},
                                  {"AttributeName": "s", "KeyType": "RANGE"}]}}]})

            async def active() -> None:
                described = (await b.ok("DescribeTable", {"TableName": TABLE}))["Table"]
                statuses = {i["IndexName"]: i["IndexStatus"]
                            for i in described.get("GlobalSecondaryIndexes") or ()}
                assert statuses.get("by_s") == "ACTIVE"

            await eventually(active)
            got = await c.query_all("by_s", "g1 = :a", {":a": S("one")})
            assert [x["s"]["S"] for x in got] == ["s0", "s2"]
            info = await a.app.context.catalog.require(TABLE)
            bucket = info.indexes[long_name].bucket
            assert bucket is not None and len(bucket.encode()) <= 255
            assert await bucket_keys(a.handle, bucket) == 3
            await c.ok("DeleteTable", {"TableName": TABLE})

            async def dropped() -> None:
                assert await bucket_keys(b.handle, bucket) == 0

            await eventually(dropped)
        finally:
            for n in running:
                await n.stop()

    asyncio.run(main())
