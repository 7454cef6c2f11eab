"""Global secondary indexes stored in their own buckets (dynamokv.api.indexes), on a
``LocalHandle`` through the app (and, at the end, through HTTP with boto3): the entry layout,
upkeep after every kind of write, projections, items without the index keys, an indexed
attribute that changes (by UpdateItem, and by a plain PutItem that leaves a stale entry which
reads drop and retract), paging and key conditions on the index sort key, Scan of an index,
backfill of an index created by UpdateTable (and its takeover when the backfilling node is
gone), dropping the buckets of deleted indexes and tables, the inline fallback of a full queue,
local secondary indexes read by partition, and the errors."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from decimal import Decimal
from typing import Any, TypeVar

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.attributes import item_from_wire
from dynamokv.api.indexes.layout import entry_key
from dynamokv.api.indexes.node import work
from dynamokv.api.indexes.upkeep import Change, IndexWork
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.schema.catalog import TableInfo
from dynamokv.runtime.http_api import HttpApiServer, start_http_api

TARGET = "DynamoDB_20120810."
TABLE = "orders"
T = TypeVar("T")


def arun(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


class Api:
    """One node's app over a handle, with a short catalog TTL so backfills start quickly."""

    def __init__(self, handle: Any = None, ttl: float = 0.05) -> None:
        self.handle = handle if handle is not None else LocalHandle()
        self.app = DynamoDBApp(self.handle, catalog_ttl=ttl)

    @property
    def work(self) -> IndexWork:
        return work(self.app.context)

    async def call(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                         orjson.dumps(body))
        return response.status, orjson.loads(response.body)

    async def ok(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        status, out = await self.call(operation, body)
        assert status == 200, (operation, out)
        return out

    async def error(self, operation: str, body: dict[str, Any]) -> tuple[str, str]:
        status, out = await self.call(operation, body)
        assert status == 400, (operation, out)
        return out["__type"].split("#")[-1], out["message"]

    async def settle(self) -> None:
        await self.work.idle()

    async def table(self, name: str = TABLE) -> TableInfo:
        return await self.app.context.catalog.require(name)

    async def put(self, pk: str, sk: int, **attrs: Any) -> None:
        await self.ok("PutItem", {"TableName": TABLE, "Item": item(pk, sk, **attrs)})

    async def query(self, index: str, cond: str, values: dict[str, Any], **kw: Any
                    ) -> dict[str, Any]:
        return await self.ok("Query", {"TableName": TABLE, "IndexName": index,
                                       "KeyConditionExpression": cond,
                                       "ExpressionAttributeValues": values, **kw})

    async def index_size(self, index: str, table: str = TABLE) -> int:
        info = await self.table(table)
        bucket = info.indexes[index].bucket
        assert bucket is not None and isinstance(self.handle, LocalHandle)
        return self.handle.bucket_size(bucket)


def wire(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    return {"S": value}


def item(pk: str, sk: int, **attrs: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)},
            **{k: wire(v) for k, v in attrs.items() if v is not None}}


def keys(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(i["pk"]["S"], int(i["sk"]["N"])) for i in items]


def S(value: str) -> dict[str, Any]:
    return {"S": value}


def N(value: Any) -> dict[str, Any]:
    return {"N": str(value)}

GSIS = [
    {"IndexName": "by_stage",
     "KeySchema": [{"AttributeName": "stage", "KeyType": "HASH"},
                   {"AttributeName": "amount", "KeyType": "RANGE"}],
     "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}},
    {"IndexName": "by_holder",
     "KeySchema": [{"AttributeName": "holder", "KeyType": "HASH"}],
     "Projection": {"ProjectionType": "KEYS_ONLY"}},
    {"IndexName": "by_tag",
     "KeySchema": [{"AttributeName": "tag", "KeyType": "HASH"}],
     "Projection": {"ProjectionType": "ALL"}},
]
LSIS = [
    {"IndexName": "by_grade",
     "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "grade", "KeyType": "RANGE"}],
     "Projection": {"ProjectionType": "KEYS_ONLY"}},
]


def table_spec(name: str = TABLE, *, gsis: list[dict[str, Any]] | None = None,
               lsis: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t}
            for n, t in (("pk", "S"), ("sk", "N"), ("stage", "S"), ("amount", "N"),
                         ("holder", "S"), ("tag", "S"), ("grade", "N"))
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": GSIS if gsis is None else gsis,
    }
    if lsis:
        spec["LocalSecondaryIndexes"] = LSIS
    used = {"pk", "sk"} | {e["AttributeName"] for i in spec["GlobalSecondaryIndexes"]
                           for e in i["KeySchema"]}
    if lsis:
        used.add("grade")
    spec["AttributeDefinitions"] = [d for d in spec["AttributeDefinitions"]
                                    if d["AttributeName"] in used]
    if not spec["GlobalSecondaryIndexes"]:
        del spec["GlobalSecondaryIndexes"]
    return spec


async def make(**kw: Any) -> Api:
    api = Api(**kw)
    await api.ok("CreateTable", table_spec())
    return api


STAGE = {":s": S("open")}


# ------------------------------------------------------------------------------ layout


@arun
async def test_an_entry_is_keyed_by_index_key_then_base_key_and_holds_the_projection() -> None:
    api = await make()
    await api.put("p", 1, stage="open", amount=5, note="n", extra="x", holder="ann")
    await api.settle()
    info = await api.table()
    index = info.indexes["by_stage"]
    assert index.bucket is not None and index.bucket.startswith(info.bucket + ".gsi.")
    assert isinstance(api.handle, LocalHandle)
    stored = api.handle._buckets[index.bucket].data
    expected_key = entry_key(info, index, item_from_wire(item("p", 1, stage="open", amount=5)))
    assert expected_key is not None and list(stored) == [expected_key]
    assert orjson.loads(stored[expected_key]) == {
        "pk": S("p"), "sk": N(1), "stage": S("open"), "amount": N(5), "note": S("n")}
    holder = info.indexes["by_holder"]
    assert holder.bucket is not None
    assert orjson.loads(next(iter(api.handle._buckets[holder.bucket].data.values()))) == {
        "pk": S("p"), "sk": N(1), "holder": S("ann")}
    assert await api.index_size("by_tag") == 0  # no tag: not in that index


@arun
async def test_a_gsi_query_reads_the_index_not_the_table() -> None:
    api = await make()
    for i in range(20):
        await api.put("p", i, stage="open" if i % 2 else "done", amount=i)
    await api.settle()
    assert isinstance(api.handle, LocalHandle)
    scans = api.handle.calls.get("scan", 0)
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert [int(i["amount"]["N"]) for i in out["Items"]] == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert api.handle.calls.get("scan", 0) == scans


# ------------------------------------------------------------------------------ upkeep


@arun
async def test_puts_updates_and_deletes_keep_the_index_up_to_date() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=10)
    await api.put("a", 2, stage="open", amount=20)
    await api.put("b", 1, stage="done", amount=30)
    await api.settle()
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 1), ("a", 2)]
    await api.ok("UpdateItem", {
        "TableName": TABLE, "Key": {"pk": S("b"), "sk": N(1)},
        "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "stage"},
        "ExpressionAttributeValues": STAGE})
    await api.ok("DeleteItem", {"TableName": TABLE, "Key": {"pk": S("a"), "sk": N(1)},
                                "ReturnValues": "ALL_OLD"})
    await api.settle()
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 2), ("b", 1)]
    # UpdateItem and the DeleteItem that read the old item removed the old entries outright.
    assert await api.index_size("by_stage") == 2
    await api.ok("UpdateItem", {
        "TableName": TABLE, "Key": {"pk": S("a"), "sk": N(2)}, "UpdateExpression": "REMOVE #s",
        "ExpressionAttributeNames": {"#s": "stage"}})
    await api.settle()
    assert await api.index_size("by_stage") == 1
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("b", 1)]


@arun
async def test_items_without_the_index_keys_are_not_indexed() -> None:
    api = await make()
    await api.put("a", 1, stage="open")  # no amount: the index's sort key is missing
    await api.put("a", 2, amount=3)  # no stage
    await api.put("a", 3)
    await api.put("a", 4, stage="open", amount=1)
    await api.settle()
    assert await api.index_size("by_stage") == 1
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 4)]
    assert (await api.ok("Scan", {"TableName": TABLE, "IndexName": "by_stage"}))["Count"] == 1


@arun
async def test_projection_types() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1, holder="ann", tag="t", note="hi", extra="x")
    await api.settle()
    include = (await api.query("by_stage", "stage = :s", STAGE))["Items"][0]
    assert set(include) == {"pk", "sk", "stage", "amount", "note"}
    keys_only = (await api.query("by_holder", "holder = :o", {":o": S("ann")}))["Items"][0]
    assert set(keys_only) == {"pk", "sk", "holder"}
    everything = (await api.query("by_tag", "tag = :t", {":t": S("t")}))["Items"][0]
    assert set(everything) == {"pk", "sk", "stage", "amount", "holder", "tag", "note", "extra"}
    # A projection expression sees only projected attributes; Select as DynamoDB allows.
    out = await api.query("by_stage", "stage = :s", STAGE, ProjectionExpression="note, extra")
    assert out["Items"] == [{"note": S("hi")}]
    out = await api.query("by_stage", "stage = :s", STAGE, Select="ALL_PROJECTED_ATTRIBUTES")
    assert set(out["Items"][0]) == set(include)
    out = await api.query("by_tag", "tag = :t", {":t": S("t")}, Select="ALL_ATTRIBUTES")
    assert set(out["Items"][0]) == set(everything)
    kind, message = await api.error("Query", {
        "TableName": TABLE, "IndexName": "by_holder", "KeyConditionExpression": "holder = :o",
        "ExpressionAttributeValues": {":o": S("ann")}, "Select": "ALL_ATTRIBUTES"})
    assert kind == "ValidationException" and "projection type is not ALL" in message
    # A filter sees the projection only: `extra` is not in by_stage.
    out = await api.query("by_stage", "stage = :s", STAGE, FilterExpression="extra = :x",
                          ExpressionAttributeValues={**STAGE, ":x": S("x")})
    assert out["Count"] == 0 and out["ScannedCount"] == 1


@arun
async def test_answers_carry_the_base_items_current_attributes() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1, note="old")
    await api.settle()
    api.work.limit = 0  # nothing queued: upkeep inline (and below, no repair either)
    await api.put("a", 1, stage="open", amount=1, note="new")
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert out["Items"][0]["note"] == S("new")


@arun
async def test_a_plain_put_that_moves_the_item_leaves_a_stale_entry_that_reads_drop() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1)
    await api.put("a", 2, stage="open", amount=2)
    await api.settle()
    # A plain PutItem does not read the old item: the "open" entry of a/1 stays behind...
    await api.put("a", 1, stage="done", amount=1)
    await api.settle()
    assert await api.index_size("by_stage") == 3
    # ... but a read checks every entry against the base item and drops it,
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 2)]
    assert out["Count"] == 1 and out["ScannedCount"] == 1
    # ... and retracts it in the background.
    await api.settle()
    assert await api.index_size("by_stage") == 2
    assert api.work.stats["stale"] == 1
    done = await api.query("by_stage", "stage = :s", {":s": S("done")})
    assert keys(done["Items"]) == [("a", 1)]


@arun
async def test_a_stale_entry_is_dropped_even_when_the_item_moves_within_the_partition() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1)
    await api.put("a", 1, stage="open", amount=9)  # plain put: the amount=1 entry is stale
    await api.settle()
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert [i["amount"] for i in out["Items"]] == [N(9)]


@arun
async def test_deleted_items_are_dropped_from_index_reads() -> None:
    api = await make()
    for i in range(4):
        await api.put("a", i, stage="open", amount=i)
    await api.settle()
    await api.ok("DeleteItem", {"TableName": TABLE, "Key": {"pk": S("a"), "sk": N(0)}})
    await api.ok("BatchWriteItem", {"RequestItems": {TABLE: [
        {"DeleteRequest": {"Key": {"pk": S("a"), "sk": N(1)}}},
        {"PutRequest": {"Item": item("a", 9, stage="open", amount=9)}}]}})
    await api.settle()
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert [int(i["amount"]["N"]) for i in out["Items"]] == [2, 3, 9]
    scanned = await api.ok("Scan", {"TableName": TABLE, "IndexName": "by_stage"})
    assert scanned["Count"] == 3
    await api.settle()
    assert await api.index_size("by_stage") == 3


@arun
async def test_transactions_maintain_the_index() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1)
    await api.put("a", 2, stage="open", amount=2)
    await api.settle()
    await api.ok("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": item("a", 3, stage="open", amount=3)}},
        {"Update": {"TableName": TABLE, "Key": {"pk": S("a"), "sk": N(1)},
                    "UpdateExpression": "SET #s = :d", "ExpressionAttributeNames": {"#s": "stage"},
                    "ExpressionAttributeValues": {":d": S("done")}}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": S("a"), "sk": N(2)}}},
    ]})
    await api.settle()
    assert await api.index_size("by_stage") == 2  # old entries of a/1 and a/2 are gone
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 3)]
    done = await api.query("by_stage", "stage = :s", {":s": S("done")})
    assert keys(done["Items"]) == [("a", 1)]


@arun
async def test_a_full_queue_does_the_upkeep_inline() -> None:
    api = await make()
    api.work.limit = 0
    await api.put("a", 1, stage="open", amount=1)
    assert not api.work.busy and api.work.stats["inline"] == 1
    assert await api.index_size("by_stage") == 1


@arun
async def test_a_delayed_job_never_removes_a_live_entry() -> None:
    """A job that retracts an entry the base item has again (a later write raced with it) puts
    the entry back after the delete."""
    api = await make()
    await api.put("a", 1, stage="open", amount=1)
    await api.settle()
    info = await api.table()
    base = info.storage_key(item_from_wire(item("a", 1)))
    stale = Change(info, base, item_from_wire(item("a", 1, stage="open", amount=1)),
                    item_from_wire(item("a", 1, stage="done", amount=1)))
    await api.work.run(stale)  # as if "open -> done" had been delayed past "done -> open"
    assert api.work.stats["restored"] == 1
    out = await api.query("by_stage", "stage = :s", STAGE)
    assert keys(out["Items"]) == [("a", 1)]


@arun
async def test_writes_to_tables_without_global_indexes_queue_nothing() -> None:
    api = Api()
    await api.ok("CreateTable", table_spec(gsis=[]))
    await api.put("a", 1, grade=3)
    assert api.app.context.index_work is None


# ------------------------------------------------------------------------------ reads


@arun
async def test_key_conditions_on_the_index_sort_key() -> None:
    api = await make()
    amounts = [Decimal(v) for v in ("-100", "-10.5", "-10", "-1", "-0.5", "0", "0.25", "1",
                                    "9.75", "10", "10.5", "1e3")]
    for i, amount in enumerate(amounts):
        await api.put("p", i, stage="open", amount=amount)
        await api.put("q", i, stage="open", amount=amount)  # two base items per amount
    await api.settle()
    cases: list[tuple[str, dict[str, Any], Callable[[Decimal], bool]]] = [
        ("amount = :a", {":a": N(-10)}, lambda v: v == -10),
        ("amount < :a", {":a": N(-10)}, lambda v: v < -10),
        ("amount <= :a", {":a": N(-10)}, lambda v: v <= -10),
        ("amount > :a", {":a": N(-10)}, lambda v: v > -10),
        ("amount >= :a", {":a": N(-10)}, lambda v: v >= -10),
        ("amount <= :a", {":a": N(10)}, lambda v: v <= 10),
        ("amount > :a", {":a": N(0)}, lambda v: v > 0),
        ("amount BETWEEN :a AND :b", {":a": N(-10.5), ":b": N(1)}, lambda v: -10.5 <= v <= 1),
        ("amount BETWEEN :a AND :b", {":a": N(-1), ":b": N(-1)}, lambda v: v == -1),
    ]
    for cond, values, keep in cases:
        expected = sorted(v for v in amounts if keep(v))
        for forward in (True, False):
            out = await api.query("by_stage", f"stage = :s AND {cond}", {**STAGE, **values},
                                  ScanIndexForward=forward)
            got = [Decimal(i["amount"]["N"]) for i in out["Items"]]
            want = [v for v in expected for _ in range(2)]
            assert got == (want if forward else want[::-1]), (cond, values, forward)
            # Ties on the index key come in base key order.
            pks = [i["pk"]["S"] for i in out["Items"]]
            assert pks == (["p", "q"] * len(expected) if forward else ["q", "p"] * len(expected))


@arun
async def test_begins_with_on_a_string_index_sort_key() -> None:
    api = Api()
    spec = table_spec(gsis=[{
        "IndexName": "by_city", "Projection": {"ProjectionType": "KEYS_ONLY"},
        "KeySchema": [{"AttributeName": "holder", "KeyType": "HASH"},
                      {"AttributeName": "tag", "KeyType": "RANGE"}]}], lsis=False)
    await api.ok("CreateTable", spec)
    tags = ["a", "ab", "abc", "abd", "b", "a\u00e9", ""]
    for i, tag in enumerate(tags):
        if tag:
            await api.put("p", i, holder="o", tag=tag)
    await api.settle()
    out = await api.query("by_city", "holder = :o AND begins_with(tag, :t)",
                          {":o": S("o"), ":t": S("ab")})
    assert [i["tag"]["S"] for i in out["Items"]] == ["ab", "abc", "abd"]


@arun
async def test_paging_through_an_index() -> None:
    api = await make()
    expected = []
    for i in range(23):
        await api.put(f"p{i % 5}", i, stage="open", amount=i % 7)
        expected.append((i % 7, f"p{i % 5}", i))
    await api.put("z", 0, stage="done", amount=1)
    await api.settle()
    expected.sort(key=lambda t: (t[0], t[1], t[2]))
    for forward in (True, False):
        seen = []
        start = None
        for _ in range(20):
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            out = await api.query("by_stage", "stage = :s", STAGE, Limit=4,
                                  ScanIndexForward=forward, **extra)
            seen += [(int(i["amount"]["N"]), i["pk"]["S"], int(i["sk"]["N"]))
                     for i in out["Items"]]
            start = out.get("LastEvaluatedKey")
            if start is None:
                break
            # The index keys plus the table keys, as DynamoDB.
            assert set(start) == {"stage", "amount", "pk", "sk"}
        assert seen == (expected if forward else expected[::-1])
    # A start key outside the query's partition is refused.
    _, message = await api.error("Query", {
        "TableName": TABLE, "IndexName": "by_stage", "KeyConditionExpression": "stage = :s",
        "ExpressionAttributeValues": STAGE,
        "ExclusiveStartKey": {"stage": S("done"), "amount": N(1), "pk": S("z"), "sk": N(0)}})
    assert "outside query boundaries" in message
    _, message = await api.error("Query", {
        "TableName": TABLE, "IndexName": "by_stage", "KeyConditionExpression": "stage = :s",
        "ExpressionAttributeValues": STAGE, "ExclusiveStartKey": {"pk": S("z"), "sk": N(0)}})
    assert message.startswith("The provided starting key is invalid")


@arun
async def test_paging_skips_stale_entries_without_counting_them() -> None:
    api = await make()
    for i in range(6):
        await api.put("a", i, stage="open", amount=i)
    await api.settle()
    for i in (1, 2, 4):  # plain puts: stale entries stay behind
        await api.put("a", i, stage="done", amount=i)
    seen = []
    start = None
    for _ in range(10):
        extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        out = await api.query("by_stage", "stage = :s", STAGE, Limit=1, **extra)
        assert out["Count"] == len(out["Items"]) <= 1
        seen += keys(out["Items"])
        start = out.get("LastEvaluatedKey")
        if start is None:
            break
    assert seen == [("a", 0), ("a", 3), ("a", 5)]


@arun
async def test_scan_of_an_index_with_segments_and_paging() -> None:
    api = await make()
    for i in range(30):
        await api.put(f"p{i}", i, holder=f"o{i % 7}" if i % 3 else None)
    await api.settle()
    wanted = sorted((f"p{i}", i) for i in range(30) if i % 3)
    seen = []
    for segment in range(3):
        start = None
        for _ in range(40):
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            out = await api.ok("Scan", {"TableName": TABLE, "IndexName": "by_holder", "Limit": 3,
                                        "Segment": segment, "TotalSegments": 3, **extra})
            seen += keys(out["Items"])
            for found in out["Items"]:
                assert set(found) == {"pk", "sk", "holder"}
            start = out.get("LastEvaluatedKey")
            if start is None:
                break
            assert set(start) == {"holder", "pk", "sk"}
    assert sorted(seen) == wanted
    counted = await api.ok("Scan", {"TableName": TABLE, "IndexName": "by_holder",
                                    "Select": "COUNT"})
    assert counted["Count"] == len(wanted)


# ------------------------------------------------------------------------------ errors


@arun
async def test_errors() -> None:
    api = await make()
    base = {"TableName": TABLE, "IndexName": "by_stage", "KeyConditionExpression": "stage = :s",
            "ExpressionAttributeValues": STAGE}
    kind, message = await api.error("Query", {**base, "ConsistentRead": True})
    assert (kind, message) == ("ValidationException",
                               "Consistent reads are not supported on global secondary indexes")
    _, message = await api.error("Scan", {"TableName": TABLE, "IndexName": "by_stage",
                                             "ConsistentRead": True})
    assert message == "Consistent reads are not supported on global secondary indexes"
    _, message = await api.error("Query", {**base, "IndexName": "nope"})
    assert (kind, message) == ("ValidationException",
                               "The table does not have the specified index: nope")
    _, message = await api.error("Scan", {"TableName": TABLE, "IndexName": "nope"})
    assert message == "The table does not have the specified index: nope"
    _, message = await api.error("Query", {
        **base, "KeyConditionExpression": "pk = :s"})  # not the index's key
    assert kind == "ValidationException"
    _, message = await api.error("PutItem", {"TableName": TABLE, "Item": item(
        "a", 1, stage="open", amount="notanumber")})
    assert "Type mismatch for Index Key amount" in message


# ------------------------------------------------------------------------------ local indexes


@arun
async def test_local_index_queries_read_one_partition_in_index_order() -> None:
    api = await make()
    ranks = [5, -1, 3, None, 0, 3]
    for i, rank in enumerate(ranks):
        await api.put("a", i, grade=rank, note=f"n{i}")
    await api.put("b", 0, grade=1)
    assert isinstance(api.handle, LocalHandle)
    scans = api.handle.calls.get("scan", 0)
    out = await api.ok("Query", {"TableName": TABLE, "IndexName": "by_grade",
                                 "KeyConditionExpression": "pk = :p AND #g >= :r",
                                 "ExpressionAttributeNames": {"#g": "grade"},
                                 "ExpressionAttributeValues": {":p": S("a"), ":r": N(0)},
                                 "ConsistentRead": True})
    assert api.handle.calls.get("scan", 0) == scans  # one partition read, no table scan
    assert keys(out["Items"]) == [("a", 4), ("a", 2), ("a", 5), ("a", 0)]
    assert set(out["Items"][0]) == {"pk", "sk", "grade"}  # KEYS_ONLY
    # ALL_ATTRIBUTES on a local index fetches the table's item, as DynamoDB.
    full = await api.ok("Query", {"TableName": TABLE, "IndexName": "by_grade",
                                  "KeyConditionExpression": "pk = :p",
                                  "ExpressionAttributeValues": {":p": S("a")},
                                  "Select": "ALL_ATTRIBUTES", "ScanIndexForward": False})
    assert keys(full["Items"]) == [("a", 0), ("a", 5), ("a", 2), ("a", 4), ("a", 1)]
    assert full["Items"][0]["note"] == S("n0")
    seen: list[tuple[str, int]] = []
    start = None
    for _ in range(10):
        extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = await api.ok("Query", {"TableName": TABLE, "IndexName": "by_grade", "Limit": 2,
                                      "KeyConditionExpression": "pk = :p",
                                      "ExpressionAttributeValues": {":p": S("a")}, **extra})
        seen += keys(page["Items"])
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
        assert set(start) == {"pk", "sk", "grade"}
    assert seen == [("a", 1), ("a", 4), ("a", 2), ("a", 5), ("a", 0)]


# ------------------------------------------------------------------------------ backfill


async def _wait_active(api: Api, index: str, timeout: float = 10.0) -> list[str]:
    """Statuses seen by DescribeTable until the index is ACTIVE."""
    statuses = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = (await api.ok("DescribeTable", {"TableName": TABLE}))["Table"]
        found = next(g for g in described["GlobalSecondaryIndexes"] if g["IndexName"] == index)
        statuses.append(found["IndexStatus"])
        if found["IndexStatus"] == "ACTIVE":
            assert "Backfilling" not in found
            return statuses
        assert found["Backfilling"] is True
        await asyncio.sleep(0.02)
    raise AssertionError(f"index {index} not ACTIVE after {timeout}s: {statuses[-3:]}")


CREATE_BY_NOTE = {"Create": {
    "IndexName": "by_note", "Projection": {"ProjectionType": "ALL"},
    "KeySchema": [{"AttributeName": "note", "KeyType": "HASH"},
                  {"AttributeName": "sk", "KeyType": "RANGE"}]}}


@arun
async def test_an_index_created_by_update_table_is_backfilled() -> None:
    api = await make()
    for i in range(40):
        await api.put(f"p{i % 4}", i, note="x" if i % 2 else "y", stage="open", amount=i)
    out = await api.ok("UpdateTable", {
        "TableName": TABLE, "AttributeDefinitions": [{"AttributeName": "note",
                                                      "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [CREATE_BY_NOTE]})
    created = next(g for g in out["TableDescription"]["GlobalSecondaryIndexes"]
                   if g["IndexName"] == "by_note")
    assert created["IndexStatus"] == "CREATING" and created["Backfilling"] is True
    assert not {"BucketId", "BackfillLease", "BackfillOwner"} & set(created)
    _, message = await api.error("Query", {
        "TableName": TABLE, "IndexName": "by_note", "KeyConditionExpression": "note = :n",
        "ExpressionAttributeValues": {":n": S("x")}})
    assert message == "Cannot read from backfilling global secondary index: by_note"
    # Writes during the backfill maintain the new index too.
    await api.put("late", 100, note="x")
    await api.ok("UpdateItem", {"TableName": TABLE, "Key": {"pk": S("p1"), "sk": N(1)},
                                "UpdateExpression": "SET note = :y",
                                "ExpressionAttributeValues": {":y": S("y")}})
    statuses = await _wait_active(api, "by_note")
    assert statuses[0] == "CREATING"
    out = await api.query("by_note", "note = :n", {":n": S("x")})
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [i for i in range(3, 40, 2)] + [100]
    assert api.work.stats["backfilled"] >= 40
    # Other indexes were not disturbed.
    assert (await api.query("by_stage", "stage = :s", STAGE))["Count"] == 40


@arun
async def test_a_backfill_whose_node_is_gone_is_taken_over() -> None:
    shared = LocalHandle()
    first = Api(shared)
    await first.ok("CreateTable", table_spec())
    for i in range(10):
        await first.put("p", i, note="x")
    # Record a CREATING index whose lease ran out (its node died), with no backfill running.

    def dead(description: dict[str, Any]) -> dict[str, Any]:
        description["AttributeDefinitions"].append({"AttributeName": "note",
                                                    "AttributeType": "S"})
        index: dict[str, Any] = dict(CREATE_BY_NOTE["Create"])
        index.update(IndexStatus="CREATING", BucketId="dead0001",
                     BackfillLease=time.time() - 1, BackfillOwner="gone")
        description["GlobalSecondaryIndexes"].append(index)
        return description

    await first.app.context.catalog.update(TABLE, dead)
    second = Api(shared)
    await _wait_active(second, "by_note")
    out = await second.query("by_note", "note = :n", {":n": S("x")})
    assert out["Count"] == 10


@arun
async def test_an_index_stored_before_indexes_were_stored_is_backfilled() -> None:
    api = await make()
    await api.put("p", 1, tag="t")
    await api.put("p", 2, tag="t")
    await api.settle()

    def legacy(description: dict[str, Any]) -> dict[str, Any]:
        for index in description["GlobalSecondaryIndexes"]:
            index.pop("IndexStatus", None)
        return description

    await api.app.context.catalog.update(TABLE, legacy)
    assert isinstance(api.handle, LocalHandle)
    info = await api.table()
    bucket = info.indexes["by_tag"].bucket
    assert bucket is not None
    await api.handle.drop_bucket(bucket)  # what such an index held: nothing
    await _wait_active(api, "by_tag")
    await _wait_active(api, "by_stage")
    assert (await api.query("by_tag", "tag = :t", {":t": S("t")}))["Count"] == 2


# ------------------------------------------------------------------------------ dropping


@arun
async def test_deleting_an_index_or_the_table_drops_the_index_buckets() -> None:
    api = await make()
    await api.put("a", 1, stage="open", amount=1, holder="o", tag="t")
    await api.settle()
    info = await api.table()
    buckets = {name: index.bucket for name, index in info.indexes.items() if index.is_global}
    assert isinstance(api.handle, LocalHandle)
    assert all(api.handle.bucket_size(b or "") == 1 for b in buckets.values())
    await api.ok("UpdateTable", {"TableName": TABLE, "GlobalSecondaryIndexUpdates": [
        {"Delete": {"IndexName": "by_holder"}}]})
    for _ in range(100):
        if api.handle.bucket_size(buckets["by_holder"] or "") == 0:
            break
        await asyncio.sleep(0.01)
    assert api.handle.bucket_size(buckets["by_holder"] or "") == 0
    assert api.handle.bucket_size(buckets["by_tag"] or "") == 1
    _, message = await api.error("Query", {
        "TableName": TABLE, "IndexName": "by_holder", "KeyConditionExpression": "holder = :o",
        "ExpressionAttributeValues": {":o": S("o")}})
    assert message == "The table does not have the specified index: by_holder"
    # Created again, the index gets a new bucket (and is backfilled into it).
    await api.ok("UpdateTable", {
        "TableName": TABLE,
        "AttributeDefinitions": [{"AttributeName": "holder", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": GSIS[1]}]})
    again = (await api.table()).indexes["by_holder"]
    assert again.bucket != buckets["by_holder"]
    await _wait_active(api, "by_holder")
    assert (await api.query("by_holder", "holder = :o", {":o": S("o")}))["Count"] == 1
    await api.ok("DeleteTable", {"TableName": TABLE})
    for _ in range(100):
        if all(api.handle.bucket_size(b or "") == 0 for b in (*buckets.values(), again.bucket)):
            break
        await asyncio.sleep(0.01)
    assert all(api.handle.bucket_size(b or "") == 0 for b in (*buckets.values(), again.bucket))


# ------------------------------------------------------------------------------ boto3


class _Server:
    """The app over a LocalHandle behind the HTTP server, on a loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.api = Api()
        self.server: HttpApiServer = self.call(
            start_http_api(self.api.handle, "127.0.0.1", 0, app=self.api.app))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(30)

    def client(self) -> Any:
        return boto3.client("dynamodb", endpoint_url=self.server.endpoint,
                            region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def http() -> Iterator[_Server]:
    server = _Server()
    try:
        yield server
    finally:
        server.stop()


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll ``check`` until it stops raising AssertionError (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_boto3_index_reads_follow_writes(http: _Server) -> None:
    ddb = http.client()
    ddb.create_table(**table_spec("boto_orders"))
    for i in range(8):
        ddb.put_item(TableName="boto_orders",
                     Item=item(f"p{i % 2}", i, stage="open", amount=i, note=f"n{i}"))

    def open_amounts() -> list[int]:
        pages = ddb.get_paginator("query").paginate(
            TableName="boto_orders", IndexName="by_stage", KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "stage"}, ExpressionAttributeValues=STAGE,
            PaginationConfig={"PageSize": 3})
        return [int(i["amount"]["N"]) for page in pages for i in page["Items"]]

    def all_open() -> None:
        assert open_amounts() == list(range(8))

    eventually(all_open)
    ddb.update_item(TableName="boto_orders", Key={"pk": S("p1"), "sk": N(3)},
                    UpdateExpression="SET #s = :d", ExpressionAttributeNames={"#s": "stage"},
                    ExpressionAttributeValues={":d": S("done")})
    ddb.put_item(TableName="boto_orders", Item=item("p0", 4, stage="done", amount=4))
    ddb.delete_item(TableName="boto_orders", Key={"pk": S("p1"), "sk": N(5)})

    def moved() -> None:
        assert open_amounts() == [0, 1, 2, 6, 7]

    eventually(moved)
    with pytest.raises(ClientError) as info:
        ddb.query(TableName="boto_orders", IndexName="by_stage", ConsistentRead=True,
                  KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "stage"},
                  ExpressionAttributeValues=STAGE)
    assert info.value.response["Error"]["Message"] == (
        "Consistent reads are not supported on global secondary indexes")
    with pytest.raises(ClientError) as info:
        ddb.scan(TableName="boto_orders", IndexName="nope")
    assert info.value.response["Error"]["Message"] == (
        "The table does not have the specified index: nope")


def test_boto3_update_table_backfill_and_waiter(http: _Server) -> None:
    ddb = http.client()
    ddb.create_table(**table_spec("boto_backfill", gsis=[], lsis=False))
    for i in range(12):
        ddb.put_item(TableName="boto_backfill", Item=item("p", i, holder="o" if i % 3 else None))
    out = ddb.update_table(
        TableName="boto_backfill",
        AttributeDefinitions=[{"AttributeName": "holder", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": GSIS[1]}])
    assert out["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"

    def active() -> None:
        described = ddb.describe_table(TableName="boto_backfill")["Table"]
        assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"

    eventually(active)
    found = ddb.query(TableName="boto_backfill", IndexName="by_holder",
                      KeyConditionExpression="#o = :o", ExpressionAttributeNames={"#o": "holder"},
                      ExpressionAttributeValues={":o": S("o")})
    assert sorted(int(i["sk"]["N"]) for i in found["Items"]) == [
        i for i in range(12) if i % 3]
