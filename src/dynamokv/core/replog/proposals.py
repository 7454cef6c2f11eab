"""Table requests over the partition logs: writes, conditional writes and reads of items.

Owns: ``TableRequests`` — the coordinator side (a request of this node's DynamoDB API, run at
the local leader or forwarded to the partition's leader, retried on ``NotLeader``, answered
once its entry is applied here) and the leader side (``LogWrite``/``LogRead``/``LogRange``
from other coordinators).
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Conditional writes (``CasRequest`` with a ``decide`` callable, which cannot cross a socket):
at the leader, ``decide`` runs on the item's latest value (its newest log entry, committed or
not, else the applied state) and the result is appended at once, so racing conditional writes
are serialised by the log. Elsewhere the coordinator reads the latest value from the leader,
runs ``decide`` and sends a ``LogWrite`` conditional on the value being unchanged; a changed
value comes back with the reply and ``decide`` runs again (bounded). Comparing values instead
of versions is enough for linearizability: ``decide`` is a function of the value alone.

An entry we wait for is known committed when an entry with its index *and term* is applied
here; an entry of another term at that index means ours was never committed, so the request
is safely retried. A leader that loses leadership before that keeps waiting as a follower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamokv.core.batches import fit_by_bytes, object_wire_bytes
from dynamokv.core.deadlines import Deadlines
from dynamokv.core.effects import Effect, Reply, Send
from dynamokv.core.messages import (
    ErrorReply,
    KeyObject,
    LogEntry,
    LogRange,
    LogRead,
    LogReply,
    LogScan,
    LogWrite,
    Message,
)
from dynamokv.core.replog.groups import PartitionLogs, live_value
from dynamokv.core.replog.log import INDEXED, PUT, SERVICE, STREAMED, is_put
from dynamokv.core.replog.raft import RaftGroup
from dynamokv.core.requests import (
    CasAborted,
    CasRequest,
    CasResult,
    Decide,
    RangeRequest,
    RangeResult,
    ScanRequest,
    TableRead,
    TableWrite,
    WriteRefused,
)
from dynamokv.core.settings import Limits
from dynamokv.errors import DynamoKVError, RequestTimeout, UnavailableError

ID_BASE = 3 << 40  # request ids of table requests (see Coordinator and TableOps)
RETRY_MS = 20
DECIDE_ATTEMPTS_MAX = 32
OK, NOT_LEADER, RETRY, CONDITION_FAILED = "", "NotLeader", "Retry", "ConditionFailed"
REFUSED = "Refused"
TAKEN_KEPT = 100_000  # forwarded writes remembered against duplicates (ids never repeat)


@dataclass(slots=True)
class TableOp:
    client: int
    kind: str  # "write" | "cas" | "read" | "range" | "scan"
    bucket: str
    key: bytes
    partition: int
    deadline_ms: int
    value: bytes | None = None
    decide: Decide | None = None
    consistent: bool = True
    range: RangeRequest | None = None
    scan: ScanRequest | None = None
    retry_at_ms: int | None = None
    waiting: tuple[int, int] | None = None  # (index, term) of our entry
    old: bytes | None = None
    remote: str = ""
    remote_step: str = ""  # "read" (latest value for decide) or "write"
    attempts: int = 0
    leader_hint: str = ""
    refuse_prefix: bytes = b""
    optimistic: bool = False  # decide ran on our own replica's value, not the leader's
    send_id: int = 0  # the request id of our one message in flight (replies must match it)
    flags: int = 0  # log.STREAMED / log.SERVICE, carried by the entry
    # replicas that answered "not the leader, and I know of none" since the last progress:
    # the next guess asks another one (a restarted follower may not know the leader yet)
    clueless: tuple[str, ...] = ()
    redrive: bool = False  # ``waiting`` is for another write's entry: decide again once settled
    last_answer: str = ""  # what the last replica asked said, for the timeout's message


@dataclass(slots=True)
class RemoteWait:
    """A forwarded write whose entry the leader (us) waits to see applied."""

    src: str
    req_id: int
    old: bytes | None


@dataclass(slots=True)
class RemoteAnswer:
    """An answer to a forwarded request that rests on an entry not yet committed: sent once it
    is (``code`` and the item as that entry left it), or ``Retry`` if the entry was lost."""

    src: str
    req_id: int
    code: str
    bucket: str
    key: bytes


class TableRequests:
    def __init__(self, logs: PartitionLogs, limits: Limits, id_offset: int) -> None:
        self.logs = logs
        self.limits = limits
        self.ops: dict[int, TableOp] = {}
        self.deadlines = Deadlines()
        self._next_id = ID_BASE + id_offset
        # (group, index) -> [(term, waiter)]: who waits for which entry to be applied
        self._waiters: dict[tuple[int, int],
                            list[tuple[int, int | RemoteWait | RemoteAnswer]]] = {}
        self._sends: dict[int, int] = {}  # request id of a message in flight -> op id
        # Forwarded writes already taken (sender, request id): a duplicated message must never
        # be sequenced twice, nor answered "condition failed" by its own first copy.
        self._taken: dict[tuple[str, int], None] = {}
        logs.applied_hooks.append(self._on_applied)

    # ---- starting ----------------------------------------------------------------------------
    def start(self, client: int, request: object, now_ms: int) -> list[Effect]:
        ring = self.logs.node.ring
        if ring is None:
            return [Reply(client, _error(UnavailableError("node has not joined a cluster")))]
        if isinstance(request, TableRead) and not request.consistent:
            fast = self._local_read(client, request, ring.partition_for(request.bucket,
                                                                         request.key))
            if fast is not None:
                return fast
        op = self._op_for(client, request, ring.partition_for, now_ms)
        self._next_id += 1
        op_id = self._next_id
        self.ops[op_id] = op
        self.deadlines.set(op_id, op.deadline_ms)
        return self._drive(op_id, op, now_ms)

    def _local_read(self, client: int, request: TableRead, partition: int
                    ) -> list[Effect] | None:
        """An eventually consistent read our own replica answers (the common GetItem): what
        ``_eventual_read`` does, without an op, a deadline and their bookkeeping. ``None``:
        we hold no replica; the general path forwards it."""
        raft = self.logs.groups.get(partition)
        if raft is None or self.logs.me not in raft.members:
            return None
        try:
            value = live_value(self.logs.store.get(request.bucket, request.key))
        except DynamoKVError as exc:
            return [Reply(client, _error(exc))]
        return [Reply(client, CasResult(value, value))]

    def _op_for(self, client: int, request: object, partition_for: object,
                now_ms: int) -> TableOp:
        assert callable(partition_for)
        if isinstance(request, TableWrite):
            return TableOp(client, "write", request.bucket, request.key,
                           partition_for(request.bucket, request.key),
                           now_ms + self._timeout(request.timeout_ms), value=request.value,
                           refuse_prefix=request.refuse_prefix, flags=request.flags)
        if isinstance(request, TableRead):
            return TableOp(client, "read", request.bucket, request.key,
                           partition_for(request.bucket, request.key),
                           now_ms + self._timeout(request.timeout_ms),
                           consistent=request.consistent)
        if isinstance(request, CasRequest):
            kind = "read" if request.read_only or request.decide is None else "cas"
            return TableOp(client, kind, request.bucket, request.key,
                           partition_for(request.bucket, request.key),
                           now_ms + self._timeout(request.timeout_ms), decide=request.decide,
                           flags=request.flags)
        if isinstance(request, ScanRequest):
            return TableOp(client, "scan", request.bucket, b"", request.partition,
                           now_ms + self._timeout(request.timeout_ms), scan=request)
        assert isinstance(request, RangeRequest)
        from dynamokv.core.hashing import compose_key

        return TableOp(client, "range", request.bucket, compose_key(request.hash_part),
                       partition_for(request.bucket, compose_key(request.hash_part)),
                       now_ms + self._timeout(request.timeout_ms), range=request)

    def _timeout(self, requested: int | None) -> int:
        if requested is None or requested <= 0:
            return self.limits.request_timeout_ms
        return min(requested, self.limits.request_timeout_ms_max)

    # ---- driving -----------------------------------------------------------------------------
    def _drive(self, op_id: int, op: TableOp, now_ms: int) -> list[Effect]:
        """Make progress: at the local leader, or by asking the leader."""
        op.retry_at_ms = None
        raft = self.logs.groups.get(op.partition)
        if op.kind == "read" and not op.consistent:
            return self._eventual_read(op_id, op, raft)
        if raft is not None and raft.is_leader():
            return self._at_leader(op_id, op, raft, now_ms)
        if (op.kind == "cas" and not op.remote_step and not op.attempts and raft is not None
                and self.logs.me in raft.members):
            # Optimistic: our replica trails the leader by about one message, so its value is
            # most likely the latest; the leader checks that it is (one round trip, not two).
            try:
                current = live_value(self.logs.store.get(op.bucket, op.key))
            except DynamoKVError as exc:
                return self._finish(op_id, _error(exc))
            op.optimistic = True
            return self._decide_remote(op_id, op, current, now_ms)
        target = op.leader_hint or (raft.leader if raft is not None else "")
        op.leader_hint = ""
        if not target or target == self.logs.me or target not in self.logs.node.up_nodes():
            target = self._guess_leader(op.partition, op.clueless)
        if not target:
            return self._later(op, now_ms)
        op.remote = target
        return [Send(target, self._remote_message(op_id, op))]

    def _guess_leader(self, partition: int, skip: tuple[str, ...] = ()) -> str:
        """The first replica that is up and not us, passing over ``skip`` unless it is all
        that is left."""
        up = self.logs.node.up_nodes()
        candidates = [n for n in self.logs.target(partition) if n != self.logs.me and n in up]
        return next((n for n in candidates if n not in skip), candidates[0] if candidates else "")

    def _later(self, op: TableOp, now_ms: int) -> list[Effect]:
        op.retry_at_ms = now_ms + RETRY_MS
        return []

    def _send_id(self, op_id: int, op: TableOp) -> int:
        """A fresh request id for ``op``'s next message: a late or duplicated reply to an
        earlier message can never pass for the answer to this one."""
        self._sends.pop(op.send_id, None)
        self._next_id += 1
        op.send_id = self._next_id
        self._sends[op.send_id] = op_id
        return op.send_id

    def _remote_message(self, op_id: int, op: TableOp) -> Message:
        send_id = self._send_id(op_id, op)
        if op.kind == "scan":
            sc = op.scan
            assert sc is not None
            return LogScan(send_id, sc.bucket, sc.partition, sc.after, sc.limit, sc.consistent)
        if op.kind == "range":
            r = op.range
            assert r is not None
            return LogRange(send_id, r.bucket, r.hash_part, r.start, r.end, r.reverse, r.limit)
        if op.kind == "read" or (op.kind == "cas" and op.remote_step != "write"):
            op.remote_step = "read"
            return LogRead(send_id, op.bucket, op.key, latest=op.kind == "cas")
        if op.kind == "cas":
            return LogWrite(send_id, op.bucket, op.key, op.value, True, op.old, flags=op.flags)
        return LogWrite(send_id, op.bucket, op.key, op.value, refuse_prefix=op.refuse_prefix,
                        flags=op.flags)

    def _eventual_read(self, op_id: int, op: TableOp, raft: RaftGroup | None) -> list[Effect]:
        if raft is not None and self.logs.me in raft.members:
            try:
                value = live_value(self.logs.store.get(op.bucket, op.key))
            except DynamoKVError as exc:
                return self._finish(op_id, _error(exc))
            return self._finish(op_id, CasResult(value, value))
        target = self._guess_leader(op.partition)
        if not target:
            return self._finish(op_id, _error(UnavailableError(
                "no replica of this item is up", {"partition": op.partition})))
        op.remote = target
        return [Send(target, LogRead(self._send_id(op_id, op), op.bucket, op.key,
                                     consistent=False))]

    def _at_leader(self, op_id: int, op: TableOp, raft: RaftGroup, now_ms: int
                   ) -> list[Effect]:
        if op.kind == "scan":  # the leader's applied state; under its lease if consistent
            assert op.scan is not None
            if op.scan.consistent and not raft.can_read(now_ms):
                return self._later(op, now_ms)
            try:
                return self._finish(op_id, self._read_now(op))
            except DynamoKVError as exc:
                return self._finish(op_id, _error(exc))
        if op.kind in ("read", "range"):
            if not raft.can_read(now_ms):
                return self._later(op, now_ms)
            try:
                return self._finish(op_id, self._read_now(op))
            except DynamoKVError as exc:
                return self._finish(op_id, _error(exc))
        if not raft.can_propose():
            return self._later(op, now_ms)
        try:
            old, source = self._latest_entry(raft, op.bucket, op.key)
        except DynamoKVError as exc:
            return self._finish(op_id, _error(exc))
        new = op.value
        if _refused(old, op.refuse_prefix):
            return self._after_settled(op_id, op, raft, source, WriteRefused(old))
        if op.kind == "cas":
            assert op.decide is not None
            try:
                new = op.decide(old)
            except Exception as exc:  # Abort and anything else decide raises: nothing written
                return self._after_settled(op_id, op, raft, source, CasAborted(exc))
        refusal = self.logs.refuse_write(raft.group, PUT | op.flags)
        if refusal is not None:
            return self._finish(op_id, _error(refusal))
        op.old, op.value = old, new
        index = raft.propose(PUT | op.flags, now_ms, op.bucket, op.key, new)
        op.waiting = (index, raft.term)
        self._waiters.setdefault((raft.group, index), []).append((raft.term, op_id))
        return self.logs._after(raft, now_ms)

    def _after_settled(self, op_id: int, op: TableOp, raft: RaftGroup,
                       source: LogEntry | None, answer: object) -> list[Effect]:
        """Answer a refusal now if the value it rests on is committed; else decide again once
        the entry that wrote that value is settled (it may yet be lost with our leadership,
        and then the value never existed)."""
        if source is None or not self._uncommitted(raft, source):
            return self._finish(op_id, answer)
        op.waiting, op.redrive = (source.index, source.term), True
        self._waiters.setdefault((raft.group, source.index), []).append((source.term, op_id))
        return []

    def _read_now(self, op: TableOp) -> object:
        store = self.logs.store
        if op.kind == "scan":
            sc = op.scan
            assert sc is not None
            rows, more = store.scan_bucket(sc.partition, sc.bucket, sc.after, max(1, sc.limit))
            items = [(k, v) for k, obj in rows if (v := live_value(obj)) is not None]
            return RangeResult(items, rows[-1][0] if more and rows else None)
        if op.kind == "range":
            r = op.range
            assert r is not None
            rows, more = store.scan_range(r.bucket, r.hash_part, r.start, r.end, r.reverse,
                                          max(1, r.limit))
            items = [(k, v) for k, obj in rows if (v := live_value(obj)) is not None]
            return RangeResult(items, rows[-1][0] if more and rows else None)
        value = live_value(store.get(op.bucket, op.key))
        return CasResult(value, value)

    def _latest_entry(self, raft: RaftGroup, bucket: str, key: bytes
                      ) -> tuple[bytes | None, LogEntry | None]:
        """The item as its newest log entry leaves it, committed or not, and that entry (None:
        the value is the applied state's)."""
        for entry in reversed(raft.log.entries):
            if entry.index <= raft.applied:
                break
            if is_put(entry.kind) and entry.key == key and entry.bucket == bucket:
                return entry.value, entry
        return live_value(self.logs.store.get(bucket, key)), None

    @staticmethod
    def _uncommitted(raft: RaftGroup, source: LogEntry) -> bool:
        return source.index > raft.commit

    def _answer_later(self, src: str, req_id: int, code: str, raft: RaftGroup,
                      source: LogEntry, bucket: str, key: bytes) -> list[Effect]:
        self._waiters.setdefault((raft.group, source.index), []).append(
            (source.term, RemoteAnswer(src, req_id, code, bucket, key)))
        return []

    # ---- completion --------------------------------------------------------------------------
    def _on_applied(self, group: int, entry: LogEntry) -> list[Effect]:
        effects: list[Effect] = []
        for term, waiter in self._waiters.pop((group, entry.index), ()):
            effects.extend(self._entry_settled(waiter, group, term == entry.term))
        return effects

    def _entry_settled(self, waiter: int | RemoteWait | RemoteAnswer, group: int,
                       committed: bool) -> list[Effect]:
        if isinstance(waiter, RemoteWait):
            code = OK if committed else RETRY
            return [Send(waiter.src, LogReply(waiter.req_id, code, waiter.old))]
        if isinstance(waiter, RemoteAnswer):
            if not committed:
                return [Send(waiter.src, LogReply(waiter.req_id, RETRY))]
            try:
                value = live_value(self.logs.store.get(waiter.bucket, waiter.key))
            except DynamoKVError as exc:
                return [Send(waiter.src, LogReply(waiter.req_id, exc.code, message=str(exc)))]
            return [Send(waiter.src, LogReply(waiter.req_id, waiter.code, value))]
        op = self.ops.get(waiter)
        if op is None or op.partition != group:
            return []
        op.waiting = None
        if op.redrive:  # the write our refusal rested on is settled: decide again
            op.redrive = False
            return self._later(op, 0)
        if committed:
            return self._finish(waiter, CasResult(op.old, op.value))
        return self._later(op, 0)  # our entry lost its place: never committed, so retry

    def _finish(self, op_id: int, result: object) -> list[Effect]:
        op = self.ops.pop(op_id, None)
        self.deadlines.cancel(op_id)
        if op is None:
            return []
        self._sends.pop(op.send_id, None)
        return [Reply(op.client, result)]

    # ---- replies from the leader -------------------------------------------------------------
    def on_reply(self, src: str, msg: LogReply, now_ms: int) -> list[Effect]:
        op_id = self._sends.get(msg.req_id, -1)
        op = self.ops.get(op_id)
        if op is None or op.send_id != msg.req_id or op.remote != src or op.waiting is not None:
            return []
        del self._sends[msg.req_id]
        op.send_id = 0
        op.remote = ""
        if msg.code == NOT_LEADER:
            op.leader_hint = msg.leader if msg.leader != src else ""
            op.last_answer = f"{src}: not the leader" + (
                f", the leader is {op.leader_hint}" if op.leader_hint else ", knows of none")
            if op.leader_hint:
                return self._drive(op_id, op, now_ms)
            op.clueless = (*op.clueless, src) if src not in op.clueless else ()
            return self._later(op, now_ms)
        if msg.code == RETRY:
            op.last_answer = f"{src}: leader without a valid lease yet, or no ring"
            return self._later(op, now_ms)
        if msg.code == REFUSED:
            return self._finish(op_id, WriteRefused(msg.value))
        if msg.code == CONDITION_FAILED and op.kind == "cas":
            return self._decide_remote(op_id, op, msg.value, now_ms)
        if msg.code:
            return self._finish(op_id, ErrorReply(0, msg.code, msg.message))
        if op.kind in ("range", "scan"):
            items = [(i.key, v) for i in msg.items if (v := live_value(i.obj)) is not None]
            last = msg.items[-1].key if msg.more and msg.items else None
            return self._finish(op_id, RangeResult(items, last))
        if op.kind == "read":
            return self._finish(op_id, CasResult(msg.value, msg.value))
        if op.kind == "cas" and op.remote_step == "read":
            return self._decide_remote(op_id, op, msg.value, now_ms)
        return self._finish(op_id, CasResult(op.old if op.kind == "cas" else msg.value,
                                                  op.value))

    def _decide_remote(self, op_id: int, op: TableOp, current: bytes | None, now_ms: int
                       ) -> list[Effect]:
        """Run ``decide`` here on what we believe is the latest value, then ask the leader to
        write its result only if that belief holds."""
        op.attempts += 1
        if op.attempts > DECIDE_ATTEMPTS_MAX:
            return self._finish(op_id, _error(UnavailableError(
                "the item kept changing under a conditional write; try again",
                {"attempts": op.attempts})))
        assert op.decide is not None
        try:
            new = op.decide(current)
        except Exception as exc:
            if op.optimistic:
                # A refusal must rest on the leader's value, not on our possibly stale one.
                op.optimistic, op.remote_step = False, ""
                return self._drive(op_id, op, now_ms)
            return self._finish(op_id, CasAborted(exc))
        op.optimistic = False
        op.old, op.value, op.remote_step = current, new, "write"
        return self._drive(op_id, op, now_ms)

    # ---- leader side -------------------------------------------------------------------------
    def on_request(self, src: str, msg: LogWrite | LogRead | LogRange | LogScan, now_ms: int
                   ) -> list[Effect]:
        ring = self.logs.node.ring
        if ring is None:
            return [Send(src, LogReply(msg.req_id, RETRY))]
        if isinstance(msg, LogScan):
            return self._remote_scan(src, msg, ring.q, now_ms)
        from dynamokv.core.hashing import compose_key

        key = compose_key(msg.hash_part) if isinstance(msg, LogRange) else msg.key
        partition = ring.partition_for(msg.bucket, key)
        raft = self.logs.groups.get(partition)
        if isinstance(msg, LogWrite) and (src, msg.req_id) in self._taken:
            return []  # a duplicate of a write we sequenced: its answer comes with the first
        try:
            if isinstance(msg, LogRead) and not msg.consistent:
                value = live_value(self.logs.store.get(msg.bucket, msg.key))
                return [Send(src, LogReply(msg.req_id, OK, value))]
            if raft is None or not raft.is_leader():
                hint = raft.leader if raft is not None else ""
                return [Send(src, LogReply(msg.req_id, NOT_LEADER, leader=hint))]
            if isinstance(msg, LogWrite):
                return self._remote_write(src, msg, raft, now_ms)
            if not raft.can_read(now_ms):
                return [Send(src, LogReply(msg.req_id, RETRY))]
            if isinstance(msg, LogRead):
                if not msg.latest:
                    value = live_value(self.logs.store.get(msg.bucket, msg.key))
                    return [Send(src, LogReply(msg.req_id, OK, value))]
                value, source = self._latest_entry(raft, msg.bucket, msg.key)
                if source is not None and self._uncommitted(raft, source):
                    # the coordinator may refuse on it: answer once it is committed
                    return self._answer_later(src, msg.req_id, OK, raft, source, msg.bucket,
                                              msg.key)
                return [Send(src, LogReply(msg.req_id, OK, value))]
            rows, more = self.logs.store.scan_range(msg.bucket, msg.hash_part, msg.start,
                                                    msg.end, msg.reverse,
                                                    max(1, min(msg.limit, 10_000)))
            return [Send(src, self._rows_reply(msg.req_id, msg.bucket, rows, more))]
        except DynamoKVError as exc:
            return [Send(src, LogReply(msg.req_id, exc.code, message=str(exc)))]

    def _remote_scan(self, src: str, msg: LogScan, q: int, now_ms: int) -> list[Effect]:
        raft = self.logs.groups.get(msg.partition) if 0 <= msg.partition < q else None
        if raft is None or not raft.is_leader():
            hint = raft.leader if raft is not None else ""
            return [Send(src, LogReply(msg.req_id, NOT_LEADER, leader=hint))]
        if msg.consistent and not raft.can_read(now_ms):
            return [Send(src, LogReply(msg.req_id, RETRY))]
        try:
            rows, more = self.logs.store.scan_bucket(msg.partition, msg.bucket, msg.after,
                                                     max(1, min(msg.limit, 10_000)))
        except (DynamoKVError, ValueError) as exc:
            return [Send(src, LogReply(msg.req_id, "InvalidRequest", message=str(exc)))]
        return [Send(src, self._rows_reply(msg.req_id, msg.bucket, rows, more))]

    def _rows_reply(self, req_id: int, bucket: str, rows: list[tuple[bytes, Any]], more: bool
                    ) -> LogReply:
        """Rows cut at the reply byte budget as well as by count (the coordinator pages on
        from the last key sent): large items must never overflow a frame."""
        kept = fit_by_bytes(rows, self.limits.reply_bytes_max,
                            lambda row: object_wire_bytes(bucket, *row))
        items = tuple(KeyObject(bucket, k, o) for k, o in rows[:kept])
        return LogReply(req_id, OK, items=items, more=more or kept < len(rows))

    def _remote_write(self, src: str, msg: LogWrite, raft: RaftGroup, now_ms: int
                      ) -> list[Effect]:
        if not raft.can_propose():
            return [Send(src, LogReply(msg.req_id, RETRY))]
        old, source = self._latest_entry(raft, msg.bucket, msg.key)
        failed = msg.conditional and old != msg.expected
        if (failed or _refused(old, msg.refuse_prefix)) and source is not None \
                and self._uncommitted(raft, source):
            # a refusal resting on a write that may yet be lost waits for it to commit
            return self._answer_later(src, msg.req_id, CONDITION_FAILED if failed else RETRY,
                                      raft, source, msg.bucket, msg.key)
        if failed:
            return [Send(src, LogReply(msg.req_id, CONDITION_FAILED, old))]
        if _refused(old, msg.refuse_prefix):
            return [Send(src, LogReply(msg.req_id, REFUSED, old))]
        refusal = self.logs.refuse_write(raft.group, PUT | _put_flags(msg.flags))
        if refusal is not None:
            return [Send(src, LogReply(msg.req_id, refusal.code, message=refusal.message))]
        index = raft.propose(PUT | _put_flags(msg.flags), now_ms, msg.bucket, msg.key,
                             msg.value)
        self._taken[(src, msg.req_id)] = None
        if len(self._taken) > TAKEN_KEPT:
            del self._taken[next(iter(self._taken))]
        self._waiters.setdefault((raft.group, index), []).append(
            (raft.term, RemoteWait(src, msg.req_id, old)))
        return self.logs._after(raft, now_ms)

    # ---- time --------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        times = [op.retry_at_ms for op in self.ops.values() if op.retry_at_ms is not None]
        nxt = self.deadlines.next()
        if nxt is not None:
            times.append(nxt)
        return min(times) if times else None

    def on_timer(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id in self.deadlines.pop_due(now_ms):
            op = self.ops.get(op_id)
            if op is None:
                continue
            outcome = "may or may not have been applied" if op.kind in ("write", "cas") \
                else "was not answered"
            last = f"; last answer from {op.last_answer}" if op.last_answer else ""
            effects.extend(self._finish(op_id, _error(RequestTimeout(
                f"the table request {outcome} in time (partition {op.partition} has no "
                f"reachable leader, or it lost its majority{last})",
                {"partition": op.partition, "leader": self._leader_name(op.partition)}))))
        for op_id, op in list(self.ops.items()):
            if op.retry_at_ms is not None and now_ms >= op.retry_at_ms:
                effects.extend(self._drive(op_id, op, now_ms))
        return effects

    def _leader_name(self, partition: int) -> str:
        raft = self.logs.groups.get(partition)
        return raft.leader if raft is not None else ""

    def on_peer_unreachable(self, node: str, now_ms: int) -> list[Effect]:
        """Reads waiting on an unreachable node's answer are sent again elsewhere. A write is
        not: the node may have sequenced it already, and applying it twice is not
        linearizable. It fails at once instead, saying its outcome is unknown, so the client
        retries now rather than at the deadline (an idempotent retry of a put is safe)."""
        effects: list[Effect] = []
        for op_id, op in list(self.ops.items()):
            if op.remote != node or op.waiting is not None:
                continue
            reading = op.kind in ("read", "range", "scan") or (op.kind == "cas"
                                                               and op.remote_step == "read")
            if reading:
                op.remote = ""
                op.retry_at_ms = now_ms + RETRY_MS
            else:
                effects.extend(self._finish(op_id, _error(RequestTimeout(
                    f"the leader of partition {op.partition} became unreachable; the write "
                    "may or may not have been applied", {"partition": op.partition,
                                                         "leader": node}))))
        return effects


def _refused(current: bytes | None, prefix: bytes) -> bool:
    return bool(prefix) and current is not None and current.startswith(prefix)


def _put_flags(flags: int) -> int:
    """Only the known flags of a peer's request (anything else would change the kind)."""
    return flags & (STREAMED | SERVICE | INDEXED)


def _error(exc: DynamoKVError) -> ErrorReply:
    return ErrorReply(0, exc.code, exc.message, exc.details)
