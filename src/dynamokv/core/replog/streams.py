"""Stream records of table partitions: written on every replica as entries apply, read back.

Owns: ``StreamRecords`` — the change-feed consumer that keeps a record of every applied put
entry flagged ``STREAMED`` (keyed by partition and log index, so every replica that applied the
entry holds the same record), its retention (24 hours, at most ``CAP_PER_PARTITION`` records per
partition), and reads of records for the DynamoDB Streams API: served from this node's copy
when it replicates the partition, otherwise forwarded to a replica (``StreamFetch``), each with
the partition's shard lineage as of the same applied state. As a group's leader it also rolls
the partition's shard (``replog.shards``): when the group's membership changed (a ring move)
and every ``roll_every_ms`` (if the shard holds a record), by proposing the new lineage as a
log entry.
``StreamStore`` is the persistence port (``messages.StreamRecord`` is one record).
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

The wall-clock time of a record is the applying replica's clock (``wall_ms`` as the node last
saw it), so replicas may differ in it by their clock skew; everything else is a function of
the entry. A replica that caught up from a snapshot holds records from its snapshot's base on.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dynamokv.core.deadlines import Deadlines
from dynamokv.core.effects import Effect, Log, Reply, Send
from dynamokv.core.messages import ErrorReply, StreamFetch, StreamFetchReply, StreamRecord
from dynamokv.core.replog.groups import Change, PartitionLogs, live_value
from dynamokv.core.replog.log import PUT, SERVICE, STREAMED
from dynamokv.core.replog.raft import RaftGroup
from dynamokv.core.replog.shards import (
    ROLL_EVERY_MS,
    SHARDS_BUCKET,
    Lineage,
    lineage_key,
    roll_due,
    rolled,
)
from dynamokv.core.requests import StreamRead, StreamResult
from dynamokv.errors import DynamoKVError, RequestTimeout, UnavailableError

RETENTION_MS = 24 * 3600 * 1000
CAP_PER_PARTITION = 100_000  # records; the oldest beyond it are trimmed
TRIM_EVERY_MS = 1_000
TRIM_BATCH = 2_000  # records deleted per partition per pass at most (about)
TRIM_CHUNK = 64  # records read at a time while trimming
SCAN_MAX = 1_000  # records examined per read
ID_BASE = 5 << 40  # request ids of forwarded stream reads
READ_TIMEOUT_MS = 5_000


@runtime_checkable
class StreamStore(Protocol):
    def put_stream_record(self, group: int, record: StreamRecord) -> None: ...

    def scan_stream(self, group: int, after: int, limit: int) -> list[StreamRecord]: ...

    def last_stream_index(self, group: int) -> int: ...

    def trim_stream(self, group: int, through: int) -> None: ...

    def stream_trimmed(self, group: int) -> int: ...

    def stream_groups(self) -> list[int]: ...


class StreamRecords:
    def __init__(self, logs: PartitionLogs, store: object, id_offset: int,
                 roll_every_ms: int = ROLL_EVERY_MS) -> None:
        self.logs = logs
        self.roll_every_ms = roll_every_ms
        self._lineages: dict[int, Lineage] = {}  # group -> its applied lineage (a cache)
        self.rolls = 0
        self.store: StreamStore | None = store if isinstance(store, StreamStore) else None
        self.wall_ms = 0  # the node's wall clock as of the event being handled
        self._trim_at = 0
        self._next_id = ID_BASE + id_offset
        self._waiting: dict[int, int] = {}  # request id -> local client
        self.deadlines = Deadlines()
        self.recorded = 0
        self.record_failures = 0
        if self.store is not None:
            logs.feed_listeners.append(self._on_change)
            logs.snapshot_hooks.append(self._on_snapshot)

    # ---- writing -----------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        if change.bucket == SHARDS_BUCKET:
            self._lineages[change.partition] = _decoded(change.new)
            return
        if not change.kind & STREAMED or self.store is None:
            return
        record = StreamRecord(change.index, change.bucket, change.key, change.old, change.new,
                              self.wall_ms, bool(change.kind & SERVICE))
        try:
            self.store.put_stream_record(change.partition, record)
            self.recorded += 1
        except DynamoKVError:
            self.record_failures += 1  # counted in status; the item itself was applied

    def _on_snapshot(self, group: int, base: int) -> None:
        self._lineages.pop(group, None)  # the snapshot brought the lineage item: read it anew
        if self.store is None:
            return
        # Our records now start after the snapshot's base. Records we kept from an earlier
        # stay in the group would leave a silent gap before it: they go, and the trim mark
        # says where our copy starts (reads from before it are asked of another replica).
        try:
            if self.store.stream_trimmed(group) < base:
                self.store.trim_stream(group, base)
        except DynamoKVError:
            self.record_failures += 1

    # ---- retention ---------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        return self._trim_at if self.store is not None else None

    def on_timer(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for op_id in self.deadlines.pop_due(now_ms):
            client = self._waiting.pop(op_id, None)
            if client is not None:
                exc = RequestTimeout("no replica answered the stream read in time")
                effects.append(Reply(client, ErrorReply(0, exc.code, exc.message)))
        if self.store is None or now_ms < self._trim_at:
            return effects
        self._trim_at = now_ms + TRIM_EVERY_MS
        groups: list[int] = []
        try:
            groups = self.store.stream_groups()
            for group in groups:
                self._trim(group)
        except DynamoKVError as exc:
            effects.append(Log("warning", "trimming stream records failed; retrying later",
                               {"error": f"{exc.code}: {exc}"}))
        # Only partitions that ever held a stream record have shards to roll.
        for group in sorted(set(groups) & set(self.logs.groups)):
            try:
                effects.extend(self._roll(self.logs.groups[group], now_ms))
            except DynamoKVError as exc:
                effects.append(Log("warning", "rolling a stream shard failed; retrying later",
                                   {"group": group, "error": f"{exc.code}: {exc}"}))
        return effects

    # ---- shards ------------------------------------------------------------------------------
    def lineage(self, group: int) -> Lineage:
        """The shard lineage of ``group`` as this replica applied it."""
        known = self._lineages.get(group)
        if known is None:
            ring = self.logs.node.ring
            if ring is None:
                return Lineage()
            obj = self.logs.store.get(SHARDS_BUCKET, lineage_key(group, ring.q))
            known = self._lineages[group] = _decoded(live_value(obj))
        return known

    def _roll(self, raft: RaftGroup, now_ms: int) -> list[Effect]:
        """As the group's leader, propose the next lineage when a roll is due. One roll at a
        time: none while an earlier one or a membership change is not yet applied."""
        ring = self.logs.node.ring
        if (ring is None or self.store is None or not raft.can_propose()
                or raft.commit < raft.term_start_index or raft.log.config_index > raft.applied):
            return []
        if any(e.bucket == SHARDS_BUCKET for e in raft.log.entries if e.index > raft.applied):
            return []
        lineage = self.lineage(raft.group)
        last_record = self.store.last_stream_index(raft.group)
        reason = roll_due(lineage, raft.log.config_index, self.wall_ms, self.roll_every_ms,
                          last_record)
        if not reason or (reason == "genesis" and last_record == 0):
            return []  # all its records were trimmed: none to put in a shard yet
        at = raft.log.last_index + 1
        new = rolled(lineage, reason, at, self.wall_ms, RETENTION_MS)
        raft.propose(PUT, now_ms, SHARDS_BUCKET, lineage_key(raft.group, ring.q), new.encode())
        self.rolls += 1
        effects: list[Effect] = [Log("info", "stream shard rolled",
                                     {"group": raft.group, "reason": reason, "at": at})]
        effects.extend(self.logs._after(raft, now_ms))
        return effects

    def _trim(self, group: int) -> None:
        """Drop records older than the retention period or beyond the cap (oldest first),
        and every record of a partition this node no longer replicates."""
        assert self.store is not None
        raft = self.logs.groups.get(group)
        last = self.store.last_stream_index(group)
        if raft is None:
            self._lineages.pop(group, None)
            if last > 0:
                self.store.trim_stream(group, last)
            return
        trimmed = through = self.store.stream_trimmed(group)
        oldest_kept = self.wall_ms - RETENTION_MS
        while through - trimmed < TRIM_BATCH:
            chunk = self.store.scan_stream(group, through, TRIM_CHUNK)
            for record in chunk:
                if record.wall_ms >= oldest_kept and record.index > last - CAP_PER_PARTITION:
                    chunk = []  # the oldest record stays, and so does every later one
                    break
                through = record.index
            if len(chunk) < TRIM_CHUNK:
                break
        if through > trimmed:
            self.store.trim_stream(group, through)

    # ---- reading -----------------------------------------------------------------------------
    def read_local(self, group: int, bucket: str, after: int, limit: int
                   ) -> tuple[int, int, int, list[StreamRecord]]:
        """(trimmed through, last applied index, last index examined, records of ``bucket``
        after ``after``, at most ``limit``)."""
        assert self.store is not None
        raft = self.logs.groups.get(group)
        applied = raft.applied if raft is not None else 0
        trimmed = self.store.stream_trimmed(group)
        records: list[StreamRecord] = []
        scanned = max(after, trimmed)
        if limit <= 0:
            return trimmed, applied, scanned, records
        rows = self.store.scan_stream(group, scanned, SCAN_MAX)
        for record in rows:
            scanned = record.index
            if record.bucket == bucket:
                records.append(record)
                if len(records) >= limit:
                    return trimmed, applied, scanned, records
        if len(rows) < SCAN_MAX:
            # Every entry up to ``applied`` was recorded when it applied: nothing is left
            # before it, so the next read may start there.
            scanned = max(scanned, applied)
        return trimmed, applied, scanned, records

    def replicates(self, group: int) -> bool:
        raft = self.logs.groups.get(group)
        return raft is not None and self.logs.me in raft.members

    def start_read(self, client: int, request: StreamRead, now_ms: int) -> list[Effect]:
        ring = self.logs.node.ring
        if ring is None or self.store is None or not 0 <= request.partition < ring.q:
            exc = UnavailableError("stream records are not available on this node")
            return [Reply(client, ErrorReply(0, exc.code, exc.message))]
        target = ""
        if self.replicates(request.partition):
            if not self._before_our_copy(request):
                return [Reply(client, self._local_result(request))]
            target = self._other_replica(request.partition)
            if not target:
                return [Reply(client, self._local_result(request))]
        target = target or self._replica(request.partition)
        if not target:
            exc = UnavailableError("no replica of this shard is up",
                                   {"partition": request.partition})
            return [Reply(client, ErrorReply(0, exc.code, exc.message, exc.details))]
        self._next_id += 1
        self._waiting[self._next_id] = client
        self.deadlines.set(self._next_id, now_ms + READ_TIMEOUT_MS)
        return [Send(target, StreamFetch(self._next_id, request.partition, request.bucket,
                                         request.after, request.limit))]

    def _local_result(self, request: StreamRead) -> object:
        try:
            trimmed, applied, scanned, records = self.read_local(
                request.partition, request.bucket, request.after, request.limit)
            shards = self.lineage(request.partition).encode()
        except DynamoKVError as exc:
            return ErrorReply(0, exc.code, exc.message)
        return StreamResult(trimmed, applied, scanned, records, shards)

    def _before_our_copy(self, request: StreamRead) -> bool:
        """The read starts before this node's records do (it caught up from a snapshot, or
        trimmed): another replica may still hold them."""
        try:
            return request.after < self.store.stream_trimmed(request.partition)  # type: ignore[union-attr]
        except DynamoKVError:
            return True

    def _other_replica(self, group: int) -> str:
        """A replica other than us that is up: the leader if it is one, else the first."""
        up = self.logs.node.up_nodes() - {self.logs.me}
        raft = self.logs.groups.get(group)
        if raft is not None and raft.leader in up and raft.leader in raft.members:
            return raft.leader
        members = raft.members if raft is not None else self.logs.target(group)
        return next((node for node in members if node in up), "")

    def _replica(self, group: int) -> str:
        """The partition's log leader when known and up, else any replica that is up."""
        up = self.logs.node.up_nodes()
        raft = self.logs.groups.get(group)
        if raft is not None and raft.leader and raft.leader in up:
            return raft.leader
        for node in self.logs.target(group):
            if node != self.logs.me and node in up:
                return node
        return ""

    def on_fetch(self, src: str, msg: StreamFetch) -> list[Effect]:
        if self.store is None or not self.replicates(msg.group):
            return [Send(src, StreamFetchReply(msg.req_id, "NotReplica",
                                               "this node does not replicate the shard"))]
        try:
            trimmed, applied, scanned, records = self.read_local(
                msg.group, msg.bucket, msg.after, max(0, min(msg.limit, SCAN_MAX)))
            shards = self.lineage(msg.group).encode()
        except DynamoKVError as exc:
            return [Send(src, StreamFetchReply(msg.req_id, exc.code, exc.message))]
        return [Send(src, StreamFetchReply(msg.req_id, "", "", trimmed, applied, scanned,
                                           tuple(records), shards))]

    def on_fetch_reply(self, msg: StreamFetchReply) -> list[Effect]:
        client = self._waiting.pop(msg.req_id, None)
        self.deadlines.cancel(msg.req_id)
        if client is None:
            return []
        if msg.code:
            code = msg.code if msg.code != "NotReplica" else UnavailableError.code
            return [Reply(client, ErrorReply(0, code, msg.message))]
        return [Reply(client, StreamResult(msg.trimmed, msg.last, msg.scanned,
                                           list(msg.records), msg.shards))]

    def status(self) -> dict[str, object]:
        return {"recorded": self.recorded, "record_failures": self.record_failures,
                "reads_waiting": len(self._waiting), "shard_rolls": self.rolls}


def _decoded(raw: bytes | None) -> Lineage:
    """A stored lineage; a malformed one reads as none (the next roll writes it anew)."""
    try:
        return Lineage.decode(raw)
    except ValueError:
        return Lineage()
