"""NodeCore: the single entry point of a node, for the asyncio runtime and the simulator alike.

Owns: ``NodeCore`` — dispatch of events to the coordinator, the replica handlers, hinted
handoff, ownership handoff, anti-entropy, membership and gossip (worked by
:mod:`dynamokv.core.ring_gossip`), admin requests (:mod:`dynamokv.core.admin`), heartbeats and
failure detection, and the background scheduler gated by admission control; ``next_deadline()``.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

``handle(event, now_ms, wall_ms) -> list[Effect]`` runs to completion; ``now_ms`` is monotonic
time (deadlines), ``wall_ms`` is the node's wall clock (version timestamps only). The driver calls
``handle(TimerFired(), ...)`` once ``now_ms`` passes ``next_deadline()``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dynamokv.core import admin, ring_gossip
from dynamokv.core.actors import ActorBook
from dynamokv.core.admission import AdmissionController
from dynamokv.core.buffer import ObjectBuffer
from dynamokv.core.claim import claim
from dynamokv.core.coordinator import Coordinator, Origin, error_reply
from dynamokv.core.effects import Effect, Log, PersistRing, Reply, Send
from dynamokv.core.events import (
    ClientRequested,
    Event,
    LocalRequested,
    MessageReceived,
    PeerUnreachable,
    TimerFired,
)
from dynamokv.core.exchange import AAE_ID_BASE, AntiEntropy
from dynamokv.core.failure import FailureDetector
from dynamokv.core.handoff import HandoffManager
from dynamokv.core.hashing import RESERVED_BUCKET_PREFIX, compose_key
from dynamokv.core.hints import BUSY, HintReplayer
from dynamokv.core.membership import Staging
from dynamokv.core.messages import (
    AaeKeysReply,
    AaeKeysRequest,
    AaeLevelReply,
    AaeLevelRequest,
    BucketPropsRequest,
    ClusterRequest,
    CoordinatePut,
    ErrorReply,
    GetReply,
    GetRequest,
    GossipRing,
    HandoffAck,
    HandoffBatch,
    HandoffIdle,
    Hello,
    HintBatch,
    HintBatchAck,
    JoinRequest,
    LeaveComplete,
    LogRange,
    LogRead,
    LogReply,
    LogScan,
    LogWrite,
    Message,
    Ping,
    PutReply,
    PutRequest,
    RaftSnapshotAck,
    RaftSnapshotChunk,
    ReplicaRange,
    ReplicaRangeReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaScan,
    ReplicaWrite,
    ReplicaWriteAck,
    RingRequest,
    StatusReply,
    StatusRequest,
    StreamFetch,
    StreamFetchReply,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.replog.groups import RAFT_MESSAGES, PartitionLogs
from dynamokv.core.replog.outbox import IndexOutbox, OutboxDone, OutboxPoll
from dynamokv.core.replog.proposals import TableRequests
from dynamokv.core.replog.streams import StreamRecords
from dynamokv.core.requests import (
    CasRequest,
    RangeRequest,
    ScanRequest,
    StreamRead,
    TableRead,
    TableWrite,
)
from dynamokv.core.ring import Member, Ring
from dynamokv.core.settings import BucketProps, CoreSettings
from dynamokv.core.tables import TableOps
from dynamokv.core.trees import TreeStore
from dynamokv.core.versioned import VersionedObject, resolve_lww, sync
from dynamokv.errors import DynamoKVError, InvalidRequest, StorageError, UnavailableError

# The request id under which a local request's start is tracked: local refs (negative) are
# unique per request, and local requests (CAS, range, scan) may carry no id of their own.
LOCAL_REQ = -1


class NodeCore:
    def __init__(
        self,
        *,
        me: Member,
        actor: str,
        store: ObjectStore,
        settings: CoreSettings,
        rng: random.Random,
        seeds: tuple[str, ...] = (),
        ring: Ring | None = None,
        buckets: dict[str, dict[str, Any]] | None = None,
        buckets_version: int = 0,
    ) -> None:
        self.me = me
        self.node_id = me.node_id
        self.actor = actor
        self.raw_store = store
        # Writes of buckets with ``buffer`` on wait in memory (paper 6.1); see core/buffer.py.
        self.buffer = ObjectBuffer(store, settings.buffer, self._buffered)
        self.trees = TreeStore(self.buffer, settings.q if ring is None else ring.q)
        self.store: ObjectStore = self.trees
        self.actors = ActorBook(actor, rng, self.trees)
        self.settings = settings
        self.limits = settings.limits
        self.prune_limits = settings.prune
        self.rng = rng
        self.seeds = seeds
        self.ring = ring
        self.buckets: dict[str, BucketProps] = {}
        self.buckets_version = buckets_version
        default = settings.default_bucket_props()
        for name, props in (buckets or {}).items():
            self.buckets[name] = default.with_updates(props)
        self.detector = FailureDetector(settings.down_probe_interval_ms,
                                        phi_threshold=settings.phi_threshold,
                                        heartbeat_interval_ms=settings.heartbeat_interval_ms)
        self.coordinator = Coordinator(self)
        self.hints = HintReplayer(self.store, settings.hints, self.node_id)
        self.handoff = HandoffManager(self.node_id, self.store, settings.handoff)
        self.aae = AntiEntropy(self.node_id, self.trees, settings.aae)
        self.admission = AdmissionController(settings.admission)
        self.staging = Staging()
        self.tables = TableOps(self)
        self.logs = PartitionLogs(self, store, settings.quorum.n, settings.raft, rng,  # type: ignore[arg-type]
                                  log_sync=settings.log_sync)
        self.table_requests = TableRequests(self.logs, settings.limits,
                                            rng.randrange(1 << 38))
        self.streams = StreamRecords(self.logs, store, rng.randrange(1 << 38),
                                     settings.stream_shard_roll_ms)
        self.outbox = IndexOutbox(self.logs, store)
        self._client_started: dict[tuple[int, int], int] = {}
        self._timers: dict[str, int | None] = {
            "gossip": None, "join": None, "heartbeat": None, "background": None,
            "buffer": None, "trees": None,
        }
        self._seed_turn = 0
        self._ping_seq = 0
        self._idle_reports: dict[int, set[str]] = {}  # claimant: ring version -> idle nodes
        self._idle_sent_ms = -1_000_000
        self.left = False
        self.quarantined_logged = 0  # quarantined records already logged

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, now_ms: int) -> list[Effect]:
        """First call after construction (or a restart): bootstrap, rejoin or keep the ring."""
        effects: list[Effect] = []
        self.logs.load(now_ms)
        if self.ring is None and not self.seeds:
            self.ring = claim(None, [self.me], q=self.settings.q,
                              target_n=self.settings.quorum.n, claimant=self.node_id)
            self.logs.bootstrap(self.ring.q, now_ms)
            effects.append(self.persist_effect())
            effects.append(Log("info", "started a new cluster", {"q": self.settings.q}))
        elif self.ring is not None and self._address_changed():
            effects.extend(ring_gossip.ask_to_join(self))  # our address changed: tell the claimant
        self.admission = AdmissionController(self.settings.admission, now_ms)
        self._timers["gossip"] = now_ms + self.settings.gossip_interval_ms
        self._timers["heartbeat"] = now_ms + self.settings.heartbeat_interval_ms
        self._timers["background"] = now_ms + self.settings.background_tick_ms
        if self.ring is None:
            self._timers["join"] = now_ms
        return effects

    def _address_changed(self) -> bool:
        known = self.ring.member(self.node_id) if self.ring is not None else None
        return known is not None and (known.address, known.http_address,
                                      known.metrics_address) != (
            self.me.address, self.me.http_address, self.me.metrics_address)

    def next_deadline(self) -> int | None:
        if self.tables.wants_timer():
            return 0  # a Paxos retry wants its backoff chosen now
        times = [t for t in (self.coordinator.deadlines.next(), self.tables.next_deadline(),
                             self.logs.next_deadline(), self.table_requests.next_deadline(),
                             self.streams.next_deadline(), self.streams.deadlines.next(),
                             self.outbox.next_deadline(),
                             *self._timers.values()) if t is not None]
        return min(times) if times else None

    def bucket_props(self, bucket: str) -> BucketProps:
        props = self.buckets.get(bucket)
        if props is not None:
            return props
        default = self.settings.default_bucket_props()
        if bucket.startswith(RESERVED_BUCKET_PREFIX):
            # System and table buckets resolve conflicts server-side (DynamoDB semantics).
            return BucketProps(n=default.n, r=default.r, w=default.w, lww=True)
        return default

    def up_nodes(self) -> frozenset[str]:
        ring = self.ring
        if ring is None:
            return frozenset({self.node_id})
        return frozenset(m.node_id for m in ring.members
                         if m.node_id == self.node_id or self.detector.is_up(m.node_id))

    def hint_room(self) -> bool:
        return self.hints.has_room()

    def suspect_replica(self, bucket: str, key: bytes, node: str) -> None:
        """``node`` may have missed a write of ``key``: anti-entropy checks that pair first."""
        if self.ring is not None and node != self.node_id:
            self.aae.suspect(self.ring.partition_for(bucket, key), node)

    def _n_of(self, bucket: str) -> int:
        return self.bucket_props(bucket).n

    def _max_n(self) -> int:
        return max([self.settings.quorum.n, *(p.n for p in self.buckets.values())])

    def is_replica(self, bucket: str, key: bytes, node: str) -> bool:
        """Whether ``node`` is one of the N primaries of ``key`` under its bucket's N."""
        ring = self.ring
        if ring is None:
            return False
        return node in ring.preference_list(ring.partition_for(bucket, key), self._n_of(bucket))

    def _knows_fresh_replica(self, bucket: str, hash_part: bytes) -> bool:
        """An eventually consistent range read needs a replica that is in the partition's
        log: its leader, or ourselves as a voter. A node that just joined may be a replica
        in the ring before it holds any data."""
        ring = self.ring
        if ring is None:
            return False
        group = self.logs.groups.get(ring.partition_for(bucket, compose_key(hash_part)))
        return group is not None and (bool(group.leader) or self.node_id in group.members)

    def log_leader(self, partition: int) -> str:
        """The leader of ``partition``'s log as this node knows it ("" if none)."""
        group = self.logs.groups.get(partition)
        return group.leader if group is not None else ""

    def _min_n(self) -> int:
        return min([self.settings.quorum.n, *(p.n for p in self.buckets.values())])

    # ---- dispatch ----------------------------------------------------------------------------

    def handle(self, event: Event, now_ms: int, wall_ms: int) -> list[Effect]:
        self.streams.wall_ms = wall_ms  # stamps the stream records this event applies
        if isinstance(event, MessageReceived):
            effects = self._on_message(event.src, event.msg, now_ms, wall_ms)
        elif isinstance(event, ClientRequested):
            effects = self._on_client(event.client, event.msg, now_ms, wall_ms)
        elif isinstance(event, LocalRequested):
            effects = self._on_local(event.client, event.request, now_ms, wall_ms)
        elif isinstance(event, PeerUnreachable):
            effects = []
            if self.detector.unreachable(event.node, now_ms):
                effects.append(Log("warning", "peer unreachable", {"node": event.node}))
            effects.extend(self.coordinator.on_peer_unreachable(event.node))
            effects.extend(self.tables.on_peer_unreachable(event.node, wall_ms))
            effects.extend(self.table_requests.on_peer_unreachable(event.node, now_ms))
        elif isinstance(event, TimerFired):
            effects = self._on_timer(now_ms)
            effects.extend(self.tables.on_timer(now_ms, wall_ms))
            effects.extend(self.logs.on_timer(now_ms))
            effects.extend(self.table_requests.on_timer(now_ms))
            effects.extend(self.streams.on_timer(now_ms))
            effects.extend(self.outbox.on_timer(now_ms))
        else:
            raise TypeError(f"unknown event {event!r}")
        if self._client_started:
            self._observe_latency(effects, now_ms)
        if self.buffer.entries and self._timers["buffer"] is None:
            # Armed only while something is buffered: a node without buffered buckets keeps
            # exactly the timers it had before the buffer existed.
            self._timers["buffer"] = now_ms + self.settings.buffer.flush_interval_ms
        return effects

    def _observe_latency(self, effects: list[Effect], now_ms: int) -> None:
        for e in effects:
            if not isinstance(e, Reply):
                continue
            if e.client < 0:  # a local (DynamoDB API) request: one reply per ref, any type
                started = self._client_started.pop((e.client, LOCAL_REQ), None)
            elif isinstance(e.msg, GetReply | PutReply | ErrorReply):
                started = self._client_started.pop((e.client, e.msg.req_id), None)
            else:
                continue
            if started is not None:
                self.admission.observe(now_ms - started, now_ms)

    def _on_local(self, client: int, request: object, now_ms: int, wall_ms: int
                  ) -> list[Effect]:
        """Requests of this node's own DynamoDB API (system buckets allowed). Writes and
        strongly consistent reads of items go through the partition logs."""
        # Foreground traffic like the native protocol's: admission control must see it.
        self._track_client(client, LOCAL_REQ, now_ms)
        if isinstance(request, CasRequest | TableWrite | TableRead):
            return self.table_requests.start(client, request, now_ms)
        if isinstance(request, RangeRequest):
            if request.consistent or not self._knows_fresh_replica(request.bucket,
                                                                   request.hash_part):
                return self.table_requests.start(client, request, now_ms)
            return self.tables.start_range(client, request, now_ms)
        if isinstance(request, ScanRequest):
            group = self.logs.groups.get(request.partition)
            if not request.consistent and group is not None and (
                    group.leader or self.node_id in group.members):
                return self.tables.start_scan(client, request, now_ms)
            return self.table_requests.start(client, request, now_ms)
        if isinstance(request, StreamRead):
            return self.streams.start_read(client, request, now_ms)
        if isinstance(request, OutboxPoll | OutboxDone):
            self._client_started.pop((client, LOCAL_REQ), None)  # upkeep, not foreground
            return self.outbox.on_request(client, request, now_ms)
        if isinstance(request, GetRequest):
            return self.coordinator.start_get(Origin(request.req_id, client=client), request,
                                              now_ms)
        if isinstance(request, PutRequest):
            return self.coordinator.start_put(Origin(request.req_id, client=client), request,
                                              now_ms, wall_ms)
        self._client_started.pop((client, LOCAL_REQ), None)
        raise TypeError(f"not a local request: {request!r}")

    def _on_client(self, client: int, msg: Message, now_ms: int, wall_ms: int) -> list[Effect]:
        coordinator = self.coordinator
        if isinstance(msg, GetRequest | PutRequest) and msg.bucket.startswith(
                RESERVED_BUCKET_PREFIX):
            exc = InvalidRequest(f"bucket names starting with {RESERVED_BUCKET_PREFIX!r} are "
                                 "reserved for tables and the system; pick another name")
            return [Reply(client, error_reply(msg.req_id, exc))]
        if isinstance(msg, GetRequest):
            self._track_client(client, msg.req_id, now_ms)
            return coordinator.start_get(Origin(msg.req_id, client=client), msg, now_ms)
        if isinstance(msg, PutRequest):
            self._track_client(client, msg.req_id, now_ms)
            return coordinator.start_put(Origin(msg.req_id, client=client), msg, now_ms, wall_ms)
        if isinstance(msg, RingRequest):
            return [Reply(client, admin.ring_reply(self, msg.req_id))]
        if isinstance(msg, StatusRequest):
            return [Reply(client, StatusReply(msg.req_id, self.status(now_ms)))]
        if isinstance(msg, BucketPropsRequest):
            return admin.on_bucket_props(self, client, msg)
        if isinstance(msg, ClusterRequest):
            return admin.on_cluster(self, client, msg, now_ms)
        req_id = getattr(msg, "req_id", 0)
        exc = InvalidRequest(f"{type(msg).__name__} is not a client request")
        return [Reply(client, error_reply(req_id if isinstance(req_id, int) else 0, exc))]

    def _track_client(self, client: int, req_id: int, now_ms: int) -> None:
        if len(self._client_started) < self.limits.in_flight_requests_max:
            self._client_started[(client, req_id)] = now_ms

    def _on_message(self, src: str, msg: Message, now_ms: int, wall_ms: int) -> list[Effect]:
        if (isinstance(msg, Hello | JoinRequest | GossipRing)
                and msg.cluster != self.settings.cluster_name):
            return [ring_gossip.foreign_cluster(self, src, msg)]
        effects: list[Effect] = []
        if self.detector.heard_from(src, now_ms):
            effects.append(Log("info", "peer is back", {"node": src}))
        coordinator = self.coordinator
        if isinstance(msg, ReplicaWriteAck):
            effects.extend(coordinator.on_write_ack(src, msg.req_id, msg.error))
        elif isinstance(msg, ReplicaReadReply):
            if msg.req_id >= AAE_ID_BASE:
                effects.extend(self._on_aae_pull(msg))
            else:
                effects.extend(coordinator.on_read_reply(src, msg.req_id, msg.obj, msg.error))
        elif isinstance(msg, ReplicaRead):
            effects.append(Send(src, self._replica_read(msg)))
        elif isinstance(msg, ReplicaRange | ReplicaScan):
            effects.append(Send(src, self.tables.replica_read(msg)))
        elif isinstance(msg, ReplicaRangeReply):
            effects.extend(self.tables.on_read_reply(src, msg))
        elif isinstance(msg, ReplicaWrite):
            effects.extend(self._replica_write(src, msg))
        elif isinstance(msg, CoordinatePut):
            origin = Origin(msg.req_id, node=src)
            effects.extend(coordinator.start_put(origin, msg.request, now_ms, wall_ms))
        elif isinstance(msg, PutReply | ErrorReply):
            effects.extend(coordinator.on_forward_reply(src, msg))
        else:
            effects.extend(self._on_background_message(src, msg, now_ms, wall_ms))
        return effects

    def _on_background_message(self, src: str, msg: Message, now_ms: int, wall_ms: int
                               ) -> list[Effect]:
        if isinstance(msg, (*RAFT_MESSAGES, RaftSnapshotChunk, RaftSnapshotAck)):
            return self.logs.on_message(src, msg, now_ms)
        if isinstance(msg, LogWrite | LogRead | LogRange | LogScan):
            return self.table_requests.on_request(src, msg, now_ms)
        if isinstance(msg, LogReply):
            return self.table_requests.on_reply(src, msg, now_ms)
        if isinstance(msg, StreamFetch):
            return self.streams.on_fetch(src, msg)
        if isinstance(msg, StreamFetchReply):
            return self.streams.on_fetch_reply(msg)
        if isinstance(msg, HintBatch):
            return self._on_hint_batch(src, msg, now_ms)
        if isinstance(msg, HintBatchAck):
            return self.hints.on_ack(src, msg.batch_id, msg.error, now_ms)
        if isinstance(msg, HandoffBatch):
            return self.handoff.on_batch(src, msg, lambda b: self.bucket_props(b).lww,
                                         resolve_lww)
        if isinstance(msg, HandoffAck):
            return self.handoff.on_ack(src, msg.xfer_id, msg.error)
        if isinstance(msg, AaeLevelRequest):
            return [Send(src, self.aae.on_level_request(msg))]
        if isinstance(msg, AaeLevelReply):
            return self.aae.on_level_reply(src, msg, now_ms)
        if isinstance(msg, AaeKeysRequest):
            return [Send(src, self.aae.on_keys_request(msg))]
        if isinstance(msg, AaeKeysReply):
            return self.aae.on_keys_reply(src, msg, now_ms, self._safe_get, self.is_replica)
        if isinstance(msg, GossipRing):
            return ring_gossip.on_gossip(self, src, msg)
        if isinstance(msg, JoinRequest):
            return ring_gossip.on_join(self, msg)
        if isinstance(msg, LeaveComplete):
            return ring_gossip.on_leave_complete(self, msg)
        if isinstance(msg, HandoffIdle):
            return self._on_handoff_idle(msg)
        # Ping, Hello: heard_from above is all they are for. Paxos messages of the retired
        # per-key Paxos (an older node during an upgrade) are ignored.
        return []

    # ---- timers ------------------------------------------------------------------------------

    def _due(self, name: str, now_ms: int) -> bool:
        at = self._timers[name]
        return at is not None and now_ms >= at

    def _on_timer(self, now_ms: int) -> list[Effect]:
        effects = self.coordinator.on_timer(now_ms)
        settings = self.settings
        if self._due("join", now_ms):
            if self.left:
                self._timers["join"] = None  # we left on purpose: never join back by ourselves
            elif self.ring is None or self.ring.member(self.node_id) is None:
                effects.extend(ring_gossip.ask_to_join(self))
                self._timers["join"] = now_ms + settings.join_retry_ms
            else:
                self._timers["join"] = None
        if self._due("gossip", now_ms):
            self._timers["gossip"] = now_ms + settings.gossip_interval_ms
            effects.extend(ring_gossip.gossip_round(self, now_ms))
        if self._due("heartbeat", now_ms):
            self._timers["heartbeat"] = now_ms + settings.heartbeat_interval_ms
            effects.extend(self._heartbeat(now_ms))
        if self._due("background", now_ms):
            self._timers["background"] = now_ms + settings.background_tick_ms
            effects.extend(self._background(now_ms))
        if self._due("buffer", now_ms):
            self._timers["buffer"] = None  # re-armed by handle() if anything stays buffered
            effects.extend(self._flush_buffer())
        if self._due("trees", now_ms):
            effects.extend(self._tree_builds(now_ms))
        return effects

    def _tree_builds(self, now_ms: int) -> list[Effect]:
        """One bounded step of the anti-entropy trees' builds, every ``aae.build_tick_ms``
        while any is unfinished: short steps with the event loop free in between, within the
        admission controller's slots (``core.exchange``, docs/anti-entropy.md "Start-up").
        A timer that fires late says the loop (or the CPU) is busy: the next step waits as
        much longer, so a loaded node gives the foreground more room."""
        due = self._timers["trees"]
        lag = 0 if due is None else min(max(now_ms - due, 0), 1_000)
        self._timers["trees"] = None
        ring = self.ring
        if ring is None or self.left:
            return []
        effects: list[Effect] = []
        if self.admission.admit(now_ms) > 0:
            effects = self._guarded("anti-entropy tree build", lambda: self.aae.build_step(
                now_ms, ring, self._max_n()))
        if self.aae.builds_pending:
            self._timers["trees"] = now_ms + self.settings.aae.build_tick_ms + lag
        return effects

    def _buffered(self, bucket: str) -> bool:
        return self.bucket_props(bucket).buffer

    def _flush_buffer(self) -> list[Effect]:
        """The object buffer's periodic write to the engine; a failure keeps the objects
        buffered (still served to reads) for the next tick."""
        try:
            self.buffer.flush()
        except DynamoKVError as exc:
            return [Log("warning", "object buffer flush failed; retrying",
                        {"error": f"{exc.code}: {exc}"})]
        return []

    def _heartbeat(self, now_ms: int) -> list[Effect]:
        ring = self.ring
        if ring is None:
            return []
        peers = [m.node_id for m in ring.members if m.node_id != self.node_id]
        effects: list[Effect] = []
        for node in self.detector.check(peers, now_ms):
            effects.append(Log("warning", "peer suspected (silent)", {"node": node}))
            effects.extend(self.coordinator.on_peer_unreachable(node))
        self._ping_seq += 1
        ping = Ping(self._ping_seq, ring.version)
        effects.extend(Send(p, ping) for p in peers if self.detector.is_up(p))
        return effects

    def _background(self, now_ms: int) -> list[Effect]:
        """Background work never fails the node: a storage failure in it is logged and the
        work is tried again on a later tick (nothing is deleted before it is acknowledged)."""
        try:
            effects = self._background_work(now_ms)
        except DynamoKVError as exc:
            effects = [Log("warning", "background work failed; retrying later",
                           {"error": f"{exc.code}: {exc}"})]
        return effects + self._quarantine_news()

    def _guarded(self, what: str, work: Callable[[], list[Effect]]) -> list[Effect]:
        """One part of the background tick: its storage failure leaves the other parts (and
        the effects they already produced) alone."""
        try:
            return work()
        except DynamoKVError as exc:
            return [Log("warning", f"{what} failed; retrying later",
                        {"error": f"{exc.code}: {exc}"})]

    def _quarantine_news(self) -> list[Effect]:
        """Log records the store quarantined since the last tick (status: ``quarantined``)."""
        counts = self.store.quarantined()
        total = sum(counts.values())
        if total == self.quarantined_logged:
            return []
        self.quarantined_logged = total
        return [Log("error", "quarantined undecodable stored records; anti-entropy restores "
                    "them from the replicas", {"total": total, "partitions": {
                        str(p): n for p, n in sorted(counts.items())}})]

    def _background_work(self, now_ms: int) -> list[Effect]:
        """Hint replay, then handoff, then anti-entropy, within the admitted slots."""
        ring = self.ring
        if ring is None or self.left:
            return []
        admit = self.admission.admit(now_ms, wanted=4)
        if admit <= 0:
            return []
        up = self.up_nodes()
        effects: list[Effect] = []
        before = self.hints.in_flight()
        effects.extend(self._guarded("hint replay", lambda: self.hints.replay(
            now_ms, up, frozenset(ring.node_ids()), admit, self._first_replica)))
        admit -= self.hints.in_flight() - before
        if admit > 0:
            sent = self._guarded("handoff", lambda: self.handoff.step(
                now_ms, ring, self._n_of, self._min_n(), up, admit))
            admit -= sum(1 for e in sent if isinstance(e, Send))
            effects.extend(sent)
        if admit > 0:
            effects.extend(self._guarded("anti-entropy", lambda: self.aae.step(
                now_ms, ring, self._max_n(), up, admit)[0]))
        if self.aae.builds_pending and self._timers["trees"] is None:
            self._timers["trees"] = now_ms + self.settings.aae.build_tick_ms
        effects.extend(self._guarded("leave", lambda: ring_gossip.maybe_leave_complete(self, ring)))
        if (ring.previous_owners and self.handoff.idle_for(ring.version)
                and now_ms - self._idle_sent_ms >= 1_000):
            self._idle_sent_ms = now_ms
            idle = HandoffIdle(self.node_id, ring.version)
            if ring.claimant == self.node_id:
                effects.extend(self._on_handoff_idle(idle))
            else:
                effects.append(Send(ring.claimant, idle))
        return effects

    def _on_handoff_idle(self, msg: HandoffIdle) -> list[Effect]:
        """Claimant: once every member handed off everything under the current ring, the
        previous owners no longer hold anything Paxos must hear about: forget them."""
        ring = self.ring
        if ring is None or ring.claimant != self.node_id or msg.ring_version != ring.version:
            return []
        if not ring.previous_owners:
            return []
        reports = self._idle_reports.setdefault(ring.version, set())
        reports.add(msg.node_id)
        self._idle_reports = {ring.version: reports}
        if not set(ring.node_ids()) <= reports:
            return []
        settled = replace(ring, previous_owners=(), version=ring.version + 1)
        return self.adopt_own(settled, "ownership change settled", self.node_id)

    def _first_replica(self, bucket: str, key: bytes) -> str | None:
        ring = self.ring
        if ring is None:
            return None
        pl = ring.preference_list(ring.partition_for(bucket, key), self._n_of(bucket))
        return pl[0] if pl else None

    # ---- replica side ------------------------------------------------------------------------

    def _replica_read(self, msg: ReplicaRead) -> ReplicaReadReply:
        try:
            if msg.hint_for:
                return ReplicaReadReply(msg.req_id,
                                        self.store.get_hint(msg.hint_for, msg.bucket, msg.key))
            return ReplicaReadReply(msg.req_id, self.store.get(msg.bucket, msg.key))
        except (DynamoKVError, ValueError) as exc:  # storage failure, or a malformed request
            return ReplicaReadReply(msg.req_id, None, f"{type(exc).__name__}: {exc}")

    def merge_into_store(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        local = self.store.get(bucket, key)
        merged = sync(local, obj)
        if self.bucket_props(bucket).lww:
            merged = resolve_lww(merged)
        if merged != local:
            self.store.put(bucket, key, merged)

    def _replica_write(self, src: str, msg: ReplicaWrite) -> list[Effect]:
        error = ""
        try:
            if msg.hint_for and msg.hint_for != self.node_id:
                if not self.hints.has_room():
                    raise UnavailableError("hint backlog full")
                local = self.store.get_hint(msg.hint_for, msg.bucket, msg.key)
                merged = sync(local, msg.obj)
                if merged != local:
                    self.store.put_hint(msg.hint_for, msg.bucket, msg.key, merged)
            else:
                self.merge_into_store(msg.bucket, msg.key, msg.obj)
        except (DynamoKVError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if not msg.ack:
            return []
        return [Send(src, ReplicaWriteAck(msg.req_id, error))]

    def _on_hint_batch(self, src: str, msg: HintBatch, now_ms: int) -> list[Effect]:
        if self.admission.throttled():
            # Our foreground is slow: the sender keeps its hints and backs off. Admission is
            # local to each node, so without this a loaded receiver would never slow the
            # nodes replaying to it.
            return [Send(src, HintBatchAck(msg.batch_id, BUSY))]
        error = ""
        try:
            for item in msg.items:
                self.merge_into_store(item.bucket, item.key, item.obj)
        except DynamoKVError as exc:
            error = f"{exc.code}: {exc}"
        return [Send(src, HintBatchAck(msg.batch_id, error))]

    def _on_aae_pull(self, msg: ReplicaReadReply) -> list[Effect]:
        key = self.aae.take_pull(msg.req_id)
        if key is None or msg.obj is None or msg.error:
            return []
        try:
            self.merge_into_store(key[0], key[1], msg.obj)
        except StorageError as exc:
            return [Log("warning", "anti-entropy repair failed", {"error": str(exc)})]
        return []

    def _safe_get(self, bucket: str, key: bytes) -> VersionedObject | None:
        try:
            return self.store.get(bucket, key)
        except StorageError:
            return None

    # ---- membership and gossip (core/ring_gossip.py) ----------------------------------------

    def adopt_own(self, new: Ring, what: str, node: str) -> list[Effect]:
        """Install a ring this node (the claimant) made, persist it and tell everyone."""
        return ring_gossip.adopt_own(self, new, what, node)

    def broadcast(self, old: Ring | None = None) -> list[Effect]:
        return ring_gossip.broadcast(self, old)

    def persist_effect(self) -> PersistRing:
        return ring_gossip.persist_effect(self)

    # ---- admin requests (core/admin.py) ------------------------------------------------------

    def status(self, now_ms: int) -> dict[str, Any]:
        return admin.status(self, now_ms)
