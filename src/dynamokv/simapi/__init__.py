"""The DynamoDB API, unchanged, driven over the deterministic simulator in virtual time.

Owns: the bridge between the async API layer and the asyncio-free simulator: ``VirtualLoop``
(an asyncio event loop on the simulator's clock), ``SimRequester`` (a node's local requests as
awaitables) and ``SimApiCluster`` (the app on every node of a simulated cluster).
May import: stdlib (``asyncio`` included), ``dynamokv.sim``, ``dynamokv.api``, ``dynamokv.core``,
``dynamokv.errors``; never ``dynamokv.runtime`` (the production event loop and sockets) or
``dynamokv.cli``. ``sim`` itself never imports asyncio: this package is where the two meet.

Design and usage: ``docs/simulator.md`` (section "The API over the simulator").
"""

from __future__ import annotations

from dynamokv.simapi.cluster import ApiResult, SimApiCluster, seeded_ids
from dynamokv.simapi.loop import Stalled, VirtualLoop
from dynamokv.simapi.requester import ConnectionLost, SimRequester

__all__ = ["ApiResult", "ConnectionLost", "SimApiCluster", "SimRequester", "Stalled",
           "VirtualLoop", "seeded_ids"]
