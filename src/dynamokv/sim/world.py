"""The simulated world: a whole cluster of ``NodeCore``s in one process, in virtual time.

Owns: ``Simulator`` (the event heap, virtual ``now_ms``, the nodes and what can happen to them:
crash, power loss and restart, pause, partitions, clock jumps, joins and departures; routing of
every effect), ``SimNode``, the ``ClientSink`` protocol. The power-loss fault budget's check is
``power_budget``'s.
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
from pathlib import Path
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
from dynamokv.core.replog.outbox import OutboxAck, OutboxBatch
from dynamokv.core.requests import CasAborted, CasRequest, CasResult, RangeResult
from dynamokv.core.ring import Member
from dynamokv.core.settings import CoreSettings, Limits, QuorumDefaults
from dynamokv.sim.clocks import SimClocks
from dynamokv.sim.disk import DiskFaults, PutObserver, SimDisk
from dynamokv.sim.network import LinkFaults, SimNetwork
from dynamokv.sim.options import SimOptions
from dynamokv.sim.power_budget import power_loss_unsafe
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
_LOCAL_RESULTS = (CasResult, CasAborted, RangeResult, OutboxBatch, OutboxAck)


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
        o = options
        self.settings = CoreSettings(
            q=o.q,
            quorum=QuorumDefaults(n=o.n, r=o.r, w=o.w),
            limits=Limits(request_timeout_ms=o.request_timeout_ms),
            gossip_interval_ms=o.gossip_interval_ms,
            # Anti-entropy much more often than in production, so replicas converge within the
            # liveness phase's bound (the mechanism is the same, only the pace differs).
            aae=AaeSettings(interval_ms=o.aae_interval_ms),
            # Power loss rolls back unsynced writes: the partition logs must then be synced
            # before they are acted on, as they are in production with ``--sync fsync``.
            log_sync=o.has("power"),
        )
        self.clocks = SimClocks(self.rng, o.clock_skew_ms_max if o.has("skew") else 0)
        self.network = SimNetwork(
            self.rng,
            LinkFaults(o.loss if o.has("loss") else 0.0,
                       o.duplication if o.has("dup") else 0.0,
                       o.delay_min_ms, o.delay_max_ms,
                       o.delay_tail if o.has("delay") else 0.0,
                       o.delay_tail_ms if o.has("delay") else 0,
                       not o.has("reorder")),
            refuse_delay_ms=o.refuse_delay_ms,
            connect_timeout_ms=o.connect_timeout_ms,
        )
        self.sink: ClientSink | None = None
        self._sinks: dict[int, ClientSink] = {}  # client refs with their own sink (the admin)
        self.violations: list[str] = []  # assertions the world itself checks (codec, timers)
        self.errors: list[str] = []  # tracebacks of exceptions the cores raised
        self.counts = {"crashes": 0, "power_losses": 0, "power_refused": 0, "unsynced_lost": 0,
                       "restarts": 0,
                       "pauses": 0, "partitions": 0, "clock_jumps": 0, "joins": 0,
                       "departures": 0}
        # When power losses destroyed writes, and when membership began to change: a strict
        # quorum read's promise does not hold across either (see checkers.check_quorum_reads).
        self.power_loss_times: list[int] = []
        self.power_lost_nodes: set[str] = set()
        self.membership_times: list[int] = []
        self.nodes: dict[str, SimNode] = {}
        self._by_address: dict[str, str] = {}
        self._observer = observer
        self._disk_faults = DiskFaults(storage_fault=o.storage_fault if o.has("storage") else 0.0,
                                       lie_every=10 if o.bug == "lying-disk" else 0,
                                       loses_unsynced=o.has("power"), flush_ms=o.flush_ms)
        for _ in range(o.nodes):
            self._new_node()

    def _new_node(self) -> str:
        node_id = f"n{len(self.nodes) + 1}"
        address = f"{node_id}.sim:7000"
        self.clocks.add_node(node_id)
        disk = SimDisk(node_id, self.options.q, f"{self.rng.getrandbits(32):08x}", self.rng,
                       self._disk_faults, self._observer, clock=lambda: self._now_ms)
        self.nodes[node_id] = SimNode(node_id, address, disk)
        self._by_address[address] = node_id
        return node_id

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
        target = _node_of(item)
        if target is not None and self.nodes[target].paused_until > at:
            # The process is stopped: the event waits (socket buffers, a timer not serviced).
            self._push(self.nodes[target].paused_until, item)
            return True
        if isinstance(item, _Deliver):
            self._on_deliver(item)
        elif isinstance(item, _Timer):
            self._on_timer(item)
        elif isinstance(item, _Unreachable):
            node = self.nodes[item.node]
            if node.core is not None and node.epoch == item.epoch:
                self.trace.add(at, item.node, "unreachable", item.peer)
                self._feed(node, PeerUnreachable(item.peer))
        elif isinstance(item, _ClientRequest | _LocalRequest):
            self._on_client_request(item)
        elif isinstance(item, _ClientAnswer):
            msg = item.sent if item.data is None else self._decode(item.data, item.sent)
            self.trace.add(at, f"c{item.client}", "answer", f"{item.node} {describe(msg)}")
            sink = self._sink_of(item.client)
            if sink is not None:
                sink.on_reply(item.client, msg)
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
        """Every node that has not left for good, in creation order."""
        return [n.node_id for n in self.nodes.values() if not n.departed]

    def up_ids(self) -> list[str]:
        """Nodes whose process runs (paused ones included)."""
        return [n.node_id for n in self.nodes.values() if n.core is not None]

    def start_node(self, node_id: str) -> None:
        """Start (or restart) ``node_id`` from its disk, as the server does from its data dir."""
        node = self.nodes[node_id]
        if node.core is not None or node.departed:
            return
        node.epoch += 1
        node.paused_until = 0
        record = node.disk.ring_record
        first = node_id == next(iter(self.nodes))
        # The first node founds the cluster; the others know every other address as a seed.
        seeds = () if first else tuple(n.address for n in self.nodes.values()
                                       if n is not node and not n.departed)
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

    def add_node(self) -> str:
        """A fresh node (empty disk, new id and address) starts and joins through its seeds."""
        node_id = self._new_node()
        self.counts["joins"] += 1
        self.membership_times.append(self._now_ms)
        self.trace.add(self._now_ms, node_id, "join")
        self.start_node(node_id)
        return node_id

    def crash(self, node_id: str, *, power: bool = False) -> None:
        """Kill the node's process: its memory is gone, its disk stays. With ``power`` the
        machine lost power too, and the disk loses the writes the OS had not flushed."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        self._stop(node)
        lost = node.disk.crash(lose_unsynced=power)
        self.counts["crashes"] += 1
        if power:
            self.counts["power_losses"] += 1
            self.counts["unsynced_lost"] += lost
            if lost:
                self.power_loss_times.append(self._now_ms)
                self.power_lost_nodes.add(node_id)
        self.trace.add(self._now_ms, node_id, "crash",
                       f"kind={'power' if power else 'process'} lost_unsynced={lost}")

    def power_loss_unsafe(self, node_id: str) -> str:
        """Why a power loss of ``node_id`` now would break the fault budget ("" if it would not);
        see ``power_budget.power_loss_unsafe``."""
        others = [n.disk for n in self.nodes.values()
                  if n.node_id != node_id and not n.departed]
        return power_loss_unsafe(self.nodes[node_id].disk, others, list(self.nodes))

    def power_fail(self, node_id: str) -> bool:
        """A power loss of ``node_id`` if the budget allows it, else a process crash. True for a
        power loss."""
        why = self.power_loss_unsafe(node_id) if self.options.has("power") else "power is off"
        if why:
            self.counts["power_refused"] += 1
            self.trace.add(self._now_ms, node_id, "power-refused", why)
        self.crash(node_id, power=not why)
        return not why

    def _stop(self, node: SimNode) -> None:
        node.core = None
        node.armed_at = None
        node.paused_until = 0
        # Peers with an open connection see it reset at once (runtime.transport reports that).
        for peer in self.network.reset_links(node.node_id):
            other = self.nodes[peer]
            if other.core is not None:
                at = self._now_ms + self.network.refuse_delay_ms
                self._push(at, _Unreachable(peer, other.epoch, node.node_id))
        for sink in self._all_sinks():
            sink.on_connection_lost(node.node_id)

    def depart(self, node_id: str) -> None:
        """The node left the ring: its operator stops it for good."""
        node = self.nodes[node_id]
        if node.departed:
            return
        if node.core is not None:
            self._stop(node)
            node.disk.crash()
        node.departed = True
        self.counts["departures"] += 1
        self.trace.add(self._now_ms, node_id, "depart")

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.core is None and not node.departed:
            self.counts["restarts"] += 1
            self.start_node(node_id)

    def pause(self, node_id: str, until_ms: int) -> None:
        """Stop the node's process until ``until_ms`` (its events wait; nothing is refused)."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        node.paused_until = max(node.paused_until, until_ms)
        self.counts["pauses"] += 1
        self.trace.add(self._now_ms, node_id, "pause", f"until={node.paused_until}")

    def resume(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.paused_until:
            node.paused_until = 0
            self.trace.add(self._now_ms, node_id, "resume")

    def partition(self, label: str, pairs: list[tuple[str, str]]) -> None:
        """Block messages ``src -> dst`` for each pair (``label`` names the shape)."""
        self.counts["partitions"] += 1
        self.network.block(pairs)
        self.trace.add(self._now_ms, "-", "partition", label)

    def unpartition(self, label: str, pairs: list[tuple[str, str]]) -> None:
        self.network.unblock(pairs)
        self.trace.add(self._now_ms, "-", "unpartition", label)

    def isolate(self, node_id: str) -> None:
        """Partition ``node_id`` from every other node (both directions)."""
        self.counts["partitions"] += 1
        self.network.isolate(node_id, self.node_ids())
        self.trace.add(self._now_ms, node_id, "isolate")

    def rejoin(self, node_id: str) -> None:
        self.network.rejoin(node_id)
        self.trace.add(self._now_ms, node_id, "rejoin")

    def jump_clock(self, node_id: str, delta_ms: int) -> None:
        """Step the node's wall clock (monotonic time is untouched)."""
        offset = self.clocks.jump(node_id, delta_ms)
        self.counts["clock_jumps"] += 1
        self.trace.add(self._now_ms, node_id, "clock", f"jump={delta_ms:+d} offset={offset:+d}")

    def heal(self) -> None:
        """The liveness phase begins: every node up and running, no partitions, loss,
        duplication, reordering or storage faults (clock offsets stay: they are the hosts')."""
        self.trace.add(self._now_ms, "-", "heal")
        self.network.heal()
        for node in self.nodes.values():
            faults = node.disk.faults
            node.disk.faults = DiskFaults(lie_every=faults.lie_every,
                                          loses_unsynced=faults.loses_unsynced,
                                          flush_ms=faults.flush_ms)
            self.resume(node.node_id)
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
        everyone = sorted(self.node_ids())
        for node_id in everyone:
            core = self.nodes[node_id].core
            ring = core.ring if core is not None else None
            if ring is None or sorted(ring.node_ids()) != everyone:
                return False
        return True

    # ---- clients -----------------------------------------------------------------------------

    def register_sink(self, ref: int, sink: ClientSink) -> None:
        """Answers to client ``ref`` go to ``sink`` instead of ``self.sink``."""
        self._sinks[ref] = sink

    def _sink_of(self, ref: int) -> ClientSink | None:
        return self._sinks.get(ref, self.sink)

    def _all_sinks(self) -> list[ClientSink]:
        sinks = [self.sink] if self.sink is not None else []
        for sink in self._sinks.values():
            if all(sink is not s for s in sinks):
                sinks.append(sink)
        return sinks

    def client_send(self, node_id: str, client: int, msg: Message) -> None:
        node = self.nodes[node_id]
        data = self.network.encode(msg, client=True)
        if node.core is None:
            self._refuse(node_id, client, getattr(msg, "req_id", 0))
            return
        at = self._now_ms + self.network.client_delay_ms()
        self._push(at, _ClientRequest(node_id, node.epoch, client, data, msg))

    def local_send(self, node_id: str, client: int, request: object) -> None:
        """A request to the node's own API (``LocalRequested``), e.g. a ``CasRequest``: it comes
        from a remote client over a connection that only delays, but has no wire form."""
        node = self.nodes[node_id]
        if node.core is None:
            self._refuse(node_id, client, 0)
            return
        at = self._now_ms + self.network.client_delay_ms()
        self._push(at, _LocalRequest(node_id, node.epoch, client, request))

    def _refuse(self, node_id: str, client: int, req_id: int) -> None:
        sink = self._sink_of(client)
        if sink is not None:
            at = self._now_ms + self.network.refuse_delay_ms
            self.call_at(at, f"c{client} refused by {node_id}",
                         functools.partial(sink.on_refused, client, req_id))

    def _on_client_request(self, item: _ClientRequest | _LocalRequest) -> None:
        node = self.nodes[item.node]
        if node.core is None or node.epoch != item.epoch:
            self.trace.add(self._now_ms, f"c{item.client}", "refused", item.node)
            sink = self._sink_of(item.client)
            if sink is not None:
                request = item.sent if isinstance(item, _ClientRequest) else item.request
                sink.on_refused(item.client, getattr(request, "req_id", 0))
            return
        event: Event
        if isinstance(item, _LocalRequest):
            self.trace.add(self._now_ms, item.node, "request",
                           f"c{item.client} {describe(item.request)}")
            event = LocalRequested(item.client, item.request)
        else:
            msg = self._decode(item.data, item.sent)
            self.trace.add(self._now_ms, item.node, "request", f"c{item.client} {describe(msg)}")
            event = ClientRequested(item.client, msg)
        self._feed(node, event)

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
        if core.left and not node.departing:
            # The node says it is safe to stop; its operator does so a little later.
            node.departing = True
            self.call_at(self._now_ms + 100, f"stop {node.node_id}",
                         functools.partial(self.depart, node.node_id))

    def _core_failed(self, node: SimNode, what: str, exc: Exception) -> None:
        # Name the innermost core functions it escaped from, by file name only (no machine
        # paths: violations are compared across machines).
        frames = [f"{Path(f.filename).name}:{f.name}"
                  for f in traceback.extract_tb(exc.__traceback__)
                  if Path(f.filename).parent.name == "core"]
        where = f" from {' > '.join(frames[-2:])}" if frames else ""
        self.violations.append(f"t={self._now_ms} {node.node_id} raised {type(exc).__name__}"
                               f"{where} handling {what}: {exc}")
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
                reply: object = effect.msg
                data = (None if isinstance(reply, _LOCAL_RESULTS)
                        else self.network.encode(effect.msg, client=True))
                at = self._now_ms + self.network.client_delay_ms()
                self._push(at, _ClientAnswer(node.node_id, effect.client, data, reply))
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

    def _decode(self, data: bytes, sent: object) -> Message:
        msg = self.network.decode(data)
        if msg != sent:
            self.violations.append(f"t={self._now_ms} codec round trip changed "
                                   f"{type(sent).__name__}: {sent!r} -> {msg!r}")
        return msg


def _node_of(item: _Item) -> str | None:
    """The node that handles ``item`` (``None`` for client answers and scheduled calls)."""
    if isinstance(item, _Deliver):
        return item.dst
    if isinstance(item, _Timer | _Unreachable | _ClientRequest | _LocalRequest):
        return item.node
    return None
