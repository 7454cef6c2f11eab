"""Eventually consistent range and scan reads of tables, both sides.

Owns: ``TableOps`` — coordinating ``RangeRequest``/``ScanRequest`` (ask a replica, page) and
answering the replica side (``ReplicaRange``, ``ReplicaScan``). Writes, conditional writes and
strongly consistent reads of tables go through the partition logs (``core.replog``); the
per-key Paxos that used to live here is retired.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Reads go to one replica: the partition log's leader when this node knows it (it has applied
every acknowledged write), else this node or the first primary. Items are single-sibling
objects written by the partition logs; tombstones never reach the store.
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
    ReplicaRange,
    ReplicaRangeReply,
    ReplicaScan,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.requests import (
    RangeRequest,
    RangeResult,
    ScanRequest,
)
from dynamokv.core.ring import Ring
from dynamokv.core.settings import BucketProps, Limits
from dynamokv.core.versioned import VersionedObject, resolve_lww, sync
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

    def log_leader(self, partition: int) -> str: ...


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
        self.deadlines = Deadlines()
        self._next_id = ID_BASE + node.rng.randrange(1 << 38)  # see Coordinator._next_id

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
            # The partition's log leader has applied every acknowledged write: prefer it, so
            # a scan or query right after a write through another node sees it.
            leader = self.node.log_leader(partition)
            if leader in up:
                targets = [leader]
            else:
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
        return effects

    def wants_timer(self) -> bool:
        return False

    def on_peer_unreachable(self, node: str, wall_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id, read in list(self.reads.items()):
            if node in read.replicas and node not in read.replies:
                read.failed[node] = "unreachable"
                if len(read.replicas) - len(read.failed) < read.needed:
                    effects.extend(self._fail_read(op_id, read, QuorumNotMet(
                        "range read: too many replicas unreachable", {"failed": read.failed})))
        return effects

    def _timeout(self, requested: int | None) -> int:
        limits = self.node.limits
        if requested is None or requested <= 0:
            return limits.request_timeout_ms
        return min(requested, limits.request_timeout_ms_max)


def _error(exc: DynamoKVError) -> ErrorReply:
    return ErrorReply(0, exc.code, exc.message, exc.details)
