"""What a stream costs: PutItem throughput of a table with and without a stream, and GetRecords
throughput, on a three-node cluster inside one process (lmdb, ring of 16).

Owns: nothing the product imports; run by hand.
May import: ``dynamokv``.

Usage (from the repository root)::

    PYTHONPATH=src python bench/streams_bench.py [--items N] [--rounds R] [--shard-roll S]

``--shard-roll`` closes each partition's shard every S seconds (default 14400, DynamoDB's 4 h),
so a short period makes the read go through many closed shards and their children.

Writes are sequential through node 1's API object (no HTTP), so the figures are latency-bound:
they show the relative cost of recording, not the cluster's capacity. Rounds alternate the two
tables; each figure is the best round.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import dynamokv  # noqa: F401
except ImportError:  # run without PYTHONPATH: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from inprocess_cluster import STREAMS, call, start_cluster, table_spec

from dynamokv.api.app import DynamoDBApp


def _table(name: str, stream: bool) -> dict[str, Any]:
    spec = table_spec(name)
    if stream:
        spec["StreamSpecification"] = {"StreamEnabled": True,
                                       "StreamViewType": "NEW_AND_OLD_IMAGES"}
    return spec


async def _puts(app: DynamoDBApp, table: str, items: int, round_: int) -> float:
    start = time.perf_counter()
    for i in range(items):
        await call(app, "PutItem", {"TableName": table, "Item": {
            "pk": {"S": f"k{i}"}, "round": {"N": str(round_)}, "pad": {"S": "x" * 100}}})
    return items / (time.perf_counter() - start)


async def _read_all(app: DynamoDBApp, arn: str) -> tuple[int, int, float]:
    """(records, shards, records/s) of the whole stream read from TRIM_HORIZON, every shard
    to its end (closed) or to what is there (open), DescribeStream paged."""
    s = STREAMS
    start = time.perf_counter()
    shards: list[dict[str, Any]] = []
    page: dict[str, Any] = {"StreamArn": arn}
    while True:
        described = (await call(app, "DescribeStream", page, s))["StreamDescription"]
        shards += described["Shards"]
        if "LastEvaluatedShardId" not in described:
            break
        page = {"StreamArn": arn, "ExclusiveStartShardId": described["LastEvaluatedShardId"]}
    count = 0
    for shard in shards:
        it = (await call(app, "GetShardIterator", {
            "StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"},
            s))["ShardIterator"]
        while it:
            records = await call(app, "GetRecords", {"ShardIterator": it}, s)
            count += len(records["Records"])
            if not records["Records"]:
                break
            it = records.get("NextShardIterator")
    return count, len(shards), count / (time.perf_counter() - start)


async def main(items: int, rounds: int, roll_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = await start_cluster(Path(tmp), stream_shard_roll_s=roll_s)
        try:
            assert nodes[0].handle is not None
            app = DynamoDBApp(nodes[0].handle)
            await call(app, "CreateTable", _table("plain", False))
            created = await call(app, "CreateTable", _table("streamed", True))
            arn = created["TableDescription"]["LatestStreamArn"]
            best = {"plain": 0.0, "streamed": 0.0}
            for r in range(rounds):
                for table in ("plain", "streamed"):
                    best[table] = max(best[table], await _puts(app, table, items, r))
            count, shards, rate = await _read_all(app, arn)
            print(f"PutItem, no stream:          {best['plain']:8.0f} items/s")
            print(f"PutItem, NEW_AND_OLD_IMAGES: {best['streamed']:8.0f} items/s "
                  f"({100 * (best['streamed'] / best['plain'] - 1):+.0f}%)")
            print(f"GetRecords (TRIM_HORIZON, all {shards} shards): {count} records, "
                  f"{rate:8.0f} records/s")
        finally:
            for n in nodes:
                await n.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shard-roll", type=float, default=4 * 3600.0, metavar="SECONDS")
    args = parser.parse_args()
    asyncio.run(main(args.items, args.rounds, args.shard_roll))
