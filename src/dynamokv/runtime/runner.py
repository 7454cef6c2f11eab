"""NodeRunner: drives a ``NodeCore`` with real time, real sockets and a real storage engine.

Owns: feeding events to the core, executing its effects, the one loop timer armed at
``next_deadline()``, ring persistence, and per-request metrics.
May import: ``asyncio``, ``time``, ``dynamokv.core``, ``dynamokv.wire``, ``dynamokv.runtime.*``.

The core is called from the event loop thread only, one event at a time (run to completion),
so nothing in it needs a lock.

Group commit (``group_commit``: an engine with ``begin_group``/``commit_group``, i.e. lmdb).
The first event of a loop turn opens a storage group; every event of the turn writes into it
and its effects are held; at the start of the next turn the group is committed in one
transaction and only then are the held effects executed, in order. So nothing leaves the node
(a client's answer, a Raft acknowledgement to a peer) before the writes it depends on are
committed, as without a group, while a turn's many writes (a 1-node PutItem's log append and
apply, a follower's appends of many messages) cost one commit. If a commit fails, the turn's
writes are lost although the core has counted them: its held effects are dropped and the node
stops (``on_storage_failure``), to start again from what is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import time
from typing import Any

from dynamokv.core.effects import Effect, Log, PersistRing, Reply, Send, SendTo
from dynamokv.core.events import (
    ClientRequested,
    Event,
    LocalRequested,
    MessageReceived,
    PeerUnreachable,
    TimerFired,
)
from dynamokv.core.messages import (
    BucketPropsRequest,
    ErrorReply,
    GetReply,
    GetRequest,
    Hello,
    Message,
    PutRequest,
    RingRequest,
    StatusReply,
    StatusRequest,
)
from dynamokv.core.node import NodeCore
from dynamokv.core.requests import (
    CasRequest,
    RangeRequest,
    ScanRequest,
    StreamRead,
    TableRead,
    TableWrite,
)
from dynamokv.runtime.metrics import NodeMetrics
from dynamokv.runtime.node_pages import ring_view
from dynamokv.runtime.persist import save_ring
from dynamokv.runtime.sockets import LinkSettings
from dynamokv.runtime.transport import Transport

log = logging.getLogger("dynamokv.node")

_OP_NAMES: dict[type, str] = {
    GetRequest: "get", PutRequest: "put", RingRequest: "ring", StatusRequest: "status",
    BucketPropsRequest: "bucket",
}

# Requests of this node's own DynamoDB API (``local_request``); get and put share the native
# op names, so one latency series covers a key-value operation whichever protocol asked.
_LOCAL_OP_NAMES: dict[type, str] = {
    GetRequest: "get", PutRequest: "put", CasRequest: "cas", RangeRequest: "range",
    ScanRequest: "scan", TableRead: "get", TableWrite: "put", StreamRead: "stream",
}


class NodeRunner:
    def __init__(self, core: NodeCore, *, data_dir: Any, metrics: NodeMetrics,
                 storage_info: dict[str, Any], server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None,
                 wall_clock_offset_ms: int = 0, group_commit: Any = None) -> None:
        self.core = core
        self._wall_offset_ms = wall_clock_offset_ms
        self.data_dir = data_dir
        self.metrics = metrics
        self.storage_info = storage_info
        limits = core.limits
        self.transport = Transport(
            node_id=core.node_id,
            address_of=self._address_of,
            on_peer_message=self._on_peer_message,
            on_client_message=self._on_client_message,
            on_unreachable=self._on_unreachable,
            hello=lambda: Hello(core.node_id, core.ring.version if core.ring else 0,
                                core.settings.cluster_name),
            frame_bytes_max=limits.frame_bytes_max,
            send_queue_bytes_max=limits.send_queue_bytes_max,
            connect_timeout_ms=limits.connect_timeout_ms,
            server_ssl=server_ssl,
            client_ssl=client_ssl,
            links=LinkSettings.from_limits(limits),
            metrics=metrics,
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._arm_scheduled = False
        self._stopped = False
        self._started: dict[tuple[int, int], tuple[str, float]] = {}
        self._t0 = time.monotonic()
        self._local: dict[int, asyncio.Future[Any]] = {}
        self._local_started: dict[int, tuple[str, float]] = {}
        self._local_ids = 0
        self._group = group_commit  # see the module docstring; None: every write commits
        self._grouping = False
        self._held: list[Effect] = []
        self.storage_failed = False
        self.on_storage_failure = _stop_process

    # ---- clocks ------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._wall_offset_ms

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        await self.transport.listen(host, port)
        self._execute(self.core.start(self.now_ms()))
        self._arm_timer()
        self._publish_gauges()

    def _publish_gauges(self) -> None:
        """Every 2 s: background-work gauges and connected peers for Prometheus."""
        if getattr(self, "_stopped", False):
            return
        core = self.core
        self.metrics.set_background({
            "hints_pending": sum(core.hints.pending().values()),
            "hints_replayed": core.hints.replayed,
            "handoffs_active": len(core.handoff.status()["active"]),  # type: ignore[arg-type]
            "handoffs_queued": len(core.handoff.status()["queued"]),  # type: ignore[arg-type]
            "aae_exchanges": core.aae.exchanges,
            "aae_keys_repaired": core.aae.keys_repaired,
            "admission_rate_per_s": core.admission.rate,
            "quarantined": sum(core.store.quarantined().values()),
        })
        self.metrics.set_connected_peers(self.transport.peer_count())
        self._publish_health()
        asyncio.get_running_loop().call_later(2.0, self._publish_gauges)

    def _publish_health(self) -> None:
        """Ready once the node is a member of a ring it has not left (readiness probes)."""
        core = self.core
        ring = core.ring
        joined = ring is not None and ring.member(core.node_id) is not None and not core.left
        health = {"node": core.node_id, "cluster": core.settings.cluster_name,
                  "ready": joined, "ring_version": ring.version if ring else 0,
                  "left": core.left}
        try:
            status = {**core.status(self.now_ms()), **self.runtime_status()}
            # who owns and who leads which partition, for the dashboard's ring
            status.update(ring_view(core))
        except Exception:  # a status that fails to build must not stop the gauges
            log.exception("building the status page failed")
            status = {}
        self.metrics.set_health(health, status)

    async def stop(self) -> None:
        self._stopped = True
        if self._grouping:
            self._commit_turn()
        if self._timer is not None:
            self._timer.cancel()
        await self.transport.close()

    # ---- events in -----------------------------------------------------------------------------
    def _feed(self, event: Event) -> None:
        if self.storage_failed:
            return  # the core is ahead of the disk: it must not act any more
        if self._group is not None and not self._grouping:
            try:
                self._group.begin_group()
            except Exception:  # a closed engine (the node is stopping): writes fail on their own
                log.debug("no storage group for this turn", exc_info=True)
            else:
                self._grouping = True
                asyncio.get_running_loop().call_soon(self._commit_turn)
        try:
            effects = self.core.handle(event, self.now_ms(), self.wall_ms())
        except Exception:
            log.exception("core failed on %s", type(event).__name__)
            return
        if self._grouping:
            self._held.extend(effects)
        else:
            self._execute(effects)
        # The core's next deadline is asked for once per loop iteration, not once per event:
        # ``next_deadline`` looks at every timer of the core, and under load one iteration
        # delivers many messages. The callback runs at the end of this iteration, before the
        # loop next looks at its timers, so a deadline is armed as early as before.
        if not self._arm_scheduled:
            self._arm_scheduled = True
            asyncio.get_running_loop().call_soon(self._arm_after_events)

    def _on_peer_message(self, src: str, msg: Message) -> None:
        self._feed(MessageReceived(src, msg))

    def _on_client_message(self, client: int, msg: Message) -> None:
        req_id = getattr(msg, "req_id", None)
        if isinstance(req_id, int):
            self._started[(client, req_id)] = (_OP_NAMES.get(type(msg), "other"),
                                               time.perf_counter())
        self._feed(ClientRequested(client, msg))

    def local_request(self, request: object) -> asyncio.Future[Any]:
        """Ask this node's core for ``request`` (a ``core.requests`` value or a Get/Put
        request); the future resolves with the core's reply message."""
        self._local_ids += 1
        ref = -self._local_ids  # negative: never a transport client
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._local[ref] = fut
        self._local_started[ref] = (_LOCAL_OP_NAMES.get(type(request), "other"),
                                    time.perf_counter())
        self._feed(LocalRequested(ref, request))
        return fut

    def _on_unreachable(self, node: str) -> None:
        if node.startswith("@"):
            return  # a seed we dialled by address; the join timer retries
        self._feed(PeerUnreachable(node))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._feed(TimerFired())

    def _commit_turn(self) -> None:
        """Commit the turn's writes, then let its effects out (see the module docstring)."""
        if not self._grouping:
            return  # committed already (``stop``)
        self._grouping = False
        held, self._held = self._held, []
        try:
            self._group.commit_group()
        except Exception:
            log.critical("a storage group commit failed: %d effects dropped; stopping the "
                         "node to start again from what is on disk", len(held), exc_info=True)
            self.storage_failed = True
            self.on_storage_failure()
            return
        self._execute(held)

    def _arm_after_events(self) -> None:
        self._arm_scheduled = False
        if not self._stopped:
            self._arm_timer()

    def _arm_timer(self) -> None:
        at = self.core.next_deadline()
        if at is None or (self._timer_at is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (at - self.now_ms()) / 1000)
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    # ---- effects out ---------------------------------------------------------------------------
    def _execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.transport.send_to_node(effect.to, effect.msg)
            elif isinstance(effect, Reply):
                self._reply(effect.client, effect.msg)
            elif isinstance(effect, SendTo):
                self.transport.send_to_address(effect.address, effect.msg)
            elif isinstance(effect, PersistRing):
                save_ring(self.data_dir, effect.ring, effect.buckets, effect.buckets_version,
                          cluster=self.core.settings.cluster_name)
            elif isinstance(effect, Log):
                level = getattr(logging, effect.level.upper(), logging.INFO)
                log.log(level, "%s %s", effect.message, effect.fields or "")

    def _reply(self, client: int, msg: Message) -> None:
        if client < 0:
            self._record(self._local_started.pop(client, None), msg)
            fut = self._local.pop(client, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        req_id = getattr(msg, "req_id", None)
        started = self._started.pop((client, req_id), None) if isinstance(req_id, int) else None
        if isinstance(msg, StatusReply):
            msg = StatusReply(msg.req_id, {**msg.status, **self.runtime_status()})
        self._record(started, msg)
        self.transport.reply_to_client(client, msg)

    def _record(self, started: tuple[str, float] | None, msg: object) -> None:
        """Latency, outcome and siblings of one answered request, native or local alike."""
        if started is None:
            return
        op, t = started
        outcome = "error" if isinstance(msg, ErrorReply) else "ok"
        self.metrics.observe_request(op, time.perf_counter() - t, outcome)
        if isinstance(msg, ErrorReply):
            self.metrics.count_error(msg.code)
        elif isinstance(msg, GetReply):
            self.metrics.observe_siblings(len(msg.values) if msg.found else 0)

    def _address_of(self, node: str) -> str | None:
        ring = self.core.ring
        return ring.address_of(node) if ring else None

    def runtime_status(self) -> dict[str, Any]:
        return {
            "latency": self.metrics.snapshot(),
            "storage": self.storage_info,
            "uptime_s": round(time.monotonic() - self._t0, 1),
            **self.transport.stats(),
            **self.metrics.http_status(),
            **self.metrics.background_status(),
            **self.metrics.sources_status(),
        }


def _stop_process() -> None:
    """A failed group commit: stop the node as SIGTERM does (the group is gone, so the next
    start reads only what was committed)."""
    os.kill(os.getpid(), signal.SIGTERM)
