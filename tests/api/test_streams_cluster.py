"""DynamoDB Streams, TTL expiry and item counts over a real in-process cluster of four nodes
(N=3, so every partition has a node that is not its replica and forwards stream reads), one
API instance per node: records of puts, updates and deletes in item order through every node,
the same records through every node, every iterator type, the view types, error types; TTL
expiry by the maintenance pass as service deletes in the stream; ItemCount/TableSizeBytes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.deleted_streams import STREAMS_BUCKET
from dynamokv.api.maintenance import Maintenance
from dynamokv.api.streams import CLOCK_MARGIN_MS, apply_spec
from dynamokv.runtime.server import RunningNode
from tests.inprocess import start_inprocess_cluster

TARGET = "DynamoDB_20120810."
STREAMS = "DynamoDBStreams_20120810."
TABLE = "events"


class Api:
    def __init__(self, node: RunningNode) -> None:
        assert node.handle is not None
        self.node = node
        self.app = DynamoDBApp(node.handle, catalog_ttl=0.3)

    async def call(self, operation: str, body: dict[str, Any], prefix: str = TARGET
                   ) -> tuple[int, dict[str, Any]]:
        response = await self.app.handle("POST", "/", {"x-amz-target": prefix + operation},
                                         orjson.dumps(body))
        return response.status, orjson.loads(response.body)

    async def ok(self, operation: str, body: dict[str, Any], prefix: str = TARGET
                 ) -> dict[str, Any]:
        for _ in range(40):  # a leader change answers a retryable 5xx; SDKs retry, so do we
            status, out = await self.call(operation, body, prefix)
            if status == 200:
                return out
            assert status >= 500, (operation, out)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{operation} kept failing: {out}")

    async def streams(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.ok(operation, body, STREAMS)

    async def error(self, operation: str, body: dict[str, Any], prefix: str = STREAMS) -> str:
        status, out = await self.call(operation, body, prefix)
        assert status == 400, out
        return str(out["__type"]).rpartition("#")[2] + ": " + out["message"]

    async def all_records(self, arn: str) -> dict[str, list[dict[str, Any]]]:
        """Every record of the stream from TRIM_HORIZON, per shard."""
        shards = (await self.streams("DescribeStream", {"StreamArn": arn}))[
            "StreamDescription"]["Shards"]
        out: dict[str, list[dict[str, Any]]] = {}
        for shard in shards:
            it = (await self.streams("GetShardIterator", {
                "StreamArn": arn, "ShardId": shard["ShardId"],
                "ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
            records: list[dict[str, Any]] = []
            for _ in range(1000):
                page = await self.streams("GetRecords", {"ShardIterator": it, "Limit": 3})
                records += page["Records"]
                if not page["Records"] or "NextShardIterator" not in page:
                    break  # the open shard's end, or a closed shard read to its end
                it = page["NextShardIterator"]
            out[shard["ShardId"]] = records
        return out


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _table(view: str | None, name: str = TABLE) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST"}
    if view is not None:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    return spec


def _item(k: str, **attrs: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": k}}
    for name, value in attrs.items():
        item[name] = {"N": str(value)} if isinstance(value, int | float) else {"S": value}
    return item


def _stable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without the applying replica's clock (replicas stamp their own)."""
    body = {k: v for k, v in record["dynamodb"].items() if k != "ApproximateCreationDateTime"}
    return {**record, "dynamodb": body}


async def _apis(root: Path) -> tuple[list[RunningNode], list[Api]]:
    nodes = await start_inprocess_cluster(root, 4)
    return nodes, [Api(n) for n in nodes]


def test_stream_records_through_every_node(cluster: Path) -> None:
    async def main() -> None:
        nodes, apis = await _apis(cluster)
        try:
            out = await apis[0].ok("CreateTable", _table("NEW_AND_OLD_IMAGES"))
            desc = out["TableDescription"]
            arn = desc["LatestStreamArn"]
            assert desc["StreamSpecification"] == {"StreamEnabled": True,
                                                   "StreamViewType": "NEW_AND_OLD_IMAGES"}
            assert arn.endswith("/stream/" + desc["LatestStreamLabel"])
            keys = [f"k{i}" for i in range(12)]
            for i, k in enumerate(keys):  # each item written through a different node
                api = apis[i % 4]
                await api.ok("PutItem", {"TableName": TABLE, "Item": _item(k, v=1)})
                await apis[(i + 1) % 4].ok("UpdateItem", {
                    "TableName": TABLE, "Key": {"pk": {"S": k}},
                    "UpdateExpression": "SET v = v + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}})
                if i % 3 == 0:
                    await apis[(i + 2) % 4].ok("DeleteItem", {"TableName": TABLE,
                                                              "Key": {"pk": {"S": k}}})
            listed = await apis[3].streams("ListStreams", {"TableName": TABLE})
            assert [s["StreamArn"] for s in listed["Streams"]] == [arn]
            views = []
            for api in apis:
                views.append(await api.all_records(arn))
            assert len(views[0]) == 16  # one shard per ring partition
            for view in views[1:]:  # the same records whichever node serves the read
                assert {s: [_stable(r) for r in rs] for s, rs in view.items()} == {
                    s: [_stable(r) for r in rs] for s, rs in views[0].items()}
            per_item: dict[str, list[dict[str, Any]]] = {}
            for records in views[0].values():
                numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
                assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
                for r in records:
                    per_item.setdefault(r["dynamodb"]["Keys"]["pk"]["S"], []).append(r)
            assert sorted(per_item) == sorted(keys)
            for i, k in enumerate(keys):
                events = per_item[k]
                names = [r["eventName"] for r in events]
                assert names == (["INSERT", "MODIFY", "REMOVE"] if i % 3 == 0
                                 else ["INSERT", "MODIFY"])
                assert "OldImage" not in events[0]["dynamodb"]
                assert events[0]["dynamodb"]["NewImage"] == _item(k, v=1)
                assert events[1]["dynamodb"]["OldImage"] == _item(k, v=1)
                assert events[1]["dynamodb"]["NewImage"] == _item(k, v=2)
                if i % 3 == 0:
                    assert events[2]["dynamodb"]["OldImage"] == _item(k, v=2)
                    assert "NewImage" not in events[2]["dynamodb"]
                for r in events:
                    assert r["eventSource"] == "aws:dynamodb" and "userIdentity" not in r
                    assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
                    assert r["dynamodb"]["SizeBytes"] > 0
                    assert len(r["eventID"]) == 32
            await _iterator_types(apis, arn, per_item["k1"])
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


async def _iterator_types(apis: list[Api], arn: str, events: list[dict[str, Any]]) -> None:
    first, second = events[0]["dynamodb"]["SequenceNumber"], events[1]["dynamodb"][
        "SequenceNumber"]
    shards = (await apis[1].streams("DescribeStream", {"StreamArn": arn}))[
        "StreamDescription"]["Shards"]
    shard = next(s["ShardId"] for s in shards  # IDs name the partition, then the start
                 if s["ShardId"].split("-")[2] == f"{int(first[16:]):08x}")
    base = {"StreamArn": arn, "ShardId": shard}
    at = await apis[2].streams("GetShardIterator", {
        **base, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": first})
    page = await apis[2].streams("GetRecords", {"ShardIterator": at["ShardIterator"]})
    assert page["Records"][0]["dynamodb"]["SequenceNumber"] == first
    after = await apis[3].streams("GetShardIterator", {
        **base, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": first})
    page = await apis[3].streams("GetRecords", {"ShardIterator": after["ShardIterator"]})
    assert page["Records"][0]["dynamodb"]["SequenceNumber"] == second
    latest = await apis[0].streams("GetShardIterator", {**base, "ShardIteratorType": "LATEST"})
    page = await apis[0].streams("GetRecords", {"ShardIterator": latest["ShardIterator"]})
    assert page["Records"] == [] and page["NextShardIterator"]
    await apis[1].ok("PutItem", {"TableName": TABLE, "Item": _item("k1", v=9)})
    page = await apis[0].streams("GetRecords", {"ShardIterator": page["NextShardIterator"]})
    assert [r["dynamodb"]["NewImage"] for r in page["Records"]] == [_item("k1", v=9)]


def test_view_types_errors_and_disabling(cluster: Path) -> None:
    async def main() -> None:
        nodes, apis = await _apis(cluster)
        try:
            api = apis[1]
            arns = {}
            for view in ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE"):
                name = f"t-{view.lower()}"
                out = await api.ok("CreateTable", _table(view, name))
                arns[view] = out["TableDescription"]["LatestStreamArn"]
                await api.ok("PutItem", {"TableName": name, "Item": _item("a", v=1)})
                await api.ok("PutItem", {"TableName": name, "Item": _item("a", v=2)})
            for view, arn in arns.items():
                records = [r for rs in (await apis[2].all_records(arn)).values() for r in rs]
                assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
                body = records[1]["dynamodb"]
                assert body["Keys"] == {"pk": {"S": "a"}}
                assert ("NewImage" in body) == (view == "NEW_IMAGE")
                assert ("OldImage" in body) == (view == "OLD_IMAGE")
            # A table without a stream has none; enabling twice, disabling none: refused.
            await api.ok("CreateTable", _table(None, "plain"))
            described = (await api.ok("DescribeTable", {"TableName": "plain"}))["Table"]
            assert "LatestStreamArn" not in described
            assert (await api.error("UpdateTable", {
                "TableName": "plain", "StreamSpecification": {"StreamEnabled": False}},
                TARGET)) == "ValidationException: Table has no stream to disable: TableName: plain"
            assert (await api.error("UpdateTable", {
                "TableName": "t-keys_only", "StreamSpecification": {
                    "StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}}, TARGET)) == (
                "ValidationException: Table already has an enabled stream: "
                "TableName: t-keys_only")
            assert (await api.error("CreateTable", {**_table(None, "bad"), "StreamSpecification": {
                "StreamEnabled": True, "StreamViewType": "ALL"}}, TARGET)).startswith(
                "ValidationException: 1 validation error detected: Value 'ALL' at "
                "'streamSpecification.streamViewType' failed to satisfy constraint")
            arn = arns["KEYS_ONLY"]
            missing = arn.replace("t-keys_only", "nope")
            assert (await api.error("DescribeStream", {"StreamArn": missing})) == (
                f"ResourceNotFoundException: Requested resource not found: Stream: {missing} "
                "not found")
            assert (await api.error("GetRecords", {"ShardIterator": "garbage!"})) == (
                "ValidationException: Invalid ShardIterator")
            # A start ARN that is no stream ARN is refused; a start shard of no stream lists none.
            assert (await api.error("ListStreams", {"ExclusiveStartStreamArn": "kossa"})) == (
                "ValidationException: Invalid StreamArn: kossa")
            assert (await api.streams("DescribeStream", {
                "StreamArn": arn, "ExclusiveStartShardId": "zzzz-no-shard"}))[
                "StreamDescription"]["Shards"] == []
            shard = (await api.streams("DescribeStream", {"StreamArn": arn}))[
                "StreamDescription"]["Shards"][0]["ShardId"]
            it = (await api.streams("GetShardIterator", {
                "StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}))[
                "ShardIterator"]
            real = api.app.context.clock
            api.app.context.clock = lambda: real() + 16 * 60
            assert (await api.error("GetRecords", {"ShardIterator": it})).startswith(
                "ExpiredIteratorException: Iterator expired.")
            api.app.context.clock = real
            assert (await api.error("GetShardIterator", {
                "StreamArn": arn, "ShardId": "shardId-1", "ShardIteratorType": "LATEST"})
            ) == "ResourceNotFoundException: Requested resource not found: Shard does not exist"
            # Trimmed records: an iterator at a trimmed position is refused.
            await _trimmed(apis, arn)
            # Disabling keeps the stream readable, its shards closed.
            await api.ok("UpdateTable", {"TableName": "t-keys_only",
                                         "StreamSpecification": {"StreamEnabled": False}})
            described = (await api.ok("DescribeTable", {"TableName": "t-keys_only"}))["Table"]
            assert "StreamSpecification" not in described and described["LatestStreamArn"] == arn
            stream = (await api.streams("DescribeStream", {"StreamArn": arn}))[
                "StreamDescription"]
            assert stream["StreamStatus"] == "DISABLED" and stream["StreamViewType"] == "KEYS_ONLY"
            assert all("EndingSequenceNumber" in s["SequenceNumberRange"]
                       for s in stream["Shards"])
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


async def _trimmed(apis: list[Api], arn: str) -> None:
    records = await apis[0].all_records(arn)
    shard, found = next((s, rs) for s, rs in records.items() if rs)
    number = found[0]["dynamodb"]["SequenceNumber"]
    partition, index = int(number[16:]), int(number[:16])
    for api in apis:  # retention trims on every replica
        store = api.node.runner.core.streams.store
        assert store is not None
        store.trim_stream(partition, index)
    kind = "AT_SEQUENCE_NUMBER"
    assert (await apis[0].error("GetShardIterator", {
        "StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind,
        "SequenceNumber": number})) == (
        "TrimmedDataAccessException: The operation attempted to read past the oldest stream "
        "record in a shard.")
    it = (await apis[0].streams("GetShardIterator", {
        "StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}))[
        "ShardIterator"]
    page = await apis[0].streams("GetRecords", {"ShardIterator": it})
    assert [r["dynamodb"]["SequenceNumber"] for r in page["Records"]] == [
        r["dynamodb"]["SequenceNumber"] for r in found[1:]]


def test_ttl_expiry_and_counts(cluster: Path) -> None:
    async def main() -> None:
        nodes, apis = await _apis(cluster)
        try:
            api = apis[0]
            await api.ok("CreateTable", _table("NEW_AND_OLD_IMAGES"))
            await api.ok("UpdateTimeToLive", {"TableName": TABLE, "TimeToLiveSpecification": {
                "AttributeName": "expires", "Enabled": True}})
            now = api.app.context.clock()
            expired = [f"old{i}" for i in range(6)]
            kept = [f"new{i}" for i in range(4)]
            for k in expired:
                await api.ok("PutItem", {"TableName": TABLE, "Item": _item(k, expires=now - 10)})
            for k in kept:
                await api.ok("PutItem", {"TableName": TABLE, "Item": _item(k, expires=now + 3600)})
            ancient = now - 6 * 365 * 24 * 3600  # over five years ago: ignored, as in DynamoDB
            await api.ok("PutItem", {"TableName": TABLE, "Item": _item("ancient", expires=ancient)})
            await api.ok("PutItem", {"TableName": TABLE, "Item": _item("text", expires="soon")})
            for a in apis:
                await a.ok("DescribeTable", {"TableName": TABLE})  # catalogs know the table
            passes = [Maintenance(a.app.context, 1.0) for a in apis]
            present: list[str] = []
            for _ in range(20):  # a leadership moving between passes leaves a partition over
                for p in passes:
                    await p.run_pass()
                present = []
                for k in [*expired, *kept, "ancient", "text"]:
                    got = await apis[2].ok("GetItem", {"TableName": TABLE, "Key": {
                        "pk": {"S": k}}, "ConsistentRead": True})
                    if "Item" in got:
                        present.append(k)
                if present == [*kept, "ancient", "text"]:
                    break
            assert present == [*kept, "ancient", "text"]
            assert sum(p.expired for p in passes) == len(expired)  # each deleted once
            table = (await apis[3].ok("DescribeTable", {"TableName": TABLE}))["Table"]
            assert table["ItemCount"] == len(kept) + 2
            assert table["TableSizeBytes"] > 0
            arn = table["LatestStreamArn"]
            records = [r for rs in (await apis[1].all_records(arn)).values() for r in rs]
            removes = [r for r in records if r["eventName"] == "REMOVE"]
            assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in removes) == sorted(expired)
            for r in removes:
                assert r["userIdentity"] == {"Type": "Service",
                                             "PrincipalId": "dynamodb.amazonaws.com"}
                assert r["dynamodb"]["OldImage"]["expires"]["N"]
            assert all("userIdentity" not in r for r in records if r["eventName"] == "INSERT")
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


def test_shards_roll_close_and_age_out(cluster: Path) -> None:
    """Shards rolled every second: a closed shard ends its reads and names its child, the
    shard filter finds the child, sequence numbers outside a shard are refused, and a shard
    closed more than 24 hours ago is no longer listed."""

    async def main() -> None:
        nodes = await start_inprocess_cluster(cluster, 3, stream_shard_roll_s=1)
        apis = [Api(n) for n in nodes]
        try:
            api = apis[0]
            arn = (await api.ok("CreateTable", _table("NEW_IMAGE")))["TableDescription"][
                "LatestStreamArn"]
            await api.ok("PutItem", {"TableName": TABLE, "Item": _item("a", v=0)})
            closed: dict[str, Any] = {}
            for v in range(1, 60):  # until a's shard closed and its child has a record
                await asyncio.sleep(0.2)
                await api.ok("PutItem", {"TableName": TABLE, "Item": _item("a", v=v)})
                shards = (await apis[1].streams("DescribeStream", {"StreamArn": arn}))[
                    "StreamDescription"]["Shards"]
                closed = {s["ShardId"]: s for s in shards
                          if "EndingSequenceNumber" in s["SequenceNumberRange"]}
                if closed:
                    break
            assert closed, "no shard closed within 12 s"
            sid, shard = next(iter(closed.items()))
            it = (await apis[2].streams("GetShardIterator", {
                "StreamArn": arn, "ShardId": sid, "ShardIteratorType": "TRIM_HORIZON"}))[
                "ShardIterator"]
            page = await apis[2].streams("GetRecords", {"ShardIterator": it})
            assert "NextShardIterator" not in page  # read to its end: closed
            ending = shard["SequenceNumberRange"]["EndingSequenceNumber"]
            assert all(r["dynamodb"]["SequenceNumber"] <= ending for r in page["Records"])
            children = (await api.streams("DescribeStream", {
                "StreamArn": arn, "ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": sid}}))[
                "StreamDescription"]["Shards"]
            assert [c["ParentShardId"] for c in children] == [sid]
            assert children[0]["SequenceNumberRange"]["StartingSequenceNumber"] > ending
            beyond = str(int(ending[:16]) + 1).zfill(16) + ending[16:]
            assert (await api.error("GetShardIterator", {
                "StreamArn": arn, "ShardId": sid, "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                "SequenceNumber": beyond})) == (
                f"ValidationException: Invalid SequenceNumber: {beyond} is not a sequence "
                "number of this shard")
            assert (await api.error("DescribeStream", {
                "StreamArn": arn, "ShardFilter": {"Type": "PARENT", "ShardId": sid}})
            ).startswith("ValidationException: 1 validation error detected: Value 'PARENT'")
            real = api.app.context.clock
            api.app.context.clock = lambda: real() + 25 * 3600  # a day later
            aged = (await api.streams("DescribeStream", {"StreamArn": arn}))[
                "StreamDescription"]["Shards"]
            assert not any(s["ShardId"] in closed for s in aged)
            assert not any(s.get("ParentShardId") in closed for s in aged)
            assert (await api.error("GetShardIterator", {
                "StreamArn": arn, "ShardId": sid, "ShardIteratorType": "TRIM_HORIZON"})) == (
                "ResourceNotFoundException: Requested resource not found: Shard does not exist")
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


def test_a_disabled_stream_stays_readable_after_a_new_one_is_enabled(cluster: Path) -> None:
    """As DynamoDB: re-enabling a stream creates a new one (a new ARN), and the disabled one
    is still listed and readable, with its own records only, for the retention period."""
    async def main() -> None:
        nodes, apis = await _apis(cluster)
        try:
            api = apis[0]
            old = (await api.ok("CreateTable", _table("KEYS_ONLY")))[
                "TableDescription"]["LatestStreamArn"]
            await api.ok("PutItem", {"TableName": TABLE, "Item": _item("first")})
            await api.ok("UpdateTable", {"TableName": TABLE,
                                         "StreamSpecification": {"StreamEnabled": False}})
            await asyncio.sleep(CLOCK_MARGIN_MS / 1000 + 0.5)  # records are stamped by replicas
            await api.ok("UpdateTable", {"TableName": TABLE, "StreamSpecification": {
                "StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}})
            await api.ok("PutItem", {"TableName": TABLE, "Item": _item("second")})
            new = (await api.ok("DescribeTable", {"TableName": TABLE}))["Table"][
                "LatestStreamArn"]
            assert new != old
            listed = (await apis[1].streams("ListStreams", {"TableName": TABLE}))["Streams"]
            assert sorted(s["StreamArn"] for s in listed) == sorted([old, new])
            # Records belong to a stream by the applying replica's clock (see Known gaps in
            # docs/dynamodb-api.md): a replica that applied "first" late may also show it in the
            # new stream, so only what each stream must hold, and must not, is checked.
            for arn, status, key, other, view in (
                    (old, "DISABLED", "first", "second", "KEYS_ONLY"),
                    (new, "ENABLED", "second", None, "NEW_IMAGE")):
                stream = (await apis[2].streams("DescribeStream", {"StreamArn": arn}))[
                    "StreamDescription"]
                assert (stream["StreamStatus"], stream["StreamViewType"]) == (status, view)
                keys: list[str] = []
                for _ in range(100):  # a replica serving the read may apply the write later
                    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for rs in (
                        await apis[2].all_records(arn)).values() for r in rs]
                    if key in keys:
                        break
                    await asyncio.sleep(0.05)
                assert key in keys and other not in keys
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


def test_a_disabled_stream_is_forgotten_after_the_retention_period() -> None:
    description: dict[str, Any] = {"TableName": TABLE}
    day_ms = 24 * 3600 * 1000
    apply_spec(description, {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}, 1000.0,
               updating=False)
    apply_spec(description, {"StreamEnabled": False}, 2000.0, updating=True)
    apply_spec(description, {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}, 3000.0,
               updating=True)
    assert [old["ViewType"] for old in description["StreamHistory"]] == ["KEYS_ONLY"]
    apply_spec(description, {"StreamEnabled": False}, 4000.0, updating=True)
    # Enabled again a day after the first stream was disabled: only the second is kept.
    apply_spec(description, {"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
               2000.0 + day_ms / 1000 + 1, updating=True)
    assert [old["ViewType"] for old in description["StreamHistory"]] == ["NEW_IMAGE"]


def test_a_deleted_tables_stream_is_forgotten_after_the_retention_period(cluster: Path
                                                                          ) -> None:
    """A deleted table's stream is listed and described (DISABLED) for 24 hours after the
    deletion, by the API's clock; then it is not found, and the listing deletes its entry."""
    async def main() -> None:
        nodes, apis = await _apis(cluster)
        try:
            shift = [0.0]
            late = Api(nodes[1])
            late.app = DynamoDBApp(nodes[1].handle,  # type: ignore[arg-type]
                                   catalog_ttl=0.3, clock=lambda: time.time() + shift[0])
            arn = (await apis[0].ok("CreateTable", _table("OLD_IMAGE")))[
                "TableDescription"]["LatestStreamArn"]
            await apis[0].ok("PutItem", {"TableName": TABLE, "Item": _item("k", v=1)})
            await apis[0].ok("DeleteTable", {"TableName": TABLE})
            for hours in (0, 23):
                shift[0] = hours * 3600.0
                listed = (await late.streams("ListStreams", {}))["Streams"]
                assert [s["StreamArn"] for s in listed] == [arn]
                stream = (await late.streams("DescribeStream", {"StreamArn": arn}))[
                    "StreamDescription"]
                assert (stream["StreamStatus"], stream["StreamViewType"]) == (
                    "DISABLED", "OLD_IMAGE")
            shift[0] = 24 * 3600.0 + 1
            assert (await late.streams("ListStreams", {}))["Streams"] == []
            assert (await late.error("DescribeStream", {"StreamArn": arn})).startswith(
                "ResourceNotFoundException: Requested resource not found: Stream: ")
            assert await late.error("ListStreams", {"TableName": TABLE}) == (
                "ResourceNotFoundException: Requested resource not found: Table: "
                f"{TABLE} not found")
            left = await nodes[2].handle.scan(  # type: ignore[union-attr]
                STREAMS_BUCKET, 0, 1, None, 10, consistent=True)
            assert left.items == []
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())
