"""What the table sweep costs: one counting pass over a table of N items, without secondary
indexes and with one global and one local index (whose counts need each item parsed).

Owns: nothing the product imports; run by hand.
May import: ``dynamokv``.

Usage (from the repository root)::

    PYTHONPATH=src python bench/sweep_bench.py [--items N] [--rounds R]

Runs the app over an in-memory handle that leads every partition (as a one-node cluster
does), so the figure is the sweep's own CPU cost (reading, decoding, counting), not the
storage or the network's. Each figure is the best of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

try:
    import dynamokv  # noqa: F401
except ImportError:  # run without PYTHONPATH: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.maintenance import Maintenance

PARTITIONS = 1  # one segment: LocalHandle scans every key per segment


class LeadingHandle(LocalHandle):
    q = PARTITIONS

    def leading_partitions(self) -> list[int]:
        return list(range(PARTITIONS))


async def _call(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> None:
    response = await app.handle("POST", "/", {"x-amz-target": f"DynamoDB_20120810.{operation}"},
                                orjson.dumps(body))
    assert response.status == 200, response.body


def _table(name: str, indexed: bool) -> dict[str, Any]:
    s = {"AttributeType": "S"}
    body: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", **s}, {"AttributeName": "sk", **s}]}
    if indexed:
        body["AttributeDefinitions"] += [{"AttributeName": "g", **s}, {"AttributeName": "l", **s}]
        body["GlobalSecondaryIndexes"] = [{
            "IndexName": "by_g", "Projection": {"ProjectionType": "KEYS_ONLY"},
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}]
        body["LocalSecondaryIndexes"] = [{"IndexName": "by_l", "Projection": {
            "ProjectionType": "ALL"}, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                    {"AttributeName": "l", "KeyType": "RANGE"}]}]
    return body


async def _pass_seconds(items: int, indexed: bool, rounds: int) -> float:
    app = DynamoDBApp(LeadingHandle())
    await _call(app, "CreateTable", _table("swept", indexed))
    for i in range(items):
        item = {"pk": {"S": f"p{i % 500}"}, "sk": {"S": f"s{i}"}, "g": {"S": f"g{i % 7}"},
                "l": {"S": f"l{i}"}, "body": {"S": "x" * 100}, "n": {"N": str(i)}}
        await _call(app, "PutItem", {"TableName": "swept", "Item": item})
    sweep = Maintenance(app.context, 3600.0)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        await sweep.run_pass()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for indexed in (False, True):
        seconds = asyncio.run(_pass_seconds(args.items, indexed, args.rounds))
        label = "with a global and a local index" if indexed else "without indexes"
        print(f"{args.items} items, {label}: one pass {seconds:.2f} s "
              f"({args.items / seconds:,.0f} items/s)")


if __name__ == "__main__":
    main()
