"""Per-request state machines: coordinated gets and puts, and puts forwarded to a replica.

Owns: ``Origin``, ``GetOp``, ``PutOp``, ``ForwardOp`` and ``Coordinator``, which starts them,
feeds them replies and failures, answers when the tally decides, and issues read repair.
May import: ``dynamokv.core.{quorum,messages,effects,versioned,vclock,ring,failure,deadlines,
settings,ports,actors}``, ``dynamokv.errors``.

Flow of a put (the paper, section 5): the coordinator must be a replica of the key, because it
stamps the new version with its own actor, so a node outside the preference list forwards the
put to the first live replica (``ForwardOp``). The coordinator writes locally, sends the new
object to the other replicas, and answers once W of the N (itself included) acknowledged.

Flow of a get: any node coordinates. It asks all N replicas, answers with the join of the first
R replies, then waits (until every replica answered or the deadline) and sends the join back to
the replicas that answered with less (read repair, section 5).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from dynamokv.core.actors import ActorBook
from dynamokv.core.apl import Replica, ReplicaKind, active_preference_list
from dynamokv.core.buffer import ObjectBuffer
from dynamokv.core.deadlines import Deadlines
from dynamokv.core.effects import Effect, Reply, Send
from dynamokv.core.failure import FailureDetector
from dynamokv.core.messages import (
    CoordinatePut,
    ErrorReply,
    GetReply,
    GetRequest,
    Message,
    PutReply,
    PutRequest,
    ReplicaRead,
    ReplicaWrite,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.quorum import Decision, GetTally, PutTally
from dynamokv.core.ring import Ring
from dynamokv.core.settings import BucketProps, Limits
from dynamokv.core.vclock import PruneLimits
from dynamokv.core.versioned import (
    VersionedObject,
    apply_write,
    new_sibling,
    resolve_lww,
    sync,
)
from dynamokv.errors import (
    DynamoKVError,
    InvalidRequest,
    KeyTooLarge,
    Overloaded,
    QuorumNotMet,
    RequestTimeout,
    StorageError,
    TooManySiblings,
    UnavailableError,
    ValueTooLarge,
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who to answer: a client connection, or the peer that forwarded the request to us."""

    req_id: int
    client: int | None = None
    node: str | None = None

    def answer(self, msg: Message) -> Effect:
        if self.client is not None:
            return Reply(self.client, msg)
        assert self.node is not None
        return Send(self.node, msg)


@dataclass(slots=True)
class GetOp:
    origin: Origin
    bucket: str
    key: bytes
    tally: GetTally
    lww: bool
    hint_for: dict[str, str]  # fallback node -> the down primary it stands in for
    responded: bool = False


@dataclass(slots=True)
class PutOp:
    origin: Origin
    bucket: str
    key: bytes
    tally: PutTally
    obj: VersionedObject
    stands_in_for: dict[str, str]  # fallback node -> the down primary it stands in for
    responded: bool = False


@dataclass(slots=True)
class ForwardOp:
    client: int
    client_req_id: int
    request: PutRequest
    candidates: list[str]
    target: str


Op = GetOp | PutOp | ForwardOp


@dataclass(frozen=True, slots=True)
class Plan:
    """Where one request goes: the active preference list and what it must hear back."""

    props: BucketProps
    replicas: tuple[Replica, ...]  # primaries that are up, then fallbacks for the down ones
    needed: int
    needed_primaries: int
    primaries: frozenset[str]  # the replicas that are primaries
    down_primaries: tuple[str, ...]  # primaries replaced by fallbacks (or by nobody)

    @property
    def tally_nodes(self) -> tuple[str, ...]:
        return tuple(r.node for r in self.replicas) + self.down_primaries


class NodeView(Protocol):
    """What the coordinator needs of its node (kept narrow so it is easy to test)."""

    node_id: str
    actor: str
    actors: ActorBook
    store: ObjectStore
    ring: Ring | None
    detector: FailureDetector
    limits: Limits
    rng: random.Random
    prune_limits: PruneLimits
    buffer: ObjectBuffer

    def bucket_props(self, bucket: str) -> BucketProps: ...

    def up_nodes(self) -> frozenset[str]: ...

    def hint_room(self) -> bool: ...

    def suspect_replica(self, bucket: str, key: bytes, node: str) -> None: ...


class Coordinator:
    """Every request this node coordinates or forwards, by internal request id."""

    def __init__(self, node: NodeView) -> None:
        self.node = node
        self.ops: dict[int, Op] = {}
        self.deadlines = Deadlines()
        # A random start per process: a reply to a request sent before a restart cannot be
        # taken for the answer to a new one (replies name the request id, not the key).
        self._next_id = node.rng.randrange(1 << 38)
        # Puts answered before every replica acknowledged: op id -> (bucket, key, replicas
        # still owing an ack -> the node each stands for, the object written). A replica that
        # fails later gets a hint, as one that failed before the answer does; one still silent
        # at the op's deadline may have missed the write, which anti-entropy then checks first
        # (``suspect_replica``).
        self.unconfirmed: dict[int, tuple[str, bytes, dict[str, str], VersionedObject]] = {}

    # ---- starting requests -------------------------------------------------------------------

    def start_get(self, origin: Origin, req: GetRequest, now_ms: int) -> list[Effect]:
        try:
            plan = self._plan(req.bucket, req.key, req.r, req.pr, "r")
            self._check_capacity()
        except DynamoKVError as exc:
            return [origin.answer(error_reply(origin.req_id, exc, self._ring_version()))]
        op_id = self._new_id()
        tally = GetTally(plan.needed, plan.tally_nodes, primaries=plan.primaries,
                         needed_primaries=plan.needed_primaries)
        for node in plan.down_primaries:
            tally.record_failure(node, "suspected down")
        hint_for = {r.node: r.for_node for r in plan.replicas if r.for_node}
        op = GetOp(origin, req.bucket, req.key, tally, plan.props.lww, hint_for)
        effects: list[Effect] = []
        for replica in plan.replicas:
            if replica.node == self.node.node_id:
                try:
                    tally.record_reply(replica.node, self._local_get(replica, req.bucket, req.key))
                except StorageError as exc:
                    tally.record_failure(replica.node, f"storage: {exc}")
            else:
                effects.append(Send(replica.node, ReplicaRead(op_id, req.bucket, req.key,
                                                              replica.for_node or "")))
        self.ops[op_id] = op
        self.deadlines.set(op_id, now_ms + self._timeout(req.timeout_ms))
        effects.extend(self._progress_get(op_id, op, final=False))
        return effects

    def start_put(self, origin: Origin, req: PutRequest, now_ms: int, wall_ms: int) -> list[Effect]:
        try:
            self._validate_put(req)
            plan = self._plan(req.bucket, req.key, req.w, req.pw, "w")
            self._check_capacity()
        except DynamoKVError as exc:
            return [origin.answer(error_reply(origin.req_id, exc, self._ring_version()))]
        mine = next((r for r in plan.replicas if r.node == self.node.node_id), None)
        if (mine is not None and mine.kind is ReplicaKind.FALLBACK and origin.client is not None
                and any(r.kind is ReplicaKind.PRIMARY for r in plan.replicas)):
            # Versions are stamped by a primary whenever one is up: a fallback's copy is a hint
            # that will be handed back and deleted, so it cannot remember which counters it
            # issued.
            primaries_first = tuple(sorted(plan.replicas,
                                           key=lambda r: r.kind is not ReplicaKind.PRIMARY))
            return self._forward_put(origin, req, primaries_first, now_ms)
        if mine is None:
            if origin.client is None:
                # A forwarded put reached a node that is no replica by its own ring: the rings
                # disagree. Refuse rather than forward again, so forwards never loop.
                stale = UnavailableError(
                    f"{self.node.node_id} is not a replica of this key in ring version "
                    f"{self._ring_version()}",
                    {"replicas": [r.node for r in plan.replicas]},
                )
                return [origin.answer(error_reply(origin.req_id, stale, self._ring_version()))]
            return self._forward_put(origin, req, plan.replicas, now_ms)
        return self._coordinate_put(origin, req, plan, mine, now_ms, wall_ms)

    def _coordinate_put(
        self,
        origin: Origin,
        req: PutRequest,
        plan: Plan,
        mine: Replica,
        now_ms: int,
        wall_ms: int,
    ) -> list[Effect]:
        node = self.node
        try:
            local = self._local_get(mine, req.bucket, req.key)
            stamp = wall_ms
            if plan.props.lww and local is not None:
                # Last writer wins by a hybrid clock: never stamp below what this replica has
                # seen, so a node whose clock lags cannot lose a later write to an earlier one.
                stamp = max(stamp, local.max_timestamp_ms() + 1)
            # Counters are only remembered through the local copy (core/actors.py): the
            # partition's actor is replaced whenever this node forgot a key of it. A fallback's
            # copy is a hint that is deleted after its handoff: a one-off actor there.
            if mine.kind is ReplicaKind.FALLBACK:
                actor = node.actors.one_off()
            else:
                actor = node.actors.for_key(req.bucket, req.key)
            # Prune the writer's context as the paper does (oldest entries past the size and
            # age limits): at worst a spurious sibling later, never a lost write.
            context = req.context.prune(wall_ms, node.prune_limits)
            sibling = new_sibling(local, actor, req.value, context, stamp)
            obj = apply_write(local, sibling)
            if plan.props.lww:
                obj = resolve_lww(obj)
            if len(obj.siblings) > node.limits.siblings_max:
                raise TooManySiblings(
                    f"the write would leave {len(obj.siblings)} siblings (limit "
                    f"{node.limits.siblings_max}); read the key and write back with its context "
                    "to resolve them",
                    {"siblings": len(obj.siblings), "limit": node.limits.siblings_max},
                )
            self._local_put(mine, req.bucket, req.key, obj)
            if plan.props.buffer:
                # The one durable copy of a buffered write (paper 6.1): ours, synced before
                # anything is acknowledged or sent, so no remote replica's fate can undo it.
                node.buffer.make_durable(req.bucket, req.key)
        except DynamoKVError as exc:
            return [origin.answer(error_reply(origin.req_id, exc, self._ring_version()))]
        op_id = self._new_id()
        tally = PutTally(plan.needed, plan.tally_nodes, primaries=plan.primaries,
                         needed_primaries=plan.needed_primaries)
        for down in plan.down_primaries:
            tally.record_failure(down, "suspected down")
        tally.record_ack(node.node_id)
        covered = {r.for_node for r in plan.replicas if r.for_node}
        for down in plan.down_primaries:
            if down not in covered:
                # No spare node to stand in (a cluster of N nodes): keep the hint here, as
                # Cassandra's coordinator does. It does not count toward W.
                self._keep_hint(down, req.bucket, req.key, obj)
        op = PutOp(origin, req.bucket, req.key, tally, obj,
                   {r.node: r.for_node for r in plan.replicas if r.for_node})
        effects: list[Effect] = []
        for replica in plan.replicas:
            if replica.node != node.node_id:
                effects.append(Send(replica.node, ReplicaWrite(
                    op_id, req.bucket, req.key, obj, True, replica.for_node or "")))
        self.ops[op_id] = op
        self.deadlines.set(op_id, now_ms + self._timeout(req.timeout_ms))
        effects.extend(self._progress_put(op_id, op, final=False))
        return effects

    def _forward_put(
        self, origin: Origin, req: PutRequest, replicas: tuple[Replica, ...], now_ms: int
    ) -> list[Effect]:
        assert origin.client is not None
        candidates = [r.node for r in replicas]
        if not candidates:
            exc = QuorumNotMet("no replica of this key is reachable to coordinate the put",
                               {"needed": 1, "replicas": []})
            return [origin.answer(error_reply(origin.req_id, exc, self._ring_version()))]
        op_id = self._new_id()
        target = candidates.pop(0)
        self.ops[op_id] = ForwardOp(origin.client, origin.req_id, req, candidates, target)
        self.deadlines.set(op_id, now_ms + self._timeout(req.timeout_ms))
        return [Send(target, CoordinatePut(op_id, req))]

    # ---- replies and failures ----------------------------------------------------------------

    def on_read_reply(self, src: str, op_id: int, obj: VersionedObject | None, error: str
                      ) -> list[Effect]:
        op = self.ops.get(op_id)
        if not isinstance(op, GetOp):
            return []
        if error:
            op.tally.record_failure(src, error)
        else:
            op.tally.record_reply(src, obj)
        return self._progress_get(op_id, op, final=False)

    def on_write_ack(self, src: str, op_id: int, error: str) -> list[Effect]:
        op = self.ops.get(op_id)
        if not isinstance(op, PutOp):
            self._late_ack(src, op_id, error)
            return []
        if error:
            op.tally.record_failure(src, error)
        else:
            op.tally.record_ack(src)
        return self._progress_put(op_id, op, final=False)

    def on_forward_reply(self, src: str, msg: PutReply | ErrorReply) -> list[Effect]:
        op = self.ops.get(msg.req_id)
        if not isinstance(op, ForwardOp) or src != op.target:
            return []
        if isinstance(msg, ErrorReply) and msg.code == "UnavailableError" and op.candidates:
            return self._retry_forward(msg.req_id, op)
        del self.ops[msg.req_id]
        self.deadlines.cancel(msg.req_id)
        relayed: Message
        if isinstance(msg, PutReply):
            relayed = PutReply(op.client_req_id, msg.context, self._ring_version())
        else:
            relayed = ErrorReply(op.client_req_id, msg.code, msg.message, msg.details,
                                 self._ring_version())
        return [Reply(op.client, relayed)]

    def on_peer_unreachable(self, node: str) -> list[Effect]:
        effects: list[Effect] = []
        for op_id, entry in list(self.unconfirmed.items()):
            if node in entry[2]:
                self._late_failure(op_id, node)
        for op_id, op in list(self.ops.items()):
            if isinstance(op, ForwardOp):
                if op.target == node:
                    effects.extend(self._retry_forward(op_id, op))
            elif node in op.tally.replicas and node in op.tally.waiting_on():
                op.tally.record_failure(node, "unreachable")
                if isinstance(op, GetOp):
                    effects.extend(self._progress_get(op_id, op, final=False))
                else:
                    effects.extend(self._progress_put(op_id, op, final=False))
        return effects

    def on_timer(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id in self.deadlines.pop_due(now_ms):
            self._unacknowledged(op_id)
            op = self.ops.get(op_id)
            if isinstance(op, GetOp):
                effects.extend(self._progress_get(op_id, op, final=True))
            elif isinstance(op, PutOp):
                effects.extend(self._progress_put(op_id, op, final=True))
            elif isinstance(op, ForwardOp):
                del self.ops[op_id]
                exc = RequestTimeout(
                    f"replica {op.target} did not answer the forwarded put in time",
                    {"coordinator": op.target},
                )
                effects.append(Reply(op.client, error_reply(op.client_req_id, exc,
                                                            self._ring_version())))
        return effects

    # ---- deciding ----------------------------------------------------------------------------

    def _progress_get(self, op_id: int, op: GetOp, *, final: bool) -> list[Effect]:
        effects: list[Effect] = []
        decision = op.tally.decision()
        if not op.responded and (decision is not Decision.PENDING or final):
            op.responded = True
            effects.append(op.origin.answer(self._get_answer(op, decision)))
        if op.responded and (op.tally.complete() or final):
            del self.ops[op_id]
            self.deadlines.cancel(op_id)
            effects.extend(self._read_repair(op))
        return effects

    def _get_answer(self, op: GetOp, decision: Decision) -> Message:
        req_id = op.origin.req_id
        if decision is not Decision.OK:
            return error_reply(req_id, quorum_error("read", op.tally.report(), decision),
                               self._ring_version())
        merged = op.tally.merged()
        if merged is not None and op.lww:
            merged = resolve_lww(merged)
        if merged is None:
            return GetReply(req_id, (), VersionedObject(()).context(), False, self._ring_version())
        return GetReply(req_id, tuple(merged.values()), merged.context(),
                        not merged.is_deleted(), self._ring_version())

    def _read_repair(self, op: GetOp) -> list[Effect]:
        merged = op.tally.merged()
        if merged is None:
            return []
        if op.lww:
            merged = resolve_lww(merged)
        effects: list[Effect] = []
        for node in op.tally.repair_targets():
            hint_for = op.hint_for.get(node, "")
            if node == self.node.node_id:
                here = Replica(node, ReplicaKind.FALLBACK if hint_for else ReplicaKind.PRIMARY,
                               hint_for or None)
                try:
                    local = self._local_get(here, op.bucket, op.key)
                    self._local_put(here, op.bucket, op.key, sync(local, merged))
                except StorageError:
                    pass  # anti-entropy will catch up; a repair failure never fails the read
            else:
                effects.append(Send(node, ReplicaWrite(0, op.bucket, op.key, merged, False,
                                                       hint_for)))
        return effects

    def _progress_put(self, op_id: int, op: PutOp, *, final: bool) -> list[Effect]:
        decision = op.tally.decision()
        if decision is Decision.PENDING and not final:
            return []
        del self.ops[op_id]
        deadline = self.deadlines.at(op_id)
        self.deadlines.cancel(op_id)
        self._await_late_acks(op_id, op, deadline)
        for failed in op.tally.failed:
            if failed == self.node.node_id:
                continue
            self.node.suspect_replica(op.bucket, op.key, op.stands_in_for.get(failed, failed))
            # The write did not reach this replica: hint it here for the primary it was meant
            # for (itself, or the down primary a failed fallback stood in for).
            target = op.stands_in_for.get(failed, failed)
            if target in op.tally.primaries or failed in op.stands_in_for:
                self._keep_hint(target, op.bucket, op.key, op.obj)
        if decision is Decision.OK:
            msg: Message = PutReply(op.origin.req_id, op.obj.context(), self._ring_version())
        else:
            msg = error_reply(op.origin.req_id, quorum_error("write", op.tally.report(), decision),
                              self._ring_version())
        return [op.origin.answer(msg)]

    def _await_late_acks(self, op_id: int, op: PutOp, deadline: int | None) -> None:
        """Keep watching the replicas a decided put still waits on, until its deadline."""
        waiting = {n: op.stands_in_for.get(n, n) for n in op.tally.waiting_on()
                   if n != self.node.node_id}
        if not waiting or deadline is None:
            for target in waiting.values():
                self.node.suspect_replica(op.bucket, op.key, target)
            return
        if len(self.unconfirmed) >= self.node.limits.in_flight_requests_max:
            oldest = next(iter(self.unconfirmed))
            self.deadlines.cancel(oldest)
            self._unacknowledged(oldest)  # bounded: give up watching, suspect at once
        self.unconfirmed[op_id] = (op.bucket, op.key, waiting, op.obj)
        self.deadlines.set(op_id, deadline)

    def _late_ack(self, src: str, op_id: int, error: str) -> None:
        entry = self.unconfirmed.get(op_id)
        if entry is None:
            return
        if error:
            self._late_failure(op_id, src)
            return
        entry[2].pop(src, None)
        if not entry[2]:
            del self.unconfirmed[op_id]
            self.deadlines.cancel(op_id)

    def _late_failure(self, op_id: int, node: str) -> None:
        """A replica of an answered put failed: hint the write for the node it stood for (itself,
        or the down primary a fallback stood in for), as a failure before the answer does."""
        bucket, key, waiting, obj = self.unconfirmed[op_id]
        target = waiting.pop(node, None)
        if target is not None:
            self._keep_hint(target, bucket, key, obj)
            self.node.suspect_replica(bucket, key, target)
        if not waiting:
            del self.unconfirmed[op_id]
            self.deadlines.cancel(op_id)

    def _unacknowledged(self, op_id: int) -> None:
        entry = self.unconfirmed.pop(op_id, None)
        if entry is not None:
            for target in sorted(entry[2].values()):
                self.node.suspect_replica(entry[0], entry[1], target)

    def _retry_forward(self, op_id: int, op: ForwardOp) -> list[Effect]:
        if not op.candidates:
            del self.ops[op_id]
            self.deadlines.cancel(op_id)
            exc = QuorumNotMet(
                "no replica of the key could coordinate the put",
                {"tried": [op.target], "replicas": [op.target]},
            )
            return [Reply(op.client, error_reply(op.client_req_id, exc, self._ring_version()))]
        op.target = op.candidates.pop(0)
        return [Send(op.target, CoordinatePut(op_id, op.request))]

    # ---- helpers -----------------------------------------------------------------------------

    def _plan(self, bucket: str, key: bytes, override: int | None, p_override: int | None,
              name: str) -> Plan:
        ring = self.node.ring
        if ring is None:
            raise UnavailableError(f"node {self.node.node_id} has not joined a cluster yet; "
                                   "retry in a moment or ask another node")
        self._validate_key(bucket, key)
        props = self.node.bucket_props(bucket)
        needed = (props.r if name == "r" else props.w) if override is None else override
        if not 1 <= needed <= props.n:
            raise InvalidRequest(f"{name}={needed} must be between 1 and N={props.n}",
                                 {name: needed, "n": props.n})
        p_name = "p" + name
        needed_primaries = getattr(props, p_name) if p_override is None else p_override
        if not 0 <= needed_primaries <= props.n:
            raise InvalidRequest(f"{p_name}={needed_primaries} must be between 0 and "
                                 f"N={props.n}", {p_name: needed_primaries, "n": props.n})
        partition = ring.partition_for(bucket, key)
        primaries = ring.preference_list(partition, props.n)
        replicas = active_preference_list(ring, partition, props.n, self.node.up_nodes())
        # A cluster smaller than N keeps one copy per node; quorums shrink with it rather than
        # making a one- or two-node development cluster unusable.
        needed = min(needed, len(primaries))
        needed_primaries = min(needed_primaries, len(primaries))
        in_apl = {r.node for r in replicas}
        down = tuple(p for p in primaries if p not in in_apl)
        return Plan(props, replicas, needed, needed_primaries,
                    frozenset(r.node for r in replicas if r.kind is ReplicaKind.PRIMARY), down)

    def _keep_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        store = self.node.store
        try:
            if self.node.hint_room():
                store.put_hint(target, bucket, key, sync(store.get_hint(target, bucket, key), obj))
        except StorageError:
            pass  # best effort: read repair and anti-entropy remain

    def _local_get(self, replica: Replica, bucket: str, key: bytes) -> VersionedObject | None:
        if replica.for_node:
            return self.node.store.get_hint(replica.for_node, bucket, key)
        return self.node.store.get(bucket, key)

    def _local_put(self, replica: Replica, bucket: str, key: bytes, obj: VersionedObject
                   ) -> None:
        if replica.for_node:
            self.node.store.put_hint(replica.for_node, bucket, key, obj)
        else:
            self.node.store.put(bucket, key, obj)

    def _validate_key(self, bucket: str, key: bytes) -> None:
        limits = self.node.limits
        if not bucket or len(bucket.encode()) > limits.bucket_name_bytes_max:
            raise InvalidRequest(
                f"bucket name must be 1 to {limits.bucket_name_bytes_max} bytes",
                {"bucket_bytes": len(bucket.encode())},
            )
        if not key:
            raise InvalidRequest("key must not be empty")
        if len(key) > limits.key_bytes_max:
            raise KeyTooLarge(
                f"key is {len(key)} bytes; the limit is {limits.key_bytes_max}",
                {"key_bytes": len(key), "limit": limits.key_bytes_max},
            )

    def _validate_put(self, req: PutRequest) -> None:
        limit = self.node.limits.value_bytes_max
        if req.value is not None and len(req.value) > limit:
            raise ValueTooLarge(
                f"value is {len(req.value)} bytes; the limit is {limit}",
                {"value_bytes": len(req.value), "limit": limit},
            )

    def _check_capacity(self) -> None:
        limit = self.node.limits.in_flight_requests_max
        if len(self.ops) >= limit:
            raise Overloaded(f"{len(self.ops)} requests in flight on {self.node.node_id} "
                             f"(limit {limit}); back off and retry", {"limit": limit})

    def _timeout(self, requested: int | None) -> int:
        limits = self.node.limits
        if requested is None or requested <= 0:
            return limits.request_timeout_ms
        return min(requested, limits.request_timeout_ms_max)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _ring_version(self) -> int:
        ring = self.node.ring
        return ring.version if ring else 0


def error_reply(req_id: int, exc: DynamoKVError, ring_version: int = 0) -> ErrorReply:
    return ErrorReply(req_id, exc.code, exc.message, exc.details, ring_version)


def quorum_error(kind: str, report: dict[str, object], decision: Decision) -> DynamoKVError:
    needed = report["needed"]
    succeeded = report["succeeded"]
    assert isinstance(succeeded, list)
    if decision is Decision.PENDING:
        return RequestTimeout(
            f"{kind} timed out with {len(succeeded)} of {needed} required replies", report
        )
    return QuorumNotMet(
        f"{kind} quorum not met: {len(succeeded)} of {needed} required replicas answered",
        report,
    )
