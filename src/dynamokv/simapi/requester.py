"""SimRequester: a node's local requests (``LocalRequested``) over the simulator, as awaitables.

Owns: ``SimRequester`` (a ``dynamokv.api.request_handle.Requester`` and a ``sim.world
.ClientSink``), ``ConnectionLost``, ``REF_BASE``.
May import: stdlib (``asyncio``), ``dynamokv.sim``, ``dynamokv.core``, ``dynamokv.errors``.

Each request travels as ``Simulator.local_send`` does it: over a client link that only delays,
no wire form. Replies carry no request id (``CasResult``), so every request gets a client
reference of its own, drawn from one counter per simulator above ``REF_BASE`` (clear of the
workload's and the operator's references), and its answer resolves the future waiting on that
reference. Outcomes other than a reply become exceptions an API handler already knows:

- the node is down (connection refused): ``UnavailableError`` -- certainly not applied;
- the node crashed with the request in flight: ``ConnectionLost`` -- may or may not have been;
- no answer within ``timeout_ms`` of virtual time (a paused node): ``RequestTimeout`` -- may or
  may not have been.

The API is modelled as a front end beside the node, not inside its process: a crash of the node
fails the requests in flight; the API itself keeps running.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import Iterator
from typing import Any

from dynamokv.errors import RequestTimeout, UnavailableError
from dynamokv.sim.world import Simulator

REF_BASE = 1 << 32
TIMEOUT_MS = 10_000

_refs: weakref.WeakKeyDictionary[Simulator, Iterator[int]] = weakref.WeakKeyDictionary()


def _next_ref(sim: Simulator) -> int:
    counter = _refs.get(sim)
    if counter is None:
        counter = _refs[sim] = itertools.count(REF_BASE)
    return next(counter)


class ConnectionLost(UnavailableError):
    """The node's process died with the request in flight: it may or may not have applied."""

    code = "ConnectionLost"


class SimRequester:
    """Local requests of node ``node_id`` of ``sim``; await them on a ``VirtualLoop``."""

    def __init__(self, sim: Simulator, node_id: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
        if node_id not in sim.nodes:
            raise ValueError(f"no node {node_id!r} in the simulator (has {sorted(sim.nodes)})")
        self.sim = sim
        self.node_id = node_id
        self.timeout_ms = timeout_ms
        self._pending: dict[int, asyncio.Future[Any]] = {}

    @property
    def q(self) -> int:
        core = self.sim.nodes[self.node_id].core
        ring = core.ring if core is not None else None
        return ring.q if ring is not None else self.sim.settings.q

    async def local_request(self, request: object) -> Any:
        """Send ``request`` to the node's core and wait for its reply message."""
        ref = _next_ref(self.sim)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ref] = fut
        self.sim.register_sink(ref, self)
        self.sim.local_send(self.node_id, ref, request)
        try:
            async with asyncio.timeout(self.timeout_ms / 1000):
                return await fut
        except TimeoutError:
            raise RequestTimeout(f"{self.node_id} did not answer within {self.timeout_ms} ms "
                                 "of virtual time") from None
        finally:
            self._pending.pop(ref, None)

    # ---- ClientSink -----------------------------------------------------------------------

    def on_reply(self, ref: int, msg: object) -> None:
        fut = self._pending.get(ref)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def on_refused(self, ref: int, req_id: int) -> None:
        fut = self._pending.get(ref)
        if fut is not None and not fut.done():
            fut.set_exception(UnavailableError(f"{self.node_id} refused the connection"))

    def on_connection_lost(self, node: str) -> None:
        if node != self.node_id:
            return
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionLost(f"connection to {node} lost mid-request"))


__all__ = ["REF_BASE", "TIMEOUT_MS", "ConnectionLost", "SimRequester"]
