"""Table operations of a node: ordered range reads and per-key Paxos, both sides of each.

Owns: ``TableOps`` — coordinating ``RangeRequest``/``ScanRequest`` (ask replicas, merge,
page) and ``CasRequest`` (drive a ``core.paxos.CasOp``), and answering the replica side
(``ReplicaRange``, ``ReplicaScan``, ``PaxosPrepare``/``Propose``/``Commit``).
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Reads of tables take the fast path by default (one replica, as DynamoDB's eventually consistent
reads); ``consistent`` range reads ask every live primary and wait for a majority, so they see
every write a majority acknowledged. Items in table buckets are last-writer-wins objects (one
sibling); tombstones are dropped from results but still count toward a page.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dynamokv.core.deadlines import Deadlines
from dynamokv.core.effects import Effect, Reply, Send
from dynamokv.core.failure import FailureDetector
from dynamokv.core.hashing import compose_key
from dynamokv.core.messages import (
    ErrorReply,
    KeyObject,
    PaxosAccepted,
    PaxosCommit,
    PaxosCommitAck,
    PaxosPrepare,
    PaxosPromise,
    PaxosPropose,
    ReplicaRange,
    ReplicaRangeReply,
    ReplicaScan,
)
from dynamokv.core.paxos import (
    PAXOS_ACTOR_SUFFIX,
    AcceptorState,
    Ballot,
    CasOp,
    CasPhase,
    on_commit,
    on_prepare,
    on_propose,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.requests import (
    CasAborted,
    CasRequest,
    CasResult,
    RangeRequest,
    RangeResult,
    ScanRequest,
)
from dynamokv.core.ring import Ring
from dynamokv.core.settings import BucketProps, Limits
from dynamokv.core.versioned import Dot, Sibling, VersionedObject, resolve_lww, sync
from dynamokv.errors import DynamoKVError, QuorumNotMet, RequestTimeout, UnavailableError

CAS_ATTEMPTS_MAX = 40  # retries are bounded by the request deadline first
ID_BASE = 1 << 40  # request ids of table ops, above the coordinator's and below anti-entropy's


class TableNode(Protocol):
    node_id: str
    actor: str
    store: ObjectStore
    ring: Ring | None
    detector: FailureDetector
    limits: Limits
    rng: random.Random

    def bucket_props(self, bucket: str) -> BucketProps: ...

    def up_nodes(self) -> frozenset[str]: ...

    def merge_into_store(self, bucket: str, key: bytes, obj: VersionedObject) -> None: ...


@dataclass(slots=True)
class ReadOp:
    client: int
    bucket: str
    reverse: bool
    limit: int
    replicas: tuple[str, ...]
    needed: int
    replies: dict[str, tuple[tuple[KeyObject, ...], bool]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def live_value(obj: VersionedObject | None) -> bytes | None:
    """The single live value of an LWW object, or ``None`` (absent or deleted)."""
    if obj is None:
        return None
    values = resolve_lww(obj).values()
    return values[0] if values else None


class TableOps:
    def __init__(self, node: TableNode) -> None:
        self.node = node
        self.reads: dict[int, ReadOp] = {}
        self.cas_ops: dict[int, CasOp] = {}
        self.rounds: dict[int, int] = {}  # paxos round id -> cas op id
        self.deadlines = Deadlines()
        self._next_id = ID_BASE + node.rng.randrange(1 << 38)  # see Coordinator._next_id
        self._last_ballot = Ballot.zero()
        # Ballots and Paxos dots carry a per-process nonce: after a restart (perhaps with the
        # wall clock stepped back) this node can never reuse a ballot or a dot it issued before.
        nonce = f"{node.rng.getrandbits(32):08x}"
        self._ballot_node = f"{node.node_id}#{nonce}"
        self._paxos_actor = f"{node.actor}{PAXOS_ACTOR_SUFFIX}{nonce}"
        self._paxos_counter = 0
        self._decide_fn: dict[int, Callable[[bytes | None], bytes | None] | None] = {}
        # One proposer per key per node at a time: local requests for a busy key wait their
        # turn instead of duelling with each other for ballots.
        self._key_queues: dict[tuple[str, bytes], list[int]] = {}

    def owns(self, req_id: int) -> bool:
        return ID_BASE <= req_id < ID_BASE * 2

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- range and scan: coordinator ---------------------------------------------------------
    def start_range(self, client: int, req: RangeRequest, now_ms: int) -> list[Effect]:
        return self._start_read(client, req.bucket, compose_key(req.hash_part), req.consistent,
                                req.reverse, req.limit, now_ms, req.timeout_ms,
                                lambda op_id: ReplicaRange(op_id, req.bucket, req.hash_part,
                                                           req.start, req.end, req.reverse,
                                                           req.limit))

    def start_scan(self, client: int, req: ScanRequest, now_ms: int) -> list[Effect]:
        ring = self.node.ring
        if ring is None or not 0 <= req.partition < ring.q:
            return [Reply(client, _error(UnavailableError("no such partition or no ring yet")))]
        return self._start_read(client, req.bucket, None, False, False, req.limit, now_ms,
                                req.timeout_ms,
                                lambda op_id: ReplicaScan(op_id, req.bucket, req.partition,
                                                          req.after, req.limit),
                                partition=req.partition)

    def _start_read(self, client: int, bucket: str, group: bytes | None, consistent: bool,
                    reverse: bool, limit: int, now_ms: int, timeout_ms: int | None,
                    make: Callable[[int], ReplicaRange | ReplicaScan],
                    partition: int | None = None) -> list[Effect]:
        ring = self.node.ring
        if ring is None:
            return [Reply(client, _error(UnavailableError("node has not joined a cluster")))]
        if partition is None:
            assert group is not None
            partition = ring.partition_for(bucket, group)
        n = self.node.bucket_props(bucket).n
        up = self.node.up_nodes()
        primaries = [p for p in ring.preference_list(partition, n) if p in up]
        if not primaries:
            return [Reply(client, _error(QuorumNotMet("no replica of this key range is up",
                                                     {"needed": 1})))]
        if consistent:
            needed = len(ring.preference_list(partition, n)) // 2 + 1
            targets = primaries
        else:
            needed = 1
            targets = [self.node.node_id] if self.node.node_id in primaries else primaries[:1]
        op_id = self._new_id()
        op = ReadOp(client, bucket, reverse, max(limit, 1), tuple(targets), needed)
        self.reads[op_id] = op
        self.deadlines.set(op_id, now_ms + self._timeout(timeout_ms))
        effects: list[Effect] = []
        msg = make(op_id)
        for target in targets:
            if target == self.node.node_id:
                reply = self.replica_read(msg)
                effects.extend(self.on_read_reply(target, reply))
            else:
                effects.append(Send(target, msg))
        return effects

    def on_read_reply(self, src: str, msg: ReplicaRangeReply) -> list[Effect]:
        op = self.reads.get(msg.req_id)
        if op is None or src not in op.replicas:
            return []
        if msg.error:
            op.failed[src] = msg.error
        else:
            op.replies[src] = (msg.items, msg.more)
        if len(op.replies) >= op.needed:
            return self._finish_read(msg.req_id, op)
        if len(op.replicas) - len(op.failed) < op.needed:
            return self._fail_read(msg.req_id, op, QuorumNotMet(
                f"range read: {len(op.replies)} of {op.needed} replicas answered",
                {"failed": dict(op.failed)}))
        return []

    def _finish_read(self, op_id: int, op: ReadOp) -> list[Effect]:
        del self.reads[op_id]
        self.deadlines.cancel(op_id)
        merged: dict[bytes, VersionedObject] = {}
        frontier: bytes | None = None
        for items, more in op.replies.values():
            for item in items:
                merged[item.key] = sync(merged.get(item.key), item.obj)
            if more and items:
                last = items[-1].key
                if frontier is None or (last > frontier if op.reverse else last < frontier):
                    frontier = last
        keys = sorted(merged, reverse=op.reverse)
        if frontier is not None:
            keys = [k for k in keys if (k >= frontier if op.reverse else k <= frontier)]
        keys = keys[: op.limit]
        out = []
        for key in keys:
            value = live_value(merged[key])
            if value is not None:
                out.append((key, value))
        more = frontier is not None or len(merged) > op.limit
        last_key = keys[-1] if more and keys else None
        return [Reply(op.client, RangeResult(out, last_key))]

    def _fail_read(self, op_id: int, op: ReadOp, exc: DynamoKVError) -> list[Effect]:
        self.reads.pop(op_id, None)
        self.deadlines.cancel(op_id)
        return [Reply(op.client, _error(exc))]

    # ---- range and scan: replica -------------------------------------------------------------
    def replica_read(self, msg: ReplicaRange | ReplicaScan) -> ReplicaRangeReply:
        from dynamokv.core.batches import fit_by_bytes, object_wire_bytes  # (kept local to
        # this function: the rest of the module is being rewritten in parallel)

        limit = max(1, min(msg.limit, 10_000))
        ring = self.node.ring
        if isinstance(msg, ReplicaScan) and (ring is None or not 0 <= msg.partition < ring.q):
            return ReplicaRangeReply(msg.req_id, (), False, f"no partition {msg.partition}")
        try:
            if isinstance(msg, ReplicaRange):
                rows, more = self.node.store.scan_range(msg.bucket, msg.hash_part, msg.start,
                                                        msg.end, msg.reverse, limit)
            else:
                rows, more = self.node.store.scan_bucket(msg.partition, msg.bucket, msg.after,
                                                         limit)
        except DynamoKVError as exc:
            return ReplicaRangeReply(msg.req_id, (), False, f"{exc.code}: {exc}")
        except ValueError as exc:  # a malformed request from a peer (sizes, ranges)
            return ReplicaRangeReply(msg.req_id, (), False, f"bad request: {exc}")
        # Cut at a byte budget too (the coordinator pages on from the last key sent): a count
        # of large items would overflow a frame and cost the requester its link.
        kept = fit_by_bytes(rows, self.node.limits.reply_bytes_max,
                            lambda row: object_wire_bytes(msg.bucket, *row))
        items = tuple(KeyObject(msg.bucket, k, o) for k, o in rows[:kept])
        return ReplicaRangeReply(msg.req_id, items, more or kept < len(rows))

    # ---- paxos: proposer ---------------------------------------------------------------------
    def start_cas(self, client: int, req: CasRequest, now_ms: int, wall_ms: int
                  ) -> list[Effect]:
        ring = self.node.ring
        if ring is None:
            return [Reply(client, _error(UnavailableError("node has not joined a cluster")))]
        n = self.node.bucket_props(req.bucket).n
        partition = ring.partition_for(req.bucket, req.key)
        current = ring.preference_list(partition, n)
        previous = ring.previous_preference_list(partition, n)
        groups = (current,) if not previous or set(previous) == set(current) else (
            current, previous)
        replicas = tuple(dict.fromkeys(current + previous))
        op_id = self._new_id()
        op = CasOp(client, op_id, req.bucket, req.key, replicas, len(replicas) // 2 + 1,
                   req.read_only, now_ms + self._timeout(req.timeout_ms), groups=groups)
        self.cas_ops[op_id] = op
        self._decide_fn[op_id] = req.decide
        self.deadlines.set(op_id, op.deadline_ms)
        queue = self._key_queues.setdefault((req.bucket, req.key), [])
        queue.append(op_id)
        if len(queue) > 1:
            return []  # started when the ones before it finish
        return self._prepare(op_id, op, wall_ms)

    def _ballot(self, op: CasOp, wall_ms: int) -> Ballot:
        floor = max(self._last_ballot.ms, op.highest_seen().ms)
        ballot = Ballot(max(wall_ms, floor + 1), self._ballot_node)
        self._last_ballot = ballot
        return ballot

    def _round(self, op_id: int) -> int:
        round_id = self._new_id()
        self.rounds[round_id] = op_id
        return round_id

    def _prepare(self, op_id: int, op: CasOp, wall_ms: int) -> list[Effect]:
        op.attempts += 1
        op.start_round(self._round(op_id), self._ballot(op, wall_ms), CasPhase.PREPARING)
        msg = PaxosPrepare(op.round_id, op.bucket, op.key, op.ballot.ms, op.ballot.node)
        return self._to_replicas(op, msg)

    def _to_replicas(self, op: CasOp, msg: PaxosPrepare | PaxosPropose | PaxosCommit
                     ) -> list[Effect]:
        up = self.node.up_nodes()
        effects: list[Effect] = []
        for replica in op.replicas:
            if replica not in up:
                op.failed[replica] = "suspected down"
            else:
                effects.append(Send(replica, msg))
        return effects

    def on_promise(self, src: str, msg: PaxosPromise, wall_ms: int) -> list[Effect]:
        op_id, op = self._op_for_round(msg.req_id, CasPhase.PREPARING)
        if op is None or src in op.promises or src in op.nacks:
            return []
        if msg.error:
            op.failed[src] = msg.error
        elif not msg.ok:
            op.nacks[src] = Ballot(msg.promised_ms, msg.promised_node)
        else:
            op.promises[src] = (Ballot(msg.accepted_ms, msg.accepted_node), msg.accepted,
                                Ballot(msg.committed_ms, msg.committed_node), msg.current)
        if op.reached(op.promises):
            return self._promised(op_id, op, wall_ms)
        if op.lost():
            return self._retry(op_id, op)
        return []

    def _promised(self, op_id: int, op: CasOp, wall_ms: int) -> list[Effect]:
        committed = max(p[2] for p in op.promises.values())
        in_flight = max(((b, obj) for b, obj, _, _ in op.promises.values() if obj is not None),
                        key=lambda x: x[0], default=None)
        if in_flight is not None and in_flight[0] > committed:
            # An earlier proposer got its value accepted but may not have committed it: finish
            # its work first, or a later read could see it appear out of nowhere.
            op.phase = CasPhase.REPAIRING
            op.proposal = in_flight[1]
            return self._propose(op)
        current: VersionedObject | None = None
        for _, _, _, obj in op.promises.values():
            if obj is not None:
                current = sync(current, obj)
        if current is not None and op.prior:
            # An earlier round of ours may have been chosen after all (finished by another
            # proposer): applying `decide` again would apply the change twice. At most one of
            # our rounds is chosen, and no later one was proposed after it; ops on one key are
            # serialised per node and our counters only grow, so the chosen round is the
            # latest of ours that the current value's history contains.
            seen = current.context().get(self._paxos_actor)
            chosen = [dot for dot in op.prior if dot.counter <= seen]
            if chosen:
                return self._done(op_id, op, CasResult(*op.prior[max(chosen)]))
        old = live_value(current)
        op.old_value = old
        decide = self._decide_fn.get(op_id)
        if op.read_only or decide is None:
            return self._done(op_id, op, CasResult(old, old))
        try:
            new = decide(old)
        except Exception as exc:
            return self._done(op_id, op, CasAborted(exc))
        op.new_value = new
        stamp = wall_ms
        if current is not None:
            stamp = max(stamp, current.max_timestamp_ms() + 1)
        context = current.context() if current else VersionedObject(()).context()
        # Counters of the Paxos actor only ever grow in this process, so a retry never reuses
        # the dot of an earlier proposal of its own (which might still be chosen).
        self._paxos_counter = max(self._paxos_counter, context.get(self._paxos_actor)) + 1
        sibling = Sibling(new, Dot(self._paxos_actor, self._paxos_counter), context, stamp)
        op.proposal = VersionedObject((sibling,))
        op.prior[sibling.dot] = (old, new)
        op.phase = CasPhase.PROPOSING
        return self._propose(op)

    def _propose(self, op: CasOp) -> list[Effect]:
        assert op.proposal is not None
        op.acks.clear()
        op.nacks.clear()
        op.failed.clear()
        msg = PaxosPropose(op.round_id, op.bucket, op.key, op.ballot.ms, op.ballot.node,
                           op.proposal)
        return self._to_replicas(op, msg)

    def on_accepted(self, src: str, msg: PaxosAccepted, wall_ms: int) -> list[Effect]:
        op_id, op = self._op_for_round(msg.req_id, CasPhase.PROPOSING, CasPhase.REPAIRING)
        if op is None or src in op.acks or src in op.nacks:
            return []
        if msg.error:
            op.failed[src] = msg.error
        elif not msg.ok:
            op.nacks[src] = Ballot(msg.promised_ms, msg.promised_node)
        else:
            op.acks.add(src)
        if op.reached(op.acks):
            repairing = op.phase is CasPhase.REPAIRING
            op.phase = CasPhase.COMMITTING
            op.acks.clear()
            op.failed.clear()
            assert op.proposal is not None
            commit = PaxosCommit(op.round_id, op.bucket, op.key, op.ballot.ms, op.ballot.node,
                                 op.proposal)
            op.restart_after_commit = repairing
            return self._to_replicas(op, commit)
        if op.lost():
            return self._retry(op_id, op)
        return []

    def on_commit_ack(self, src: str, msg: PaxosCommitAck, wall_ms: int) -> list[Effect]:
        op_id, op = self._op_for_round(msg.req_id, CasPhase.COMMITTING)
        if op is None or src in op.acks:
            return []
        if msg.error:
            op.failed[src] = msg.error
        else:
            op.acks.add(src)
        if op.reached(op.acks):
            if op.restart_after_commit:  # that was a repair: now our own round
                op.restart_after_commit = False
                return self._prepare(op_id, op, wall_ms)
            return self._done(op_id, op, CasResult(op.old_value, op.new_value))
        if op.lost():
            return self._retry(op_id, op)
        return []

    def _retry(self, op_id: int, op: CasOp) -> list[Effect]:
        if op.attempts >= CAS_ATTEMPTS_MAX:
            return self._done(op_id, op, _error(QuorumNotMet(
                "no Paxos majority after retries (contention or replicas down)",
                {"replicas": list(op.replicas), "failed": dict(op.failed),
                 "attempts": op.attempts})))
        op.phase = CasPhase.PREPARING
        op.round_id = 0  # replies of the lost round are ignored from now on
        op.retry_at_ms = -1  # set by on_timer with jitter
        return []

    def _op_for_round(self, round_id: int, *phases: CasPhase) -> tuple[int, CasOp | None]:
        op_id = self.rounds.get(round_id, -1)
        op = self.cas_ops.get(op_id)
        if op is None or op.round_id != round_id or op.phase not in phases:
            return op_id, None
        return op_id, op

    def _done(self, op_id: int, op: CasOp, result: object, wall_ms: int = 0) -> list[Effect]:
        self.cas_ops.pop(op_id, None)
        self._decide_fn.pop(op_id, None)
        self.deadlines.cancel(op_id)
        for round_id in [r for r, o in self.rounds.items() if o == op_id]:
            del self.rounds[round_id]
        effects: list[Effect] = [Reply(op.client, result)]
        queue = self._key_queues.get((op.bucket, op.key), [])
        if op_id in queue:
            was_first = queue[0] == op_id
            queue.remove(op_id)
            if not queue:
                del self._key_queues[(op.bucket, op.key)]
            elif was_first:
                nxt = queue[0]
                effects.extend(self._prepare(nxt, self.cas_ops[nxt], wall_ms or op.ballot.ms))
        return effects

    # ---- paxos: acceptor ---------------------------------------------------------------------
    def on_prepare_msg(self, msg: PaxosPrepare) -> PaxosPromise:
        store = self.node.store
        try:
            state = store.get_paxos(msg.bucket, msg.key) or AcceptorState()
            state, ok = on_prepare(state, Ballot(msg.ballot_ms, msg.ballot_node))
            if ok:
                store.put_paxos(msg.bucket, msg.key, state)
            current = store.get(msg.bucket, msg.key)
        except DynamoKVError as exc:
            return PaxosPromise(msg.req_id, False, 0, "", 0, "", None, 0, "", None, str(exc))
        pending = state.accepted_obj if state.accepted > state.committed else None
        return PaxosPromise(msg.req_id, ok, state.promised.ms, state.promised.node,
                            state.accepted.ms, state.accepted.node, pending,
                            state.committed.ms, state.committed.node, current)

    def on_propose_msg(self, msg: PaxosPropose) -> PaxosAccepted:
        store = self.node.store
        try:
            state = store.get_paxos(msg.bucket, msg.key) or AcceptorState()
            state, ok = on_propose(state, Ballot(msg.ballot_ms, msg.ballot_node), msg.obj)
            if ok:
                store.put_paxos(msg.bucket, msg.key, state)
        except DynamoKVError as exc:
            return PaxosAccepted(msg.req_id, False, 0, "", str(exc))
        return PaxosAccepted(msg.req_id, ok, state.promised.ms, state.promised.node)

    def on_commit_msg(self, msg: PaxosCommit) -> PaxosCommitAck:
        store = self.node.store
        try:
            self.node.merge_into_store(msg.bucket, msg.key, msg.obj)
            state = store.get_paxos(msg.bucket, msg.key) or AcceptorState()
            store.put_paxos(msg.bucket, msg.key,
                            on_commit(state, Ballot(msg.ballot_ms, msg.ballot_node)))
        except DynamoKVError as exc:
            return PaxosCommitAck(msg.req_id, str(exc))
        return PaxosCommitAck(msg.req_id)

    # ---- time --------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        return self.deadlines.next()

    def on_timer(self, now_ms: int, wall_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id in self.deadlines.pop_due(now_ms):
            read = self.reads.pop(op_id, None)
            if read is not None:
                effects.append(Reply(read.client, _error(RequestTimeout(
                    f"range read: {len(read.replies)} of {read.needed} replicas answered in time",
                    {"failed": dict(read.failed)}))))
                continue
            cas = self.cas_ops.get(op_id)
            if cas is None:
                continue
            if cas.retry_at_ms is not None and cas.retry_at_ms >= 0 and now_ms < cas.deadline_ms:
                cas.retry_at_ms = None
                self.deadlines.set(op_id, cas.deadline_ms)
                effects.extend(self._prepare(op_id, cas, wall_ms))
                continue
            effects.extend(self._done(op_id, cas, _error(RequestTimeout(
                "the conditional write or consistent read did not reach agreement in time",
                {"replicas": list(cas.replicas), "phase": cas.phase.value,
                 "attempts": cas.attempts}))))
        for op_id, cas in list(self.cas_ops.items()):
            if cas.retry_at_ms == -1:  # schedule the retry with jitter, within the deadline
                backoff = self.node.rng.randint(1, min(4 * 2 ** cas.attempts, 400))
                cas.retry_at_ms = now_ms + backoff
                self.deadlines.set(op_id, min(cas.retry_at_ms, cas.deadline_ms))
        return effects

    def wants_timer(self) -> bool:
        return any(c.retry_at_ms == -1 for c in self.cas_ops.values())

    def on_peer_unreachable(self, node: str, wall_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id, read in list(self.reads.items()):
            if node in read.replicas and node not in read.replies:
                read.failed[node] = "unreachable"
                if len(read.replicas) - len(read.failed) < read.needed:
                    effects.extend(self._fail_read(op_id, read, QuorumNotMet(
                        "range read: too many replicas unreachable", {"failed": read.failed})))
        for op_id, cas in list(self.cas_ops.items()):
            if node in cas.replicas and cas.round_id:
                cas.failed[node] = "unreachable"
                if cas.lost():
                    effects.extend(self._retry(op_id, cas))
        return effects

    def _timeout(self, requested: int | None) -> int:
        limits = self.node.limits
        if requested is None or requested <= 0:
            return limits.request_timeout_ms
        return min(requested, limits.request_timeout_ms_max)


def _error(exc: DynamoKVError) -> ErrorReply:
    return ErrorReply(0, exc.code, exc.message, exc.details)
