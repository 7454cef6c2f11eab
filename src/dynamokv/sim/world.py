"""The simulated world: a whole cluster of ``NodeCore``s in one process, in virtual time.

Owns: ``Simulator`` (the event heap, virtual ``now_ms``, the nodes and what can happen to them:
crash, power loss and restart, pause, partitions, clock jumps, joins and departures; routing of
every effect), ``SimNode``, the ``ClientSink`` protocol.
May import: stdlib, ``dynamokv.core.*``, ``dynamokv.sim.*`` (not ``checkers``, ``workload``,
``faults`` or ``run``, which sit on top of it).

One ``random.Random(seed)`` makes every choice (ARCHITECTURE R1): network fates, delays, clock
offsets, incarnations, workload choices, faults, and the cores' own choices (they share it).
Events wait in one heap ordered by ``(time_ms, sequence)``; the sequence number breaks ties in
the order events were scheduled, so nothing depends on dict or set order (R12). ``step()`` pops
one event, moves ``now_ms`` to its time, and runs it to completion.

Drivers' duties, as in ``runtime.runner``: feed events to ``handle``, execute the returned
effects, and deliver ``TimerFired`` once ``now_ms`` reaches ``next_deadline()``. A node's timer
is one heap entry (``armed_at``); re-arming earlier supersedes it, and superseded entries are
skipped when they come up.

A paused node handles nothing: every event due to it (messages, timers, client requests) waits
in the heap until the pause ends, in its original order, as the kernel's socket buffers and a
stopped process would make it. A node that has left the ring (``NodeCore.left``) is stopped by
the world shortly after, as its operator would, and never restarted (``departed``).
"""

from __future__ import annotations

import functools
import heapq
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dynamokv.core.effects import Effect, Log, PersistRing, Reply, Send, SendTo
from dynamokv.core.events import (
    ClientRequested,
    Event,
    LocalRequested,
    MessageReceived,
    PeerUnreachable,
    TimerFired,
)
from dynamokv.core.exchange import AaeSettings
from dynamokv.core.ids import actor_for
from dynamokv.core.messages import ErrorReply, GossipRing, Hello, Message
from dynamokv.core.node import NodeCore
from dynamokv.core.requests import CasAborted, CasRequest, CasResult, RangeResult
from dynamokv.core.ring import Member
from dynamokv.core.settings import CoreSettings, Limits, QuorumDefaults
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot
from dynamokv.sim.clocks import SimClocks
from dynamokv.sim.disk import DiskFaults, PutObserver, SimDisk
from dynamokv.sim.network import LinkFaults, SimNetwork
from dynamokv.sim.options import SimOptions
from dynamokv.sim.trace import Trace


class ClientSink(Protocol):
    """Where the world hands what happens to client connections (the workload, the admin)."""

    def on_reply(self, ref: int, msg: object) -> None: ...

    def on_refused(self, ref: int, req_id: int) -> None: ...

    def on_connection_lost(self, node: str) -> None: ...


@dataclass(slots=True)
class SimNode:
    node_id: str
    address: str
    disk: SimDisk  # survives crashes: the node's data directory
    core: NodeCore | None = None  # None while crashed
    epoch: int = 0  # incarnation of the process: bumped at every start
    armed_at: int | None = None  # time of the node's live timer entry in the heap
    paused_until: int = 0  # events due before this wait for it (process paused)
    departed: bool = False  # left the ring and was stopped for good
    departing: bool = False  # left the ring; its stop is scheduled


# ---- heap entries ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Deliver:
    src: str
    src_epoch: int
    dst: str
    dst_epoch: int
    data: bytes
    sent: Message  # what was encoded, to check the codec's round trip


@dataclass(frozen=True, slots=True)
class _Unreachable:
    node: str
    epoch: int
    peer: str


@dataclass(frozen=True, slots=True)
class _Timer:
    node: str
    epoch: int
    at: int


@dataclass(frozen=True, slots=True)
class _ClientRequest:
    node: str
    epoch: int
    client: int
    data: bytes
    sent: Message


@dataclass(frozen=True, slots=True)
class _LocalRequest:
    """A request of the node's own API (``LocalRequested``): no wire form, no codec."""

    node: str
    epoch: int
    client: int
    request: object


@dataclass(frozen=True, slots=True)
class _ClientAnswer:
    node: str
    client: int
    data: bytes | None  # None: an in-process result (``core.requests``), never encoded
    sent: object


@dataclass(frozen=True, slots=True)
class _Call:
    label: str
    fn: Callable[[], None]


_Item = _Deliver | _Unreachable | _Timer | _ClientRequest | _LocalRequest | _ClientAnswer | _Call
_LOCAL_RESULTS = (CasResult, CasAborted, RangeResult)


def describe(msg: object) -> str:
    """A message in a few words for the trace: type, request id, key, and what matters most."""
    parts = [type(msg).__name__]
    if isinstance(msg, CasRequest):
        return (f"CasRequest {msg.bucket} {msg.key.decode(errors='replace')} "
                f"{'read' if msg.read_only else 'update'}")
    if isinstance(msg, CasResult):
        return f"CasResult old={msg.old!r} new={msg.new!r}"
    req_id = getattr(msg, "req_id", None)
    if isinstance(req_id, int):
        parts.append(f"#{req_id}")
    key = getattr(msg, "key", None)
    if isinstance(key, bytes):
        parts.append(key.decode(errors="replace"))
    if isinstance(msg, ErrorReply):
        parts.append(msg.code)
    elif isinstance(msg, GossipRing):
        parts.append(f"v{msg.ring.version}")
    return " ".join(parts)


class Simulator:
    def __init__(self, seed: int, options: SimOptions | None = None, *,
                 trace: Trace | None = None, observer: PutObserver | None = None) -> None:
        if options is None:
            options = SimOptions.from_seed(seed)
        options.validate()
        self.seed = seed
        self.options = options
        self.rng = random.Random(seed)
        self.trace = trace if trace is not None else Trace()
        self._now_ms = 0
        self.steps = 0
        self._heap: list[tuple[int, int, _Item]] = []
        self._seq = 0
        self.settings = CoreSettings(
            q=options.q,
            quorum=QuorumDefaults(n=options.n, r=options.r, w=options.w),
            limits=Limits(request_timeout_ms=options.request_timeout_ms),
            gossip_interval_ms=options.gossip_interval_ms,
        )
        self.clocks = SimClocks(self.rng, options.clock_skew_ms_max)
        self.network = SimNetwork(
            self.rng,
            LinkFaults(options.loss, options.duplication, options.delay_min_ms,
                       options.delay_max_ms, options.delay_tail, options.delay_tail_ms,
                       options.fifo),
            refuse_delay_ms=options.refuse_delay_ms,
            connect_timeout_ms=options.connect_timeout_ms,
        )
        self.sink: ClientSink | None = None
        self.violations: list[str] = []  # assertions the world itself checks (codec, timers)
        self.errors: list[str] = []  # tracebacks of exceptions the cores raised
        self.counts = {"crashes": 0, "restarts": 0, "partitions": 0}
        self.nodes: dict[str, SimNode] = {}
        self._by_address: dict[str, str] = {}
        faults = DiskFaults(storage_fault=options.storage_fault,
                            lie_every=10 if options.bug == "lying-disk" else 0)
        for i in range(1, options.nodes + 1):
            node_id = f"n{i}"
            address = f"{node_id}.sim:7000"
            self.clocks.add_node(node_id)
            disk = SimDisk(node_id, options.q, f"{self.rng.getrandbits(32):08x}", self.rng,
                           faults, observer)
            self.nodes[node_id] = SimNode(node_id, address, disk)
            self._by_address[address] = node_id

    # ---- time and the heap -------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def _push(self, at_ms: int, item: _Item) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(at_ms, self._now_ms), self._seq, item))

    def call_at(self, at_ms: int, label: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` at ``at_ms`` (workload and fault schedules use this)."""
        self._push(at_ms, _Call(label, fn))

    def step(self) -> bool:
        """Run the next event; False when nothing is left to happen."""
        if not self._heap:
            return False
        at, _, item = heapq.heappop(self._heap)
        self._now_ms = at
        self.steps += 1
        if isinstance(item, _Deliver):
            self._on_deliver(item)
        elif isinstance(item, _Timer):
            self._on_timer(item)
        elif isinstance(item, _Unreachable):
            node = self.nodes[item.node]
            if node.core is not None and node.epoch == item.epoch:
                self.trace.add(at, item.node, "unreachable", item.peer)
                self._feed(node, PeerUnreachable(item.peer))
        elif isinstance(item, _ClientRequest):
            self._on_client_request(item)
        elif isinstance(item, _ClientAnswer):
            msg = self._decode(item.data, item.sent)
            self.trace.add(at, f"c{item.client}", "answer", f"{item.node} {describe(msg)}")
            if self.sink is not None:
                self.sink.on_reply(item.client, msg)
        else:
            self.trace.add(at, "-", "call", item.label)
            item.fn()
        return True

    def run_until(self, t_ms: int) -> None:
        """Run every event due at or before ``t_ms``; then ``now_ms`` is ``t_ms``."""
        while self._heap and self._heap[0][0] <= t_ms:
            self.step()
        self._now_ms = max(self._now_ms, t_ms)

    def run_while(self, condition: Callable[[], bool], until_ms: int) -> bool:
        """Step while ``condition()`` holds, up to ``until_ms``. True when it stopped holding."""
        while condition():
            if not self._heap or self._heap[0][0] > until_ms:
                self._now_ms = max(self._now_ms, until_ms)
                return False
            self.step()
        return True

    # ---- nodes -------------------------------------------------------------------------------

    def node_ids(self) -> list[str]:
        return list(self.nodes)

    def start_node(self, node_id: str) -> None:
        """Start (or restart) ``node_id`` from its disk, as the server does from its data dir."""
        node = self.nodes[node_id]
        if node.core is not None:
            return
        node.epoch += 1
        record = node.disk.ring_record
        first = node_id == next(iter(self.nodes))
        # The first node founds the cluster; the others know every address as a seed.
        seeds = () if first else tuple(n.address for n in self.nodes.values() if n is not node)
        node.core = NodeCore(
            me=Member(node_id, node.address),
            actor=actor_for(node_id, node.disk.incarnation),
            store=node.disk,
            settings=self.settings,
            rng=self.rng,
            seeds=seeds,
            ring=record.ring if record else None,
            buckets=record.buckets if record else None,
            buckets_version=record.buckets_version if record else 0,
        )
        node.armed_at = None
        version = record.ring.version if record else 0
        self.trace.add(self._now_ms, node_id, "start", f"epoch={node.epoch} ring=v{version}")
        try:
            effects = node.core.start(self._now_ms)
        except Exception as exc:
            self._core_failed(node, "start", exc)
            effects = []
        self._execute(node, effects)
        self._arm(node)

    def crash(self, node_id: str) -> None:
        """Drop the node's process: its memory is gone, its disk stays (minus unsynced data)."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        node.core = None
        node.armed_at = None
        lost = node.disk.crash()
        self.counts["crashes"] += 1
        self.trace.add(self._now_ms, node_id, "crash", f"lost_unsynced={lost}")
        # Peers with an open connection see it reset at once (runtime.transport reports that).
        for peer in self.network.reset_links(node_id):
            other = self.nodes[peer]
            if other.core is not None:
                at = self._now_ms + self.network.refuse_delay_ms
                self._push(at, _Unreachable(peer, other.epoch, node_id))
        if self.sink is not None:
            self.sink.on_connection_lost(node_id)

    def restart(self, node_id: str) -> None:
        if self.nodes[node_id].core is None:
            self.counts["restarts"] += 1
            self.start_node(node_id)

    def isolate(self, node_id: str) -> None:
        """Partition ``node_id`` from every other node (both directions)."""
        self.counts["partitions"] += 1
        self.network.isolate(node_id, self.node_ids())
        self.trace.add(self._now_ms, node_id, "isolate")

    def rejoin(self, node_id: str) -> None:
        self.network.rejoin(node_id)
        self.trace.add(self._now_ms, node_id, "rejoin")

    def heal(self) -> None:
        """The liveness phase begins: every node up, no partitions, loss or storage faults."""
        self.trace.add(self._now_ms, "-", "heal")
        self.network.heal()
        for node in self.nodes.values():
            faults = node.disk.faults
            node.disk.faults = DiskFaults(lie_every=faults.lie_every,
                                          loses_unsynced=faults.loses_unsynced)
            self.restart(node.node_id)

    def bootstrap(self) -> bool:
        """Start the first node, then the others a little later; True once all rings are full."""
        ids = self.node_ids()
        self.start_node(ids[0])
        for node_id in ids[1:]:
            at = self._now_ms + self.rng.randint(1, 50)
            self.call_at(at, f"start {node_id}", functools.partial(self.start_node, node_id))
        deadline = self._now_ms + self.options.bootstrap_ms_max
        return self.run_while(lambda: not self.rings_complete(), deadline)

    def rings_complete(self) -> bool:
        """Every node is up and its ring lists every node."""
        everyone = sorted(self.nodes)
        for node in self.nodes.values():
            ring = node.core.ring if node.core is not None else None
            if ring is None or sorted(ring.node_ids()) != everyone:
                return False
        return True

    # ---- clients -----------------------------------------------------------------------------

    def client_send(self, node_id: str, client: int, msg: Message) -> None:
        node = self.nodes[node_id]
        data = self.network.encode(msg, client=True)
        if node.core is None:
            sink = self.sink
            req_id = getattr(msg, "req_id", 0)
            if sink is not None:
                at = self._now_ms + self.network.refuse_delay_ms
                self.call_at(at, f"c{client} refused by {node_id}",
                             functools.partial(sink.on_refused, client, req_id))
            return
        at = self._now_ms + self.network.client_delay_ms()
        self._push(at, _ClientRequest(node_id, node.epoch, client, data, msg))

    def _on_client_request(self, item: _ClientRequest) -> None:
        node = self.nodes[item.node]
        if node.core is None or node.epoch != item.epoch:
            self.trace.add(self._now_ms, f"c{item.client}", "refused", item.node)
            if self.sink is not None:
                self.sink.on_refused(item.client, getattr(item.sent, "req_id", 0))
            return
        msg = self._decode(item.data, item.sent)
        self.trace.add(self._now_ms, item.node, "request", f"c{item.client} {describe(msg)}")
        self._feed(node, ClientRequested(item.client, msg))

    # ---- driving cores -----------------------------------------------------------------------

    def _feed(self, node: SimNode, event: Event) -> None:
        core = node.core
        assert core is not None
        wall = self.clocks.wall_ms(node.node_id, self._now_ms)
        try:
            effects = core.handle(event, self._now_ms, wall)
        except Exception as exc:
            # Production logs and carries on; here it is a bug to report.
            self._core_failed(node, type(event).__name__, exc)
            effects = []
        self._execute(node, effects)
        self._arm(node)

    def _core_failed(self, node: SimNode, what: str, exc: Exception) -> None:
        self.violations.append(f"t={self._now_ms} {node.node_id} raised {type(exc).__name__} "
                               f"handling {what}: {exc}")
        self.errors.append("".join(traceback.format_exception(exc)))
        self.trace.add(self._now_ms, node.node_id, "raised", f"{type(exc).__name__} on {what}")

    def _on_deliver(self, item: _Deliver) -> None:
        dst = self.nodes[item.dst]
        if dst.core is None or dst.epoch != item.dst_epoch:
            # The connection was reset under the message: the sender notices.
            self.trace.add(self._now_ms, item.dst, "reset", f"from {item.src}")
            src = self.nodes[item.src]
            if src.core is not None and src.epoch == item.src_epoch:
                at = self._now_ms + self.network.refuse_delay_ms
                self._push(at, _Unreachable(item.src, item.src_epoch, item.dst))
            return
        msg = self._decode(item.data, item.sent)
        self.network.stats.delivered += 1
        self.trace.add(self._now_ms, item.dst, "recv", f"{item.src} {describe(msg)}")
        self._feed(dst, MessageReceived(item.src, msg))

    def _on_timer(self, item: _Timer) -> None:
        node = self.nodes[item.node]
        core = node.core
        if core is None or node.epoch != item.epoch or node.armed_at != item.at:
            return  # superseded by an earlier timer, or the process it belonged to is gone
        node.armed_at = None
        due = core.next_deadline()
        if due is not None and due <= self._now_ms:
            self.trace.add(self._now_ms, node.node_id, "timer")
            self._feed(node, TimerFired())
            after = core.next_deadline() if node.core is core else None
            if after is not None and after <= self._now_ms:
                self.violations.append(f"t={self._now_ms} {node.node_id}: next_deadline() is "
                                       f"{after} right after TimerFired (the timer cannot move)")
                node.armed_at = self._now_ms + 1
                self._push(node.armed_at, _Timer(node.node_id, node.epoch, node.armed_at))
                return
        self._arm(node)

    def _arm(self, node: SimNode) -> None:
        core = node.core
        if core is None:
            return
        at = core.next_deadline()
        if at is None:
            return
        at = max(at, self._now_ms)
        if node.armed_at is not None and node.armed_at <= at:
            return
        node.armed_at = at
        self._push(at, _Timer(node.node_id, node.epoch, at))

    def _execute(self, node: SimNode, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._send(node, effect.to, effect.msg)
            elif isinstance(effect, SendTo):
                dst = self._by_address.get(effect.address)
                if dst is None or self.nodes[dst].core is None:
                    # Production drops these too: a seed dialled by address that is not there;
                    # the join timer retries through the next seed.
                    self.trace.add(self._now_ms, node.node_id, "no-seed", effect.address)
                    continue
                self._send(node, dst, effect.msg)
            elif isinstance(effect, Reply):
                data = self.network.encode(effect.msg, client=True)
                at = self._now_ms + self.network.client_delay_ms()
                self._push(at, _ClientAnswer(node.node_id, effect.client, data, effect.msg))
            elif isinstance(effect, PersistRing):
                node.disk.persist_ring(effect.ring, effect.buckets, effect.buckets_version)
            elif isinstance(effect, Log):
                fields = " ".join(f"{k}={effect.fields[k]}" for k in sorted(effect.fields))
                self.trace.add(self._now_ms, node.node_id, "log",
                               f"{effect.level} {effect.message} {fields}".rstrip())

    def _send(self, node: SimNode, dst_id: str, msg: Message) -> None:
        data = self.network.encode(msg)
        dst = self.nodes.get(dst_id)
        dst_epoch = dst.epoch if dst is not None and dst.core is not None else None
        route = self.network.route(node.node_id, node.epoch, dst_id, dst_epoch, self._now_ms)
        if route.outcome == "deliver":
            assert dst_epoch is not None
            if route.hello:
                core = node.core
                version = core.ring.version if core is not None and core.ring else 0
                hello = Hello(node.node_id, version)
                hdata = self.network.encode(hello)
                self._push(route.at_ms[0],
                           _Deliver(node.node_id, node.epoch, dst_id, dst_epoch, hdata, hello))
            for at in route.at_ms:
                self._push(at, _Deliver(node.node_id, node.epoch, dst_id, dst_epoch, data, msg))
        elif route.outcome in ("refused", "timeout"):
            self._push(route.at_ms[0], _Unreachable(node.node_id, node.epoch, dst_id))
        else:
            self.trace.add(self._now_ms, node.node_id, route.outcome, f"{dst_id} {describe(msg)}")

    def _decode(self, data: bytes, sent: Message) -> Message:
        msg = self.network.decode(data)
        if msg != sent:
            self.violations.append(f"t={self._now_ms} codec round trip changed "
                                   f"{type(sent).__name__}: {sent!r} -> {msg!r}")
        return msg
