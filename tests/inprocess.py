"""A cluster of real nodes (TCP on 127.0.0.1, memory engine) inside one test's event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dynamokv.runtime.config import NodeConfig
from dynamokv.runtime.server import RunningNode, start_node
from tests.cluster_harness import free_ports


async def start_inprocess_cluster(root: Path, count: int = 3, **options: Any
                                  ) -> list[RunningNode]:
    """Start ``count`` nodes joining through n1; return once they share one full ring.
    ``options``: more ``NodeConfig`` fields, the same for every node."""
    ports = free_ports(count)
    nodes: list[RunningNode] = []
    try:
        for i, port in enumerate(ports, start=1):
            config = NodeConfig(node_id=f"n{i}", listen=f"127.0.0.1:{port}",
                                data_dir=root / f"n{i}",
                                seeds=() if i == 1 else (f"127.0.0.1:{ports[0]}",),
                                engine="memory", ring_size=16, **options)
            nodes.append(await start_node(config))
        for _ in range(200):
            rings = {n.runner.core.ring for n in nodes}
            ring = next(iter(rings))
            if len(rings) == 1 and ring is not None and len(ring.members) == count:
                return nodes
            await asyncio.sleep(0.05)
    except BaseException:
        for n in nodes:
            await n.stop()
        raise
    for n in nodes:
        await n.stop()
    raise AssertionError("cluster did not form")
