"""What durable GSI upkeep costs: PutItem throughput of a table with and without a global
secondary index, and how long after the last acknowledgement the index has caught up, on a
three-node cluster inside one process (lmdb, ring of 16).

Owns: nothing the product imports; run by hand.
May import: ``dynamokv``.

Usage (from the repository root)::

    PYTHONPATH=src python bench/gsi_outbox_bench.py [--items N] [--clients C] [--rounds R]

Writes go through the three nodes' API objects (no HTTP), ``C`` at a time. "Caught up" is
when no partition leader has an index outbox record left (every acknowledged write's index
entries written; the indexed-through marks follow within ``MARK_DELAY``). Rounds alternate
the two tables; each figure is the best round.
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

from inprocess_cluster import call, start_cluster, table_spec

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.indexes.drain import MARK_DELAY
from dynamokv.runtime.server import RunningNode


def _table(name: str, indexed: bool) -> dict[str, Any]:
    spec = table_spec(name)
    if indexed:
        spec["AttributeDefinitions"].append({"AttributeName": "g", "AttributeType": "S"})
        spec["GlobalSecondaryIndexes"] = [{
            "IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}]
    return spec


def _pending(nodes: list[RunningNode]) -> bool:
    for node in nodes:
        core = node.runner.core
        for partition, raft in core.logs.groups.items():
            if raft.is_leader() and core.outbox.first(partition) is not None:
                return True
    return False


async def _round(apps: list[DynamoDBApp], nodes: list[RunningNode], table: str, items: int,
                 clients: int, round_: int) -> tuple[float, float]:
    todo = iter(range(items))

    async def client(w: int) -> None:
        for i in todo:
            await call(apps[(w + i) % len(apps)], "PutItem", {"TableName": table, "Item": {
                "pk": {"S": f"k{i}"}, "g": {"S": f"g{(i + round_) % 10}"},
                "pad": {"S": "x" * 1024}}})

    start = time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(clients)))
    acked = time.perf_counter()
    while _pending(nodes):
        await asyncio.sleep(0.005)
    return items / (acked - start), time.perf_counter() - acked


async def main(items: int, clients: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = await start_cluster(Path(tmp))
        try:
            apps = [DynamoDBApp(n.handle) for n in nodes if n.handle is not None]
            await call(apps[0], "CreateTable", _table("plain", False))
            await call(apps[0], "CreateTable", _table("indexed", True))
            best = {"plain": 0.0, "indexed": 0.0}
            lags: list[float] = []
            for r in range(rounds):
                for table in ("plain", "indexed"):
                    rate, lag = await _round(apps, nodes, table, items, clients, r)
                    best[table] = max(best[table], rate)
                    if table == "indexed":
                        lags.append(lag)
                await asyncio.sleep(2 * MARK_DELAY)  # the marks of the round, then the next
            print(f"PutItem, no index:        {best['plain']:8.0f} items/s")
            print(f"PutItem, one GSI (ALL):   {best['indexed']:8.0f} items/s "
                  f"({100 * (best['indexed'] / best['plain'] - 1):+.0f}%)")
            print("index caught up after the last ack: "
                  + ", ".join(f"{lag:.2f} s" for lag in lags))
        finally:
            for n in nodes:
                await n.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.clients, args.rounds))
