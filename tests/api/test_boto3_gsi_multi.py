"""Global secondary indexes with multi-attribute keys (up to four partition-key and four
sort-key attributes), through boto3 against the in-process app: the key schema rules, upkeep,
Query's key-condition rules (equality on every partition-key attribute; sort-key attributes
left to right, equality on all but the last one used), ordering, paging, backfill; and the
index regressions: long index names, 2048-byte index keys, backfills over items the index
cannot hold, a backfill that cannot finish."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.indexes import backfill, retry
from dynamokv.api.indexes.node import work
from dynamokv.api.local_handle import LocalHandle
from dynamokv.runtime.http_api import start_http_api

_names = itertools.count()


class FlakyHandle(LocalHandle):
    """A LocalHandle whose writes to buckets named in ``broken`` fail and whose scans of
    buckets named in ``held`` wait until they are released."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()
        self.held: set[str] = set()
        self.waiting = 0  # scans held right now

    async def scan(self, bucket: str, segment: int, total_segments: int, after: bytes | None,
                   limit: int, *, consistent: bool = False) -> Any:
        while bucket in self.held:
            self.waiting += 1
            await asyncio.sleep(0.01)
            self.waiting -= 1
        return await super().scan(bucket, segment, total_segments, after, limit,
                                  consistent=consistent)

    async def write(self, bucket: str, key: bytes, value: bytes | None, *,
                    refuse_prefix: bytes = b"") -> None:
        if bucket in self.broken:
            raise ConnectionError(f"replicas of {bucket} unreachable")
        await super().write(bucket, key, value, refuse_prefix=refuse_prefix)


class Server:
    """The app over a LocalHandle on its own loop thread, with a short catalog TTL so that
    backfills start at once."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.handle = FlakyHandle()
        self.app = DynamoDBApp(self.handle, catalog_ttl=0.05)
        self.server = asyncio.run_coroutine_threadsafe(
            start_http_api(self.handle, "127.0.0.1", 0, app=self.app), self.loop).result(30)

    def client(self) -> Any:
        return boto3.client("dynamodb", endpoint_url=self.server.endpoint,
                            region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))

    def bucket_of(self, table: str, index: str) -> str:
        info = asyncio.run_coroutine_threadsafe(self.app.context.catalog.require(table),
                                                self.loop).result(10)
        return info.indexes[index].bucket or ""

    def idle(self) -> None:
        asyncio.run_coroutine_threadsafe(work(self.app.context).idle(), self.loop).result(30)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def ddb(server: Server) -> Any:
    return server.client()


def fresh() -> str:
    return f"multi_{next(_names)}"


def error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def key(*elements: str) -> list[dict[str, str]]:
    """``key("a", "b", "/", "c")``: HASH a, HASH b, RANGE c."""
    split = elements.index("/") if "/" in elements else len(elements)
    return ([{"AttributeName": n, "KeyType": "HASH"} for n in elements[:split]]
            + [{"AttributeName": n, "KeyType": "RANGE"} for n in elements[split + 1:]])


def definitions(**types: str) -> list[dict[str, str]]:
    return [{"AttributeName": n, "AttributeType": t} for n, t in types.items()]


def gsi(name: str, schema: list[dict[str, str]], projection: str = "ALL") -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": schema, "Projection": {"ProjectionType": projection}}


def make(ddb: Any, *indexes_: dict[str, Any], **types: str) -> str:
    name = fresh()
    ddb.create_table(TableName=name, KeySchema=key("pk"), BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=definitions(pk="S", **types),
                     GlobalSecondaryIndexes=list(indexes_))
    return name


MATCHES = [  # pk, tournament, region, round, bracket
    ("m1", "W24", "EU", 1, "upper"),
    ("m2", "W24", "EU", 1, "lower"),
    ("m3", "W24", "EU", 2, "upper"),
    ("m4", "W24", "EU", 3, "final"),
    ("m5", "W24", "NA", 1, "upper"),
    ("m6", "S25", "EU", 1, "upper"),
]


def tournament_table(ddb: Any) -> str:
    name = make(ddb, gsi("by_t", key("t", "r", "/", "round", "bracket")),
                t="S", r="S", round="N", bracket="S")
    for pk, t, r, rnd, bracket in MATCHES:
        ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "t": {"S": t}, "r": {"S": r},
                                           "round": {"N": str(rnd)}, "bracket": {"S": bracket}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "partial"}, "t": {"S": "W24"},
                                       "r": {"S": "EU"}, "round": {"N": "1"}})
    return name


def q(ddb: Any, table: str, condition: str, **values: Any) -> list[str]:
    wire = {f":{k}": ({"N": str(v)} if isinstance(v, int) else {"S": v})
            for k, v in values.items()}
    kwargs: dict[str, Any] = {"TableName": table, "IndexName": "by_t",
                              "KeyConditionExpression": condition,
                              "ExpressionAttributeValues": wire}
    if "#rd" in condition:
        kwargs["ExpressionAttributeNames"] = {"#rd": "round"}
    return [item["pk"]["S"] for item in ddb.query(**kwargs)["Items"]]


# ------------------------------------------------------------------------------ schema


def test_a_multi_attribute_key_schema_is_stored_and_described(ddb: Any) -> None:
    schema = key("h1", "h2", "h3", "h4", "/", "r1", "r2", "r3", "r4")
    name = make(ddb, gsi("eight", schema), **{n["AttributeName"]: "S" for n in schema})
    described = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    assert described["KeySchema"] == schema
    assert described["IndexStatus"] == "ACTIVE"


@pytest.mark.parametrize(("schema", "message"), [
    (key("a", "b", "c", "d", "e"), "One or more parameter values were invalid: The KeySchema "
     "exceeds the maximum allowed number of HASH key attributes"),
    (key("a", "/", "b", "c", "d", "e", "f"), "One or more parameter values were invalid: The "
     "KeySchema exceeds the maximum allowed number of RANGE key attributes"),
    ([*key("a", "/", "b"), {"AttributeName": "c", "KeyType": "HASH"}],
     "One or more parameter values were invalid: All HASH key attributes must precede RANGE "
     "key attributes in the KeySchema"),
    (key("a", "b", "/", "a"), "The KeySchema contains multiple key attributes with the same name"),
    ([{"AttributeName": "b", "KeyType": "RANGE"}, {"AttributeName": "a", "KeyType": "HASH"}],
     "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
])
def test_multi_attribute_key_schema_errors(ddb: Any, schema: list[dict[str, str]],
                                           message: str) -> None:
    names = dict.fromkeys(e["AttributeName"] for e in schema)
    code, text = error(ddb.create_table, TableName=fresh(), KeySchema=key("pk"),
                       BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=definitions(pk="S", **dict.fromkeys(names, "S")),
                       GlobalSecondaryIndexes=[gsi("by_g", schema)])
    assert (code, text) == ("ValidationException", message)


def test_tables_and_local_indexes_keep_two_key_elements(ddb: Any) -> None:
    code, text = error(ddb.create_table, TableName=fresh(), KeySchema=key("a", "b"),
                       BillingMode="PAY_PER_REQUEST", AttributeDefinitions=definitions(a="S",
                                                                                       b="S"))
    assert code == "ValidationException"
    assert text == "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
    code, text = error(ddb.create_table, TableName=fresh(), KeySchema=key("a", "/", "b", "c"),
                       BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=definitions(a="S", b="S", c="S"))
    assert "Member must have length less than or equal to 2" in text


# ------------------------------------------------------------------------------ query


def test_query_rules_on_a_multi_attribute_key(ddb: Any) -> None:
    table = tournament_table(ddb)
    # Every partition-key attribute, then sort-key attributes left to right.
    assert q(ddb, table, "t = :t AND r = :r", t="W24", r="EU") == ["m2", "m1", "m3", "m4"]
    assert q(ddb, table, "t = :t AND r = :r AND #rd = :n", t="W24", r="EU", n=1) == ["m2", "m1"]
    assert q(ddb, table, "t = :t AND r = :r AND #rd > :n", t="W24", r="EU", n=1) == ["m3", "m4"]
    assert q(ddb, table, "#rd = :n AND r = :r AND bracket = :b AND t = :t",
             t="W24", r="EU", n=1, b="upper") == ["m1"]
    assert q(ddb, table, "t = :t AND r = :r AND #rd = :n AND begins_with(bracket, :b)",
             t="W24", r="EU", n=1, b="lo") == ["m2"]
    assert q(ddb, table, "t = :t AND r = :r AND #rd BETWEEN :a AND :b",
             t="W24", r="EU", a=2, b=3) == ["m3", "m4"]
    assert q(ddb, table, "t = :t AND r = :r", t="W24", r="NA") == ["m5"]
    assert q(ddb, table, "t = :t AND r = :r", t="S25", r="NA") == []


@pytest.mark.parametrize(("condition", "values", "message"), [
    ("t = :t", {"t": "W24"}, "Query condition missed key schema element: r"),
    ("t = :t AND r = :r AND bracket = :b", {"t": "W24", "r": "EU", "b": "upper"},
     "Query condition missed key schema element: round"),
    ("t = :t AND r = :r AND #rd > :n AND bracket = :b", {"t": "W24", "r": "EU", "n": 1,
                                                          "b": "upper"},
     "Query key condition not supported"),
    ("t = :t AND r > :r", {"t": "W24", "r": "EU"}, "Query key condition not supported"),
    ("t = :t AND r = :r AND extra = :o", {"t": "W24", "r": "EU", "o": "x"},
     "Query condition missed key schema element: round"),
    ("t = :t AND r = :r AND #rd = :n", {"t": "W24", "r": "EU", "n": "one"},
     "One or more parameter values were invalid: Condition parameter type does not match "
     "schema type"),
])
def test_query_errors_on_a_multi_attribute_key(ddb: Any, condition: str, values: dict[str, Any],
                                               message: str) -> None:
    table = tournament_table(ddb)
    with pytest.raises(ClientError) as info:
        q(ddb, table, condition, **values)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["Error"]["Message"] == message


def test_items_missing_any_key_attribute_are_not_indexed_and_upkeep_follows_writes(
        ddb: Any, server: Server) -> None:
    table = tournament_table(ddb)
    everything = "t = :t AND r = :r"
    assert "partial" not in q(ddb, table, everything, t="W24", r="EU")
    ddb.update_item(TableName=table, Key={"pk": {"S": "partial"}},
                    UpdateExpression="SET bracket = :b",
                    ExpressionAttributeValues={":b": {"S": "aaa"}})
    server.idle()
    assert q(ddb, table, everything, t="W24", r="EU")[0] == "partial"
    ddb.update_item(TableName=table, Key={"pk": {"S": "partial"}}, UpdateExpression="SET r = :r",
                    ExpressionAttributeValues={":r": {"S": "NA"}})
    server.idle()
    assert "partial" not in q(ddb, table, everything, t="W24", r="EU")
    assert q(ddb, table, everything, t="W24", r="NA") == ["partial", "m5"]
    ddb.delete_item(TableName=table, Key={"pk": {"S": "m5"}})
    server.idle()
    assert q(ddb, table, everything, t="W24", r="NA") == ["partial"]


def test_paging_and_descending_order_over_a_composite_sort_key(ddb: Any) -> None:
    table = tournament_table(ddb)
    seen: list[str] = []
    start: dict[str, Any] = {}
    while True:
        page = ddb.query(TableName=table, IndexName="by_t", Limit=1, ScanIndexForward=False,
                         KeyConditionExpression="t = :t AND r = :r",
                         ExpressionAttributeValues={":t": {"S": "W24"}, ":r": {"S": "EU"}},
                         **start)
        seen += [item["pk"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        assert set(page["LastEvaluatedKey"]) == {"pk", "t", "r", "round", "bracket"}
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert seen == ["m4", "m3", "m1", "m2"]
    _, text = error(ddb.query, TableName=table, IndexName="by_t",
                       KeyConditionExpression="t = :t AND r = :r",
                       ExpressionAttributeValues={":t": {"S": "W24"}, ":r": {"S": "NA"}},
                       ExclusiveStartKey=start["ExclusiveStartKey"])
    assert "outside query boundaries" in text


def test_a_multi_attribute_index_created_by_update_table_is_backfilled(ddb: Any) -> None:
    table = make(ddb, gsi("plain", key("t")), t="S")
    for i in range(30):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"p{i}"}, "t": {"S": "x"},
                                            "a": {"N": str(i % 3)}, "b": {"S": f"{i:02d}"}})
    ddb.update_table(TableName=table, AttributeDefinitions=definitions(a="N", b="S"),
                     GlobalSecondaryIndexUpdates=[{"Create": gsi("by_ab", key("a", "/", "b"),
                                                                 "KEYS_ONLY")}])
    assert eventually(lambda: ddb.describe_table(TableName=table)["Table"][
        "GlobalSecondaryIndexes"][1]["IndexStatus"] == "ACTIVE")
    out = ddb.query(TableName=table, IndexName="by_ab",
                    KeyConditionExpression="a = :a AND b >= :b",
                    ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"S": "20"}})
    assert [i["b"]["S"] for i in out["Items"]] == ["22", "25", "28"]
    assert set(out["Items"][0]) == {"pk", "a", "b"}


# ------------------------------------------------------------------------------ table checks


def test_projection_checks(ddb: Any) -> None:
    def create(projection: dict[str, Any]) -> str:
        return error(ddb.create_table, TableName=fresh(), KeySchema=key("pk"),
                     BillingMode="PAY_PER_REQUEST", AttributeDefinitions=definitions(pk="S",
                                                                                     g="S"),
                     GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": key("g"),
                                              "Projection": projection}])[1]

    invalid = "One or more parameter values were invalid: "
    assert create({"ProjectionType": "INCLUDE"}) == (
        invalid + "ProjectionType is INCLUDE, but NonKeyAttributes is not specified")
    assert create({"ProjectionType": "ALL", "NonKeyAttributes": ["x"]}) == (
        invalid + "ProjectionType is ALL, but NonKeyAttributes is specified")
    assert create({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x", "y", "x"]}) == (
        invalid + "Duplicate element in NonKeyAttributes: x")
    assert create({}) == invalid + "Unknown ProjectionType: null"
    too_many = create({"ProjectionType": "INCLUDE",
                       "NonKeyAttributes": [f"a{i}" for i in range(21)]})
    assert "Member must have length less than or equal to 20" in too_many


def test_create_table_index_rules(ddb: Any) -> None:
    invalid = "One or more parameter values were invalid: "
    base = {"KeySchema": key("pk"), "AttributeDefinitions": definitions(pk="S", g="S")}
    code, text = error(ddb.create_table, TableName=fresh(), **base,
                       ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
                       GlobalSecondaryIndexes=[gsi("by_g", key("g"))])
    assert text == invalid + "ProvisionedThroughput is not specified for index: by_g"
    code, text = error(ddb.create_table, TableName=fresh(), **base,
                       BillingMode="PAY_PER_REQUEST", GlobalSecondaryIndexes=[
                           {**gsi("by_g", key("g")), "ProvisionedThroughput": {
                               "ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}])
    assert text == (invalid + "ProvisionedThroughput should not be specified for index: by_g when "
                    "BillingMode is PAY_PER_REQUEST")
    code, text = error(ddb.create_table, TableName=fresh(), **base,
                       BillingMode="PAY_PER_REQUEST",
                       GlobalSecondaryIndexes=[gsi(f"by_g{i}", key("g")) for i in range(21)])
    assert (code, text) == ("ValidationException", invalid + "GlobalSecondaryIndex count "
                            "exceeds the per-table limit of 20")
    # AttributeDefinitions are matched against the keys before the other index rules.
    code, text = error(ddb.create_table, TableName=fresh(), KeySchema=key("pk"),
                       AttributeDefinitions=definitions(pk="S", g="S", extra="S"),
                       BillingMode="PAY_PER_REQUEST",
                       GlobalSecondaryIndexes=[{**gsi("by_g", key("g")), "Projection": {}}])
    assert text.startswith(invalid + "Some AttributeDefinitions are not used")


def test_update_table_index_rules(ddb: Any) -> None:
    invalid = "One or more parameter values were invalid: "
    table = make(ddb, gsi("by_g", key("g")), g="S")

    def update(**kwargs: Any) -> tuple[str, str]:
        return error(ddb.update_table, TableName=table, **kwargs)

    create_h = {"Create": gsi("by_h", key("h"))}
    assert update(AttributeDefinitions=definitions(g="S"),
                  GlobalSecondaryIndexUpdates=[{"Create": gsi("by_g", key("g"))}]) == (
        "ValidationException", "Attempting to create an index which already exists")
    assert update(AttributeDefinitions=definitions(h="S", i="S"), GlobalSecondaryIndexUpdates=[
        create_h, {"Create": gsi("by_i", key("i"))}]) == (
        "LimitExceededException", "Subscriber limit exceeded: Only 1 online index can be "
        "created or deleted simultaneously per table")
    assert update(GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_g"}},
                                               {"Update": {"IndexName": "by_g"}}]) == (
        "ValidationException", invalid + "Only one global secondary index update per index is "
        "allowed simultaneously. Index: by_g")
    assert update(GlobalSecondaryIndexUpdates=[{}])[1] == (
        invalid + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
        "GlobalSecondaryIndexUpdate.Delete must not be null")
    assert update(GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_g"},
                                                "Update": {"IndexName": "by_g"}}])[1] == (
        invalid + "Only one global secondary index action is allowed per "
        "GlobalSecondaryIndexUpdate object")
    assert update(GlobalSecondaryIndexUpdates=[create_h])[1] == (
        invalid + "AttributeDefinitions is not specified for index: by_h")
    _, text = update()
    assert text.startswith("At least one of ProvisionedThroughput, BillingMode, ")
    assert update(GlobalSecondaryIndexUpdates=[], DeletionProtectionEnabled=True)[1] == (
        invalid + "List of GlobalSecondaryIndexUpdates is empty")
    ddb.update_table(TableName=table, AttributeDefinitions=definitions(h="S"),
                     GlobalSecondaryIndexUpdates=[create_h])
    assert update(GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_g"}}])[0] == (
        "LimitExceededException")  # another index is still CREATING


# ------------------------------------------------------------------------------ regressions


def test_a_2048_byte_index_partition_key_is_indexed(ddb: Any, server: Server) -> None:
    table = make(ddb, gsi("by_g", key("g", "/", "s")), g="B", s="B")
    big, sort = b"\x00" * 2048, b"\x00" * 1024  # escaped, each doubles in the stored key
    ddb.put_item(TableName=table, Item={"pk": {"S": "p" * 2048}, "g": {"B": big},
                                        "s": {"B": sort}})
    server.idle()
    assert work(server.app.context).stats["failed"] == 0
    out = ddb.query(TableName=table, IndexName="by_g", KeyConditionExpression="g = :g AND s = :s",
                    ExpressionAttributeValues={":g": {"B": big}, ":s": {"B": sort}})
    assert [i["pk"]["S"] for i in out["Items"]] == ["p" * 2048]
    code, text = error(ddb.put_item, TableName=table, Item={"pk": {"S": "q"},
                                                            "g": {"B": b"x" * 2049}})
    assert code == "ValidationException"
    assert "exceeded the limit of 2048 bytes" in text


def test_an_index_with_a_255_character_name_works_and_is_dropped(ddb: Any,
                                                                  server: Server) -> None:
    long_name = "i" * 255
    table = make(ddb, gsi(long_name, key("g")), g="S")
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "g": {"S": "x"}})
    server.idle()
    out = ddb.query(TableName=table, IndexName=long_name, KeyConditionExpression="g = :g",
                    ExpressionAttributeValues={":g": {"S": "x"}})
    assert out["Count"] == 1
    bucket = server.bucket_of(table, long_name)
    assert len(bucket.encode()) <= 255 and server.handle.bucket_size(bucket) == 1
    ddb.delete_table(TableName=table)
    assert eventually(lambda: server.handle.bucket_size(bucket) == 0)


def test_a_backfill_skips_items_the_index_cannot_hold_and_finishes(ddb: Any,
                                                                   server: Server) -> None:
    table = make(ddb, gsi("plain", key("t")), t="S")
    items = {"ok": "x", "oversized": "y" * 1025, "empty": ""}
    for pk, s in items.items():
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "h": {"S": "h"}, "s": {"S": s}})
    ddb.update_table(TableName=table, AttributeDefinitions=definitions(h="S", s="S"),
                     GlobalSecondaryIndexUpdates=[{"Create": gsi("by_hs", key("h", "/", "s"))}])
    assert eventually(lambda: ddb.describe_table(TableName=table)["Table"][
        "GlobalSecondaryIndexes"][1]["IndexStatus"] == "ACTIVE")
    out = ddb.query(TableName=table, IndexName="by_hs", KeyConditionExpression="h = :h",
                    ExpressionAttributeValues={":h": {"S": "h"}})
    assert [i["pk"]["S"] for i in out["Items"]] == ["ok"]


def test_a_backfill_that_cannot_write_stops_after_its_bound_and_says_why(
        ddb: Any, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backfill, "BACKFILL_RETRY", 0.01)
    monkeypatch.setattr(retry, "RETRY_DELAY", 0.001)
    table = make(ddb, gsi("plain", key("t")), t="S")
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "h": {"S": "h"}})
    before = work(server.app.context).stats["backfill_failed"]
    ddb.update_table(TableName=table, AttributeDefinitions=definitions(h="S"),
                     GlobalSecondaryIndexUpdates=[{"Create": gsi("h_index", key("h"))}])

    server.handle.broken = {server.bucket_of(table, "h_index")}  # before the backfill scans

    def stopped() -> dict[str, Any] | None:
        index = ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"][1]
        return index if index.get("Backfilling") is False else None

    index = eventually(stopped, timeout=30)
    assert index is not None, "the backfill never gave up"
    assert index["IndexStatus"] == "CREATING"
    assert work(server.app.context).stats["backfill_failed"] - before == backfill.BACKFILL_RUNS
    catalog = server.app.context.catalog  # DescribeTable's JSON carries it too (boto3 drops it)
    info = asyncio.run_coroutine_threadsafe(catalog.require(table), server.loop).result(10)
    assert "ConnectionError" in info.description["GlobalSecondaryIndexes"][1]["BackfillError"]
    server.handle.broken = set()
    assert error(ddb.delete_table, TableName=table) == (
        "ResourceInUseException",
        "Attempt to change a resource which is still in use: Cannot delete table while "
        "indexes are being created, updated, or deleted.")
    ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[
        {"Delete": {"IndexName": "h_index"}}])
    ddb.delete_table(TableName=table)


def test_upkeep_that_gives_up_rebuilds_the_index(ddb: Any, server: Server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_DELAY", 0.001)
    monkeypatch.setattr(backfill, "BACKFILL_RETRY", 0.2)
    table = make(ddb, gsi("by_g", key("g")), g="S")
    ddb.put_item(TableName=table, Item={"pk": {"S": "before"}, "g": {"S": "x"}})
    server.idle()
    server.handle.broken = {server.bucket_of(table, "by_g")}
    ddb.put_item(TableName=table, Item={"pk": {"S": "lost"}, "g": {"S": "x"}})
    server.idle()

    def status() -> str:
        described = ddb.describe_table(TableName=table)["Table"]
        return str(described["GlobalSecondaryIndexes"][0]["IndexStatus"])

    assert eventually(lambda: status() == "UPDATING"), "the failed upkeep was not reported"
    server.handle.broken = set()
    assert eventually(lambda: status() == "ACTIVE"), "the index was not rebuilt"
    out = ddb.query(TableName=table, IndexName="by_g", KeyConditionExpression="g = :g",
                    ExpressionAttributeValues={":g": {"S": "x"}})
    assert sorted(i["pk"]["S"] for i in out["Items"]) == ["before", "lost"]
    assert work(server.app.context).stats["repairs_marked"] >= 1


def test_update_table_combinations_and_billing_switches(ddb: Any) -> None:
    invalid = "One or more parameter values were invalid: "
    table = make(ddb, gsi("by_g", key("g")), g="S")
    create = {"AttributeDefinitions": definitions(h="S"),
              "GlobalSecondaryIndexUpdates": [{"Create": gsi("by_h", key("h"))}]}
    for extra, message in [
        ({"DeletionProtectionEnabled": True},
         "DeletionProtection modification must be the only operation in the request"),
        ({"TableClass": "STANDARD"},
         "TableClass modification must be the only operation in the request"),
        ({"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}},
         "You cannot create or delete index while changing stream status"),
    ]:
        assert error(ddb.update_table, TableName=table, **create, **extra) == (
            "ValidationException", invalid + message)
    throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert error(ddb.update_table, TableName=table, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_g", "ProvisionedThroughput": throughput}}]) == (
        "ValidationException", invalid + "The only Updates for index: by_g when "
        "TableThroughputMode is PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput")
    assert error(ddb.update_table, TableName=table, BillingMode="PROVISIONED",
                 ProvisionedThroughput=throughput) == (
        "ValidationException", invalid + "ProvisionedThroughput must be specified for index: "
        "by_g")
    ddb.update_table(TableName=table, BillingMode="PROVISIONED", ProvisionedThroughput=throughput,
                     GlobalSecondaryIndexUpdates=[{"Update": {
                         "IndexName": "by_g", "ProvisionedThroughput": throughput}}])
    index = ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"][0]
    assert index["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
    index = ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"][0]
    assert index["ProvisionedThroughput"]["ReadCapacityUnits"] == 0


def test_a_repair_asked_for_during_a_repair_run_runs_again(ddb: Any, server: Server) -> None:
    table = make(ddb, gsi("by_g", key("g")), g="S")
    for i in range(3):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"p{i}"}, "g": {"S": "x"}})
    server.idle()
    upkeep = work(server.app.context)
    before = upkeep.stats["backfilled"]
    info = asyncio.run_coroutine_threadsafe(server.app.context.catalog.require(table),
                                            server.loop).result(10)

    def mark() -> None:
        asyncio.run_coroutine_threadsafe(upkeep._mark(table), server.loop).result(10)

    server.handle.held = {info.bucket}
    mark()  # the repair run starts, and its scan waits
    assert eventually(lambda: server.handle.waiting > 0)
    mark()  # another upkeep gave up while the run was under way
    server.handle.held = set()

    def status() -> str:
        described = ddb.describe_table(TableName=table)["Table"]
        return str(described["GlobalSecondaryIndexes"][0]["IndexStatus"])

    assert eventually(lambda: status() == "ACTIVE")
    assert upkeep.stats["backfilled"] - before >= 6  # two runs over the three items


def test_describe_sorts_attribute_definitions_and_non_key_attributes(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(TableName=name, KeySchema=key("pk"), BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=definitions(z="S", pk="S", m="N"),
                     GlobalSecondaryIndexes=[
                         {**gsi("by_zm", key("z", "/", "m"), "INCLUDE"),
                          "Projection": {"ProjectionType": "INCLUDE",
                                         "NonKeyAttributes": ["zz", "aa", "mm"]}}])
    described = ddb.describe_table(TableName=name)["Table"]
    assert [a["AttributeName"] for a in described["AttributeDefinitions"]] == ["m", "pk", "z"]
    index = described["GlobalSecondaryIndexes"][0]
    assert index["Projection"]["NonKeyAttributes"] == ["aa", "mm", "zz"]
    assert index["KeySchema"] == key("z", "/", "m")  # submitted order
