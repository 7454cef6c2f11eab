"""The table sweep's counts (api/maintenance.py) as DescribeTable shows them: the table's
ItemCount/TableSizeBytes and each secondary index's ItemCount/IndexSizeBytes, counted from the
base items as the index holds them (every key attribute present); refreshed by the next pass.
Runs the app over a LocalHandle that, like a one-node cluster, leads every partition."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from dynamokv.api import maintenance
from dynamokv.api.app import DynamoDBApp
from dynamokv.api.handle import TABLE_BUCKET_PREFIX
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.maintenance import STATS_BUCKET, Maintenance
from dynamokv.runtime.metrics import NodeMetrics

TARGET = "DynamoDB_20120810."
PARTITIONS = 4


class LeadingHandle(LocalHandle):
    """A LocalHandle that leads every one of ``q`` partitions, as a one-node cluster does."""

    q = PARTITIONS

    def leading_partitions(self) -> list[int]:
        return list(range(PARTITIONS))


async def call(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                orjson.dumps(body))
    out: dict[str, Any] = orjson.loads(response.body)
    assert response.status == 200, out
    return out


def index_figures(table: dict[str, Any], kind: str) -> dict[str, tuple[int, int]]:
    return {i["IndexName"]: (i["ItemCount"], i["IndexSizeBytes"]) for i in table[kind]}


def test_table_and_index_counts_follow_the_sweep() -> None:
    async def main() -> None:
        app = DynamoDBApp(LeadingHandle())
        s = {"AttributeType": "S"}
        await call(app, "CreateTable", {
            "TableName": "counted", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": n, **s} for n in ("pk", "sk", "g", "l")],
            "GlobalSecondaryIndexes": [{"IndexName": "by_g", "Projection": {
                "ProjectionType": "KEYS_ONLY"}, "KeySchema": [
                {"AttributeName": "g", "KeyType": "HASH"}]}],
            "LocalSecondaryIndexes": [{"IndexName": "by_l", "Projection": {
                "ProjectionType": "ALL"}, "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "l", "KeyType": "RANGE"}]}]})
        before = (await call(app, "DescribeTable", {"TableName": "counted"}))["Table"]
        assert (before["ItemCount"], before["TableSizeBytes"]) == (0, 0)
        assert index_figures(before, "GlobalSecondaryIndexes") == {"by_g": (0, 0)}
        big = "x" * 500  # not projected into the KEYS_ONLY index
        for i in range(6):
            item = {"pk": {"S": f"p{i}"}, "sk": {"S": "s"}, "body": {"S": big}}
            if i < 4:
                item["g"] = {"S": f"g{i % 2}"}
            if i >= 3:
                item["l"] = {"S": f"l{i}"}
            await call(app, "PutItem", {"TableName": "counted", "Item": item})
        sweep = Maintenance(app.context, 60.0)
        await sweep.run_pass()
        table = (await call(app, "DescribeTable", {"TableName": "counted"}))["Table"]
        assert table["ItemCount"] == 6 and table["TableSizeBytes"] > 6 * 500
        (g_items, g_bytes), = index_figures(table, "GlobalSecondaryIndexes").values()
        (l_items, l_bytes), = index_figures(table, "LocalSecondaryIndexes").values()
        assert (g_items, l_items) == (4, 3)
        assert 0 < g_bytes < 4 * 100  # keys only: pk, sk and g of four items
        assert l_bytes > 3 * 500  # ALL: the whole items
        # A change shows at the next pass: one item leaves the global index, one is deleted.
        await call(app, "UpdateItem", {"TableName": "counted", "Key": {
            "pk": {"S": "p0"}, "sk": {"S": "s"}}, "UpdateExpression": "REMOVE g"})
        await call(app, "DeleteItem", {"TableName": "counted", "Key": {
            "pk": {"S": "p5"}, "sk": {"S": "s"}}})
        await sweep.run_pass()
        table = (await call(app, "DescribeTable", {"TableName": "counted"}))["Table"]
        assert table["ItemCount"] == 5
        assert index_figures(table, "GlobalSecondaryIndexes")["by_g"][0] == 3
        assert index_figures(table, "LocalSecondaryIndexes")["by_l"][0] == 2
        # A deleted table's counts go with the next pass.
        table_id = table["TableId"].encode()
        assert await app.context.handle.read(STATS_BUCKET, table_id) is not None
        await call(app, "DeleteTable", {"TableName": "counted"})
        await sweep.run_pass()
        assert await app.context.handle.read(STATS_BUCKET, table_id) is None

    asyncio.run(main())


class BrokenScans(LeadingHandle):
    """Scans fail while ``broken``: a sweep pass then fails."""

    broken = True

    async def scan(self, bucket: str, segment: int, total_segments: int, after: bytes | None,
                   limit: int, *, consistent: bool = False) -> Any:
        if self.broken and bucket.startswith(TABLE_BUCKET_PREFIX):
            raise ConnectionError("replicas unreachable")
        return await super().scan(bucket, segment, total_segments, after, limit,
                                  consistent=consistent)


def test_a_failed_pass_is_counted_and_the_next_pass_retries() -> None:
    async def main() -> None:
        handle = BrokenScans()
        app = DynamoDBApp(handle)
        await call(app, "CreateTable", {
            "TableName": "flaky", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]})
        await call(app, "PutItem", {"TableName": "flaky", "Item": {"pk": {"S": "a"}}})
        metrics = NodeMetrics()
        sweep = Maintenance(app.context, 0.01, metrics=metrics).start()
        try:
            for _ in range(1000):  # bounded: a pass every 10 ms
                if sweep.failed_passes:
                    break
                await asyncio.sleep(0.01)
            assert sweep.failed_passes >= 1
            assert sweep.last_error == "ConnectionError: replicas unreachable"
            handle.broken = False
            passes = sweep.passes
            for _ in range(1000):
                if sweep.passes > passes:
                    break
                await asyncio.sleep(0.01)
        finally:
            await sweep.stop()
        described = (await call(app, "DescribeTable", {"TableName": "flaky"}))["Table"]
        assert described["ItemCount"] == 1
        exported = metrics.render().decode()
        failed = f"{float(sweep.failed_passes)}"
        assert f'dynamokv_background{{what="table_sweep_failed_passes"}} {failed}' in exported
        assert 'dynamokv_background{what="table_sweep_passes"}' in exported

    asyncio.run(main())


class BusyNode(LeadingHandle):
    """A LeadingHandle whose admission control refuses the first ``refusals`` background
    batches, as a node does while its foreground p99 is high."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.asked = 0

    def admit_background(self) -> bool:
        self.asked += 1
        return self.asked > self.refusals


async def _sweep_a_paged_table(handle: BusyNode) -> tuple[Maintenance, int]:
    app = DynamoDBApp(handle)
    await call(app, "CreateTable", {
        "TableName": "large", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]})
    for i in range(40):
        await call(app, "PutItem", {"TableName": "large", "Item": {"pk": {"S": f"k{i}"}}})
    sweep = Maintenance(app.context, 60.0)
    await sweep.run_pass()
    return sweep, (await call(app, "DescribeTable", {"TableName": "large"}))["Table"][
        "ItemCount"]


def test_the_pages_of_a_large_table_wait_for_admission_control(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "PAGE", 3)  # 40 items in 4 partitions: several pages each
    monkeypatch.setattr(maintenance, "PACE_STEP_S", 0.001)
    handle = BusyNode(refusals=5)
    sweep, count = asyncio.run(_sweep_a_paged_table(handle))
    assert sweep.paced == 5 and handle.asked > 5  # each page after a partition's first asks
    assert count == 40


def test_a_sweep_that_is_never_admitted_still_finishes_its_pass(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "PAGE", 10)
    monkeypatch.setattr(maintenance, "PACE_STEP_S", 0.001)
    monkeypatch.setattr(maintenance, "PACE_WAIT_S", 0.005)
    sweep, count = asyncio.run(_sweep_a_paged_table(BusyNode(refusals=10**9)))
    assert count == 40 and sweep.paced > 0
