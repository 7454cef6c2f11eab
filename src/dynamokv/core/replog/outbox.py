"""The index outbox of table partitions: a durable record of every applied write whose global
secondary indexes are still to be brought up to date, kept on every replica.

Owns: ``IndexOutbox`` — the change-feed consumer that writes an ``OutboxRecord`` (log index,
bucket, key, old and new image) for every applied put entry flagged ``INDEXED``, keyed by
partition and log index (so a replay after a restart rewrites the same record); trims records
when an ``INDEXED_THROUGH`` entry applies; holds compaction and snapshot bases below the first
record still pending; refuses new indexed writes of a partition whose backlog passed
``BACKLOG_MAX`` entries (back-pressure); and answers the local requests of the node's
DynamoDB API, which does the index writes (``OutboxPoll`` -> ``OutboxBatch``,
``OutboxDone``). ``OutboxStore`` is the persistence port.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Who indexes. Only the node that leads a partition's log is handed its records (in log order);
when it has written the index entries through index ``i`` it asks for an ``INDEXED_THROUGH i``
entry, proposed only if it still leads in the term it was handed the records in. Every replica
trims its records through ``i`` as it applies that entry. A new leader starts from the trimmed
mark, so records of an old leader's unfinished batch are processed again (the API's upkeep is
idempotent). Compaction never passes the first pending record, and a snapshot's base is held
the same way, so a replica that catches up from a snapshot replays (and records) every entry
that is not yet indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dynamokv.core.effects import Effect, Log, Reply
from dynamokv.core.messages import ErrorReply, LogEntry
from dynamokv.core.replog.groups import Change, PartitionLogs
from dynamokv.core.replog.log import INDEXED, INDEXED_THROUGH, is_put
from dynamokv.errors import DynamoKVError, Overloaded

BACKLOG_MAX = 20_000  # log entries between the trimmed mark and the newest record, per partition
POLL_MAX = 1_000  # records handed out per poll at most
SWEEP_EVERY_MS = 5_000  # how often records of partitions this node left are dropped


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One applied write of an indexed table (images are the stored values; ``None``: absent)."""

    index: int
    bucket: str
    key: bytes
    old: bytes | None
    new: bytes | None


@dataclass(frozen=True, slots=True)
class OutboxPoll:
    """Local request: records of the partitions this node leads. ``after``: (partition, term,
    index) the caller has processed already in that term (records up to it are skipped)."""

    after: tuple[tuple[int, int, int], ...] = ()
    limit: int = POLL_MAX


@dataclass(frozen=True, slots=True)
class OutboxPart:
    """Pending records of one partition in log order; ``through``: the batch covers every
    entry up to it (mark it done when all its records are indexed)."""

    partition: int
    term: int
    through: int
    records: tuple[OutboxRecord, ...]


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    parts: tuple[OutboxPart, ...]


@dataclass(frozen=True, slots=True)
class OutboxDone:
    """Local request: the caller indexed every entry of ``partition`` through ``through``,
    handed out in ``term``. Answered with ``OutboxAck``."""

    partition: int
    term: int
    through: int


@dataclass(frozen=True, slots=True)
class OutboxAck:
    proposed: bool  # False: no longer the leader in that term (the next leader redoes it)


@runtime_checkable
class OutboxStore(Protocol):
    def put_outbox_record(self, group: int, record: OutboxRecord) -> None: ...

    def scan_outbox(self, group: int, after: int, limit: int) -> list[OutboxRecord]: ...

    def last_outbox_index(self, group: int) -> int: ...

    def trim_outbox(self, group: int, through: int) -> None:
        """Delete records ``<= through`` and remember the mark."""
        ...

    def outbox_trimmed(self, group: int) -> int: ...

    def outbox_groups(self) -> list[int]: ...

    def drop_outbox(self, group: int) -> None:
        """Delete every record and the mark."""
        ...


class IndexOutbox:
    def __init__(self, logs: PartitionLogs, store: object) -> None:
        self.logs = logs
        self.store: OutboxStore | None = store if isinstance(store, OutboxStore) else None
        self._trimmed: dict[int, int] = {}  # cache of the store's trim marks
        self._last: dict[int, int] = {}  # newest record index per group (cache)
        self._first: dict[int, int] = {}  # first pending record index per group (cache)
        self._sweep_at = 0
        self.recorded = 0
        self.record_failures = 0
        self.marks_proposed = 0
        self.refused = 0
        if self.store is not None:
            logs.feed_listeners.append(self._on_change)
            logs.applied_hooks.append(self._on_applied)
            logs.compaction_holds.append(self.hold)
            logs.snapshot_hooks.append(self._on_snapshot)
            logs.write_gates.append(self._gate)

    # ---- the marks ---------------------------------------------------------------------------
    def trimmed(self, group: int) -> int:
        assert self.store is not None
        found = self._trimmed.get(group)
        if found is None:
            found = self._trimmed[group] = self.store.outbox_trimmed(group)
        return found

    def last(self, group: int) -> int:
        assert self.store is not None
        found = self._last.get(group)
        if found is None:
            found = self._last[group] = self.store.last_outbox_index(group)
        return found

    def first(self, group: int) -> int | None:
        """The index of the first pending record (None: none)."""
        assert self.store is not None
        if self.last(group) <= self.trimmed(group):
            return None
        found = self._first.get(group)
        if found is None:
            rows = self.store.scan_outbox(group, self.trimmed(group), 1)
            if not rows:
                return None
            found = self._first[group] = rows[0].index
        return found

    def backlog(self, group: int) -> int:
        """Log entries from the first pending record to the newest one (0: none pending)."""
        first = self.first(group)
        return 0 if first is None else self.last(group) - first + 1

    def _forget(self, group: int) -> None:
        for cache in (self._trimmed, self._last, self._first):
            cache.pop(group, None)

    def _trim(self, group: int, through: int) -> None:
        assert self.store is not None
        if through <= self.trimmed(group):
            return
        self.store.trim_outbox(group, through)
        self._trimmed[group] = through
        self._first.pop(group, None)

    # ---- writing -----------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        """Record an indexed write as it applies. A failure propagates: the entry is then
        applied again later (never applied without its record)."""
        if not change.kind & INDEXED or self.store is None:
            return
        if change.index <= self.trimmed(change.partition):
            return  # a replay of an entry indexed already
        if change.index <= self.last(change.partition):
            # A replay after a restart applies the entry over a newer state: the record made
            # when it first applied has the true old image, so it is kept.
            found = self.store.scan_outbox(change.partition, change.index - 1, 1)
            if found and found[0].index == change.index:
                return
        try:
            self.store.put_outbox_record(change.partition, OutboxRecord(
                change.index, change.bucket, change.key, change.old, change.new))
        except DynamoKVError:
            self.record_failures += 1
            raise
        self.recorded += 1
        self._last[change.partition] = max(self.last(change.partition), change.index)

    def _on_applied(self, group: int, entry: LogEntry) -> list[Effect]:
        if entry.kind != INDEXED_THROUGH:
            return []
        try:
            self._trim(group, int.from_bytes(entry.key, "big"))
        except DynamoKVError as exc:  # kept: the next mark trims them
            return [Log("warning", "trimming the index outbox failed",
                        {"group": group, "error": f"{exc.code}: {exc}"})]
        return []

    def _on_snapshot(self, group: int, base: int) -> None:
        """A snapshot replaced the group's state through ``base``: its leader had indexed
        everything through there (the base is held below its first pending record); what
        follows is replayed from the log, and recorded again."""
        assert self.store is not None
        self._forget(group)
        try:
            self.store.drop_outbox(group)
            self.store.trim_outbox(group, base)
        except DynamoKVError:
            pass  # the marks are read again from the store when next needed

    # ---- holds and back-pressure -------------------------------------------------------------
    def hold(self, group: int) -> int | None:
        """The highest base a compaction or snapshot of ``group`` may have: just before its
        first pending record (None: no record pending)."""
        if self.store is None:
            return None
        first = self.first(group)
        return None if first is None else first - 1

    def _gate(self, group: int, kind: int) -> DynamoKVError | None:
        if not (is_put(kind) and kind & INDEXED) or self.store is None:
            return None
        backlog = self.backlog(group)
        if backlog <= BACKLOG_MAX:
            return None
        self.refused += 1
        return Overloaded("the global secondary indexes of this partition are behind; "
                          "retry the write later", {"partition": group, "backlog": backlog})

    # ---- the API's requests ------------------------------------------------------------------
    def on_request(self, client: int, request: OutboxPoll | OutboxDone, now_ms: int
                   ) -> list[Effect]:
        try:
            if isinstance(request, OutboxPoll):
                return [Reply(client, self._poll(request))]
            effects: list[Effect] = [Reply(client, OutboxAck(self._done(request, now_ms)))]
        except DynamoKVError as exc:
            return [Reply(client, ErrorReply(0, exc.code, exc.message, exc.details))]
        raft = self.logs.groups.get(request.partition)
        if raft is not None:
            effects.extend(self.logs._after(raft, now_ms))  # send the mark on its way
        return effects

    def _poll(self, request: OutboxPoll) -> OutboxBatch:
        if self.store is None:
            return OutboxBatch(())
        after = {p: (term, index) for p, term, index in request.after}
        room = max(1, min(request.limit, POLL_MAX))
        parts: list[OutboxPart] = []
        for group in sorted(self.logs.groups):
            raft = self.logs.groups[group]
            if not raft.is_leader() or self.backlog(group) == 0 or room <= 0:
                continue
            start = self.trimmed(group)
            seen = after.get(group)
            if seen is not None and seen[0] == raft.term:
                start = max(start, seen[1])
            records = self.store.scan_outbox(group, start, room)
            if not records:
                continue
            room -= len(records)
            full = room <= 0
            through = records[-1].index if full else max(records[-1].index, raft.applied)
            parts.append(OutboxPart(group, raft.term, through, tuple(records)))
        return OutboxBatch(tuple(parts))

    def _done(self, request: OutboxDone, now_ms: int) -> bool:
        raft = self.logs.groups.get(request.partition)
        if (raft is None or not raft.is_leader() or raft.term != request.term
                or not raft.can_propose()):
            return False
        if request.through <= self.trimmed(request.partition):
            return True
        raft.propose(INDEXED_THROUGH, now_ms, key=request.through.to_bytes(8, "big"))
        self.marks_proposed += 1
        return True

    # ---- time --------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        return self._sweep_at if self.store is not None else None

    def on_timer(self, now_ms: int) -> list[Effect]:
        """Drop the records (and mark) of partitions this node no longer replicates: if it
        replicates one again, it records from the log it is sent."""
        if self.store is None or now_ms < self._sweep_at:
            return []
        self._sweep_at = now_ms + SWEEP_EVERY_MS
        try:
            for group in self.store.outbox_groups():
                if group not in self.logs.groups:
                    self.store.drop_outbox(group)
                    self._forget(group)
        except DynamoKVError as exc:
            return [Log("warning", "dropping index outbox records failed; retrying later",
                        {"error": f"{exc.code}: {exc}"})]
        return []

    def status(self) -> dict[str, object]:
        pending = 0
        if self.store is not None:
            pending = sum(self.backlog(g) for g in self.logs.groups)
        return {"recorded": self.recorded, "record_failures": self.record_failures,
                "marks_proposed": self.marks_proposed, "refused_writes": self.refused,
                "backlog_entries": pending}


__all__ = ["BACKLOG_MAX", "IndexOutbox", "OutboxAck", "OutboxBatch", "OutboxDone",
           "OutboxPart", "OutboxPoll", "OutboxRecord", "OutboxStore"]
