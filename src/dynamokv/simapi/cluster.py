"""SimApiCluster: the real DynamoDB application on every node of a simulated cluster.

Owns: ``SimApiCluster`` (a ``Simulator``, a ``VirtualLoop`` over it, and one ``DynamoDBApp``
per node, each over a ``RequestHandle`` of a ``SimRequester``), ``ApiResult``, ``seeded_ids``.
May import: stdlib, ``orjson``, ``dynamokv.sim``, ``dynamokv.api``, ``dynamokv.simapi``.

Everything an app draws comes from the seed: its wall clock is its node's simulated wall clock
(skew and jumps included), its catalog cache runs on the loop's virtual monotonic time, and its
ids (TableId, transaction ids, request ids) and random choices come from a ``random.Random``
seeded from the simulator's own ``rng`` (drawn once per node at construction). So a seed
replays the same responses and the same trace digest -- within one process; across processes
the API's iteration over sets of strings follows ``PYTHONHASHSEED``, so pin it to compare.

Usage::

    cluster = SimApiCluster(seed=7)          # 3 nodes, no faults (SimOptions(seed=7))
    cluster.bootstrap()
    result = cluster.run(cluster.call("n1", "PutItem", {...}))
    cluster.close()
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from dynamokv.api.app import TARGET_PREFIX, DynamoDBApp
from dynamokv.api.request_handle import RequestHandle
from dynamokv.sim.options import SimOptions
from dynamokv.sim.world import Simulator
from dynamokv.simapi.loop import VirtualLoop
from dynamokv.simapi.requester import TIMEOUT_MS, SimRequester

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ApiResult:
    """One answer of the app: HTTP status, the decoded JSON body, and when (virtual ms)."""

    status: int
    body: dict[str, Any]
    invoke_ms: int
    end_ms: int

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def error_type(self) -> str | None:
        """The DynamoDB error's short name (``ConditionalCheckFailedException``), or None."""
        if self.ok:
            return None
        return str(self.body.get("__type", "")).rpartition("#")[2]


def seeded_ids(rng: random.Random) -> Callable[[], uuid.UUID]:
    """Version-4 UUIDs drawn from ``rng``: production's shape, the seed's values."""
    return lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


class SimApiCluster:
    """A simulated cluster with the DynamoDB app on each node; see the module docstring."""

    def __init__(self, seed: int, options: SimOptions | None = None, *,
                 catalog_ttl: float = 3.0, request_timeout: float = 60.0,
                 requester_timeout_ms: int = TIMEOUT_MS) -> None:
        self.sim = Simulator(seed, options if options is not None else SimOptions(seed=seed))
        self.loop = VirtualLoop(self.sim)
        self.requesters: dict[str, SimRequester] = {}
        self.apps: dict[str, DynamoDBApp] = {}
        for node_id in self.sim.node_ids():
            self.add_app(node_id, catalog_ttl=catalog_ttl, request_timeout=request_timeout,
                         requester_timeout_ms=requester_timeout_ms)

    def add_app(self, node_id: str, *, catalog_ttl: float = 3.0, request_timeout: float = 60.0,
                requester_timeout_ms: int = TIMEOUT_MS) -> DynamoDBApp:
        """Put an app on ``node_id`` (e.g. one that joined mid-run)."""
        sim = self.sim
        rng = random.Random(sim.rng.getrandbits(64))
        requester = SimRequester(sim, node_id, timeout_ms=requester_timeout_ms)
        app = DynamoDBApp(
            RequestHandle(requester),
            catalog_ttl=catalog_ttl,
            request_timeout=request_timeout,
            clock=lambda: sim.clocks.wall_ms(node_id, sim.now_ms) / 1000,
            monotonic=self.loop.time,
            ids=seeded_ids(rng),
            rng=rng,
        )
        self.requesters[node_id] = requester
        self.apps[node_id] = app
        return app

    def bootstrap(self) -> None:
        """Start every node; raises if the rings are not complete within the bound."""
        if not self.sim.bootstrap():
            raise RuntimeError(f"seed {self.sim.seed}: rings incomplete at t={self.sim.now_ms}")

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` on the virtual loop to completion."""
        return self.loop.run(main)

    async def call(self, node_id: str, operation: str, body: dict[str, Any]) -> ApiResult:
        """One DynamoDB request (``operation`` as in ``X-Amz-Target``) to ``node_id``'s app."""
        invoke = self.sim.now_ms
        response = await self.apps[node_id].handle(
            "POST", "/", {"x-amz-target": TARGET_PREFIX + operation},
            orjson.dumps(body))
        decoded = orjson.loads(response.body) if response.body else {}
        return ApiResult(response.status, decoded, invoke, self.sim.now_ms)

    def close(self) -> None:
        """Cancel background work still pending (index upkeep, sweeps) and close the loop."""
        self.loop.shutdown()


__all__ = ["ApiResult", "SimApiCluster", "seeded_ids"]
