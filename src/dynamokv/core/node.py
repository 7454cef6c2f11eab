"""NodeCore: the single entry point of a node, for the asyncio runtime and the simulator alike.

Owns: ``NodeCore`` — dispatch of events to the coordinator, the replica handlers, membership
(join through seeds, claim by the claimant) and ring gossip; ``next_deadline()``.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

``handle(event, now_ms, wall_ms) -> list[Effect]`` runs to completion; ``now_ms`` is monotonic
time (deadlines), ``wall_ms`` is the node's wall clock (version timestamps only). The driver calls
``handle(TimerFired(), ...)`` once ``now_ms`` passes ``next_deadline()``.
"""

from __future__ import annotations

import random
from typing import Any

from dynamokv.core.claim import claim
from dynamokv.core.coordinator import Coordinator, Origin, error_reply
from dynamokv.core.effects import Effect, Log, PersistRing, Reply, Send, SendTo
from dynamokv.core.events import (
    ClientRequested,
    Event,
    MessageReceived,
    PeerUnreachable,
    TimerFired,
)
from dynamokv.core.failure import FailureDetector
from dynamokv.core.messages import (
    BucketPropsReply,
    BucketPropsRequest,
    CoordinatePut,
    ErrorReply,
    GetRequest,
    GossipRing,
    JoinRequest,
    Message,
    PutReply,
    PutRequest,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
    ReplicaWriteAck,
    RingReply,
    RingRequest,
    StatusReply,
    StatusRequest,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.ring import Member, MemberStatus, Ring, reconcile
from dynamokv.core.settings import BucketProps, CoreSettings
from dynamokv.core.versioned import resolve_lww, sync
from dynamokv.errors import DynamoKVError, InvalidRequest, StorageError


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
        self.store = store
        self.settings = settings
        self.limits = settings.limits
        self.rng = rng
        self.seeds = seeds
        self.ring = ring
        self.buckets: dict[str, BucketProps] = {}
        self.buckets_version = buckets_version
        default = settings.default_bucket_props()
        for name, props in (buckets or {}).items():
            self.buckets[name] = default.with_updates(props)
        self.detector = FailureDetector(settings.down_probe_interval_ms)
        self.coordinator = Coordinator(self)
        self._next_gossip_ms: int | None = None
        self._next_join_ms: int | None = None
        self._seed_turn = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, now_ms: int) -> list[Effect]:
        """First call after construction (or a restart): bootstrap, rejoin or keep the ring."""
        effects: list[Effect] = []
        if self.ring is None and not self.seeds:
            self.ring = claim(None, [self.me], q=self.settings.q,
                              target_n=self.settings.quorum.n, claimant=self.node_id)
            effects.append(self._persist())
            effects.append(Log("info", "started a new cluster", {"q": self.settings.q}))
        elif self.ring is not None and self.ring.member(self.node_id) != self.me:
            effects.extend(self._ask_to_join())  # our address changed: tell the claimant
        self._next_gossip_ms = now_ms + self.settings.gossip_interval_ms
        if self.ring is None:
            self._next_join_ms = now_ms
        return effects

    def next_deadline(self) -> int | None:
        times = [t for t in (self.coordinator.deadlines.next(), self._next_gossip_ms,
                             self._next_join_ms) if t is not None]
        return min(times) if times else None

    def bucket_props(self, bucket: str) -> BucketProps:
        props = self.buckets.get(bucket)
        return props if props is not None else self.settings.default_bucket_props()

    # ---- dispatch ----------------------------------------------------------------------------

    def handle(self, event: Event, now_ms: int, wall_ms: int) -> list[Effect]:
        if isinstance(event, MessageReceived):
            return self._on_message(event.src, event.msg, now_ms, wall_ms)
        if isinstance(event, ClientRequested):
            return self._on_client(event.client, event.msg, now_ms, wall_ms)
        if isinstance(event, PeerUnreachable):
            effects: list[Effect] = []
            if self.detector.unreachable(event.node, now_ms):
                effects.append(Log("warning", "peer unreachable", {"node": event.node}))
            effects.extend(self.coordinator.on_peer_unreachable(event.node))
            return effects
        if isinstance(event, TimerFired):
            return self._on_timer(now_ms)
        raise TypeError(f"unknown event {event!r}")

    def _on_client(self, client: int, msg: Message, now_ms: int, wall_ms: int) -> list[Effect]:
        coordinator = self.coordinator
        if isinstance(msg, GetRequest):
            return coordinator.start_get(Origin(msg.req_id, client=client), msg, now_ms)
        if isinstance(msg, PutRequest):
            return coordinator.start_put(Origin(msg.req_id, client=client), msg, now_ms, wall_ms)
        if isinstance(msg, RingRequest):
            return [Reply(client, self._ring_reply(msg.req_id))]
        if isinstance(msg, StatusRequest):
            return [Reply(client, StatusReply(msg.req_id, self.status(now_ms)))]
        if isinstance(msg, BucketPropsRequest):
            return self._on_bucket_props(client, msg)
        req_id = getattr(msg, "req_id", 0)
        exc = InvalidRequest(f"{type(msg).__name__} is not a client request")
        return [Reply(client, error_reply(req_id if isinstance(req_id, int) else 0, exc))]

    def _on_message(self, src: str, msg: Message, now_ms: int, wall_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        if self.detector.heard_from(src):
            effects.append(Log("info", "peer is back", {"node": src}))
        coordinator = self.coordinator
        if isinstance(msg, ReplicaWriteAck):
            effects.extend(coordinator.on_write_ack(src, msg.req_id, msg.error))
        elif isinstance(msg, ReplicaReadReply):
            effects.extend(coordinator.on_read_reply(src, msg.req_id, msg.obj, msg.error))
        elif isinstance(msg, ReplicaRead):
            effects.append(Send(src, self._replica_read(msg)))
        elif isinstance(msg, ReplicaWrite):
            effects.extend(self._replica_write(src, msg))
        elif isinstance(msg, CoordinatePut):
            origin = Origin(msg.req_id, node=src)
            effects.extend(coordinator.start_put(origin, msg.request, now_ms, wall_ms))
        elif isinstance(msg, PutReply | ErrorReply):
            effects.extend(coordinator.on_forward_reply(src, msg))
        elif isinstance(msg, GossipRing):
            effects.extend(self._on_gossip(src, msg))
        elif isinstance(msg, JoinRequest):
            effects.extend(self._on_join(msg))
        # Hello and anything unknown: nothing more to do (heard_from already counted it).
        return effects

    def _on_timer(self, now_ms: int) -> list[Effect]:
        effects = self.coordinator.on_timer(now_ms)
        if self._next_join_ms is not None and now_ms >= self._next_join_ms:
            if self.ring is None or self.ring.member(self.node_id) is None:
                effects.extend(self._ask_to_join())
                self._next_join_ms = now_ms + self.settings.join_retry_ms
            else:
                self._next_join_ms = None
        if self._next_gossip_ms is not None and now_ms >= self._next_gossip_ms:
            self._next_gossip_ms = now_ms + self.settings.gossip_interval_ms
            effects.extend(self._gossip_round(now_ms))
        return effects

    # ---- replica side ------------------------------------------------------------------------

    def _replica_read(self, msg: ReplicaRead) -> ReplicaReadReply:
        try:
            return ReplicaReadReply(msg.req_id, self.store.get(msg.bucket, msg.key))
        except StorageError as exc:
            return ReplicaReadReply(msg.req_id, None, f"storage: {exc}")

    def _replica_write(self, src: str, msg: ReplicaWrite) -> list[Effect]:
        error = ""
        try:
            local = self.store.get(msg.bucket, msg.key)
            merged = sync(local, msg.obj)
            if self.bucket_props(msg.bucket).lww:
                merged = resolve_lww(merged)
            if merged != local:
                self.store.put(msg.bucket, msg.key, merged)
        except StorageError as exc:
            error = f"storage: {exc}"
        if not msg.ack:
            return []
        return [Send(src, ReplicaWriteAck(msg.req_id, error))]

    # ---- membership and gossip ---------------------------------------------------------------

    def _ask_to_join(self) -> list[Effect]:
        me = self.me
        join = JoinRequest(me.node_id, me.address, me.http_address, me.metrics_address)
        if self.ring is not None and self.ring.claimant != self.node_id:
            return [Send(self.ring.claimant, join)]
        if not self.seeds:
            return []
        seed = self.seeds[self._seed_turn % len(self.seeds)]
        self._seed_turn += 1
        return [SendTo(seed, join)]

    def _on_join(self, msg: JoinRequest) -> list[Effect]:
        ring = self.ring
        if ring is None:
            return []  # we are joining ourselves; the joiner retries through another seed
        if ring.claimant != self.node_id:
            return [Send(ring.claimant, msg)]
        member = Member(msg.node_id, msg.address, MemberStatus.VALID, msg.http_address,
                        msg.metrics_address)
        known = ring.member(msg.node_id)
        if known == member:
            return [Send(msg.node_id, self._gossip_message())]
        members = [m for m in ring.members if m.node_id != msg.node_id] + [member]
        self.ring = claim(ring, members, q=ring.q, target_n=self.settings.quorum.n,
                          claimant=self.node_id)
        effects: list[Effect] = [
            self._persist(),
            Log("info", "member joined", {"node": msg.node_id, "ring_version": self.ring.version}),
        ]
        effects.extend(self._broadcast())
        return effects

    def _on_gossip(self, src: str, msg: GossipRing) -> list[Effect]:
        effects: list[Effect] = []
        changed = False
        theirs = msg.ring
        new = reconcile(self.ring, theirs)
        if new != self.ring:
            self.ring = new
            changed = True
            effects.append(Log("info", "adopted ring", {"version": new.version, "from": src}))
        if msg.buckets_version > self.buckets_version:
            default = self.settings.default_bucket_props()
            try:
                self.buckets = {n: default.with_updates(p) for n, p in msg.buckets.items()}
                self.buckets_version = msg.buckets_version
                changed = True
            except DynamoKVError as exc:
                effects.append(Log("error", "ignored invalid bucket table", {"error": str(exc)}))
        if changed:
            effects.append(self._persist())
        if (self.ring is not None and (theirs.version < self.ring.version
                                       or msg.buckets_version < self.buckets_version)):
            effects.append(Send(src, self._gossip_message()))  # they are behind: catch them up
        return effects

    def _gossip_round(self, now_ms: int) -> list[Effect]:
        ring = self.ring
        if ring is None:
            return []
        others = [m.node_id for m in ring.members if m.node_id != self.node_id]
        if not others:
            return []
        targets = {self.rng.choice(others)}
        targets.update(self.detector.due_probes(now_ms))
        msg = self._gossip_message()
        return [Send(node, msg) for node in sorted(targets) if node in others]

    def _broadcast(self) -> list[Effect]:
        if self.ring is None:
            return []
        msg = self._gossip_message()
        return [Send(m.node_id, msg) for m in self.ring.members if m.node_id != self.node_id]

    def _gossip_message(self) -> GossipRing:
        assert self.ring is not None
        buckets = {name: props.as_dict() for name, props in sorted(self.buckets.items())}
        return GossipRing(self.ring, buckets, self.buckets_version)

    def _persist(self) -> PersistRing:
        assert self.ring is not None
        buckets = {name: props.as_dict() for name, props in sorted(self.buckets.items())}
        return PersistRing(self.ring, buckets, self.buckets_version)

    # ---- admin requests ----------------------------------------------------------------------

    def _on_bucket_props(self, client: int, msg: BucketPropsRequest) -> list[Effect]:
        if not msg.props:
            return [Reply(client, BucketPropsReply(msg.req_id, msg.bucket,
                                                   self.bucket_props(msg.bucket).as_dict()))]
        try:
            props = self.bucket_props(msg.bucket).with_updates(msg.props)
        except DynamoKVError as exc:
            return [Reply(client, error_reply(msg.req_id, exc))]
        self.buckets[msg.bucket] = props
        self.buckets_version += 1
        effects: list[Effect] = [Reply(client, BucketPropsReply(msg.req_id, msg.bucket,
                                                                props.as_dict()))]
        if self.ring is not None:
            effects.append(self._persist())
            effects.extend(self._broadcast())
        return effects

    def _ring_reply(self, req_id: int) -> Message:
        if self.ring is None:
            exc = DynamoKVError(f"node {self.node_id} has not joined a cluster yet")
            return error_reply(req_id, exc)
        defaults = self.settings.default_bucket_props().as_dict()
        defaults["buckets"] = {n: p.as_dict() for n, p in sorted(self.buckets.items())}
        return RingReply(req_id, self.ring, defaults)

    def status(self, now_ms: int) -> dict[str, Any]:
        ring = self.ring
        down = self.detector.down()
        members = []
        if ring is not None:
            for m in ring.members:
                members.append({
                    "node": m.node_id, "address": m.address, "http": m.http_address,
                    "metrics": m.metrics_address, "status": m.status.value,
                    "up": m.node_id == self.node_id or m.node_id not in down,
                    "down_for_ms": now_ms - down[m.node_id] if m.node_id in down else 0,
                    "partitions": len(ring.partitions_of(m.node_id)),
                })
        return {
            "node": self.node_id,
            "actor": self.actor,
            "ring_version": ring.version if ring else 0,
            "claimant": ring.claimant if ring else None,
            "q": ring.q if ring else self.settings.q,
            "joined": ring is not None and ring.member(self.node_id) is not None,
            "members": members,
            "in_flight": len(self.coordinator.ops),
            "defaults": self.settings.default_bucket_props().as_dict(),
            "buckets": {n: p.as_dict() for n, p in sorted(self.buckets.items())},
        }
