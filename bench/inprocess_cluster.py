"""A three-node cluster inside one process for the benchmarks that drive the nodes' API
objects directly (no HTTP), and DynamoDB calls through them.

Owns: ``start_cluster`` (lmdb, ring of 16, on free ports of 127.0.0.1, settled), ``call`` (one
DynamoDB or DynamoDB Streams operation, retried while the cluster is electing) and
``table_spec`` (a pay-per-request table keyed by the string ``pk``).
May import: ``dynamokv``, ``common``. Benchmarks import this module as ``inprocess_cluster``
(Python puts the script's own directory, ``bench/``, first on ``sys.path``) once ``dynamokv``
is importable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from common import free_ports

from dynamokv.api.app import DynamoDBApp
from dynamokv.runtime.config import NodeConfig
from dynamokv.runtime.server import RunningNode, start_node

DYNAMODB = "DynamoDB_20120810."
STREAMS = "DynamoDBStreams_20120810."


async def start_cluster(root: Path, **options: Any) -> list[RunningNode]:
    """Three nodes under ``root``, once they agree on a ring of all three and their partition
    logs have settled; ``options``: more ``NodeConfig`` fields for every node."""
    ports = free_ports(3)
    nodes = []
    for i, port in enumerate(ports, start=1):
        nodes.append(await start_node(NodeConfig(
            node_id=f"n{i}", listen=f"127.0.0.1:{port}", data_dir=root / f"n{i}",
            seeds=() if i == 1 else (f"127.0.0.1:{ports[0]}",), ring_size=16, **options)))
    for _ in range(400):
        rings = {n.runner.core.ring for n in nodes}
        ring = next(iter(rings))
        if len(rings) == 1 and ring is not None and len(ring.members) == 3:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(8)  # let the partition logs settle on their members and leaders
    return nodes


async def call(app: DynamoDBApp, op: str, body: dict[str, Any], prefix: str = DYNAMODB
               ) -> dict[str, Any]:
    """The answer to ``op``, retried (50 tries) while it fails, as during an election."""
    for _ in range(50):
        r = await app.handle("POST", "/", {"x-amz-target": prefix + op}, orjson.dumps(body))
        out: dict[str, Any] = orjson.loads(r.body)
        if r.status == 200:
            return out
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{op} failed: {out}")


def table_spec(name: str) -> dict[str, Any]:
    """CreateTable's parameters for a pay-per-request table keyed by the string ``pk``."""
    return {
        "TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST"}
