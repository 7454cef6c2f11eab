"""A node's simulated disk: its object store and ring file, with injected faults.

Owns: ``SimDisk`` (an ``ObjectStore`` over ``storage.memory`` that survives the node's crashes),
``DiskFaults``, ``PutObserver``.
May import: stdlib, ``dynamokv.core.*``, ``dynamokv.storage.memory``,
``dynamokv.storage.node_store`` (the production ``ObjectStore``), ``dynamokv.errors``.

A crash drops the ``NodeCore`` (all in-memory state) and the ``NodeStore`` object with its caches;
the engine's data stays, and the restarted core is built over a fresh ``NodeStore`` on it. So
the disk plays the part of the node's data directory: objects, hints, the last persisted ring
(``PersistRing``) and the incarnation that names the node's version-vector actor.

Faults:

- ``storage_fault``: an object or hint read or write raises ``StorageError`` before touching
  anything, as a failing disk would; the core must turn it into an error reply, never a crash.
  (Scans and deletes never fail: the port does not promise ``StorageError`` handling there.)
- Unsynced-write loss (``loses_unsynced``): the production engines acknowledge a write once it
  reached the OS (``engine_sync = "os"``), which survives the death of the process but not of
  the machine. The OS writes dirty data back ``flush_ms`` after it was written (or at once on
  ``sync()``), so every write younger than that is kept in an undo log (objects and hints
  acceptor state alike: they share one engine) and rolled back by ``crash(lose_unsynced=True)``,
  the power loss. A process crash (``lose_unsynced=False``) loses nothing. The ring and
  incarnation files are written atomically with fsync in production, so they always survive.
- ``lie_every``: a deliberate bug (``--bug lying-disk``) for testing the checkers: every
  ``lie_every``-th object or hint write is silently skipped while reporting success.

Every successful object or hint write is reported to ``observer`` (the checkers' disk log),
which is how the checkers learn the dot each write was given without any help from the core.
Table scans pass straight through (no faults).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dynamokv.core.messages import LogEntry
from dynamokv.core.replog.log import HardState
from dynamokv.core.replog.outbox import OutboxRecord
from dynamokv.core.ring import Ring
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import StorageError
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

PutObserver = Callable[[str, str, bytes, VersionedObject], None]
"""Called as ``observer(node_id, bucket, key, obj)`` after every write that reached the disk
(hints included: a hint holds the same siblings as the object it stands in for)."""

Before = VersionedObject | None


@dataclass(frozen=True, slots=True)
class Unsynced:
    """One write the OS has not flushed yet: what a power loss would roll back."""

    at_ms: int
    kind: str  # "object" or "hint"
    target: str  # the hint's target node ("" otherwise)
    bucket: str
    key: bytes
    before: Before  # what the engine held before the write


@dataclass(frozen=True, slots=True)
class DiskFaults:
    storage_fault: float = 0.0
    lie_every: int = 0
    loses_unsynced: bool = False
    flush_ms: int = 0  # writes this young are unflushed; 0: only sync() flushes


@dataclass(frozen=True, slots=True)
class RingRecord:
    ring: Ring
    buckets: dict[str, dict[str, Any]]
    buckets_version: int


class SimDisk:
    """``core.ports.ObjectStore`` for one simulated node; outlives the node's crashes."""

    def __init__(
        self,
        node_id: str,
        q: int,
        incarnation: str,
        rng: random.Random,
        faults: DiskFaults,
        observer: PutObserver | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.node_id = node_id
        self.q = q
        self.incarnation = incarnation
        self.faults = faults
        self.observer = observer
        self.ring_record: RingRecord | None = None
        self._engine = MemoryEngine()
        self.store = NodeStore(self._engine, q)
        self.reads = 0
        self.writes = 0
        self.failed = 0
        self.lied = 0
        self._rng = rng
        self._clock = clock or (lambda: 0)
        self._undo: list[Unsynced] = []  # every write not flushed yet, oldest first

    # ---- ObjectStore: objects ------------------------------------------------------------------

    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        self._read_fault("read", bucket, key)
        return self.store.get(bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        if self._write_fault_or_lie("write", bucket, key):
            return
        self._remember("object", "", bucket, key)
        self.store.put(bucket, key, obj)
        if self.observer is not None:
            self.observer(self.node_id, bucket, key, obj)

    def delete(self, bucket: str, key: bytes) -> None:
        self._remember("object", "", bucket, key)
        self.store.delete(bucket, key)

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        return self.store.fold_partition(partition)

    def scan_partition(
        self, partition: int, after: tuple[str, bytes] | None, limit: int
    ) -> list[tuple[str, bytes, VersionedObject]]:
        return self.store.scan_partition(partition, after, limit)

    def nonempty_partitions(self) -> list[int]:
        return self.store.nonempty_partitions()

    def quarantined(self) -> dict[int, int]:
        return self.store.quarantined()

    # ---- ObjectStore: hints --------------------------------------------------------------------

    def hint_counts(self) -> dict[str, int]:
        return self.store.hint_counts()

    def get_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None:
        self._read_fault("hint read", bucket, key)
        return self.store.get_hint(target, bucket, key)

    def put_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        if self._write_fault_or_lie("hint write", bucket, key):
            return
        self._remember("hint", target, bucket, key)
        self.store.put_hint(target, bucket, key, obj)
        if self.observer is not None:
            self.observer(self.node_id, bucket, key, obj)

    def delete_hint(self, target: str, bucket: str, key: bytes) -> None:
        self._remember("hint", target, bucket, key)
        self.store.delete_hint(target, bucket, key)

    def scan_hints(self, target: str, limit: int) -> list[tuple[str, bytes, VersionedObject]]:
        return self.store.scan_hints(target, limit)

    def sync(self) -> None:
        self.store.sync()
        self._undo.clear()

    # ---- ObjectStore: tables -------------------------------------------

    def scan_range(self, bucket: str, hash_part: bytes, start: bytes | None, end: bytes | None,
                   reverse: bool, limit: int
                   ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        return self.store.scan_range(bucket, hash_part, start, end, reverse, limit)

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        return self.store.scan_bucket(partition, bucket, after, limit)

    # ---- ObjectStore: replication logs (made durable by the core's sync when power loss is on)

    def load_log(self, group: int) -> tuple[HardState | None, list[LogEntry]]:
        return self.store.load_log(group)

    def log_groups(self) -> list[int]:
        return self.store.log_groups()

    def save_hard_state(self, group: int, state: HardState) -> None:
        self.store.save_hard_state(group, state)

    def append_log(self, group: int, entries: Sequence[LogEntry]) -> None:
        self.store.append_log(group, entries)

    def truncate_log(self, group: int, from_index: int) -> None:
        self.store.truncate_log(group, from_index)

    def compact_log(self, group: int, through_index: int) -> None:
        self.store.compact_log(group, through_index)

    def drop_log(self, group: int) -> None:
        self.store.drop_log(group)

    # ---- the index outbox (``core.replog.outbox``), kept like the logs: never rolled back;
    # what a power loss takes from the applied items is recorded again as the log replays.

    def put_outbox_record(self, group: int, record: OutboxRecord) -> None:
        self.store.put_outbox_record(group, record)

    def scan_outbox(self, group: int, after: int, limit: int) -> list[OutboxRecord]:
        return self.store.scan_outbox(group, after, limit)

    def last_outbox_index(self, group: int) -> int:
        return self.store.last_outbox_index(group)

    def trim_outbox(self, group: int, through: int) -> None:
        self.store.trim_outbox(group, through)

    def outbox_trimmed(self, group: int) -> int:
        return self.store.outbox_trimmed(group)

    def outbox_groups(self) -> list[int]:
        return self.store.outbox_groups()

    def drop_outbox(self, group: int) -> None:
        self.store.drop_outbox(group)

    # ---- the data directory's other files ------------------------------------------------------

    def persist_ring(self, ring: Ring, buckets: dict[str, dict[str, Any]], version: int) -> None:
        self.ring_record = RingRecord(ring, dict(buckets), version)

    # ---- faults ------------------------------------------------------------------------------

    def crash(self, lose_unsynced: bool = False) -> int:
        """The node's process died (``lose_unsynced``: the machine lost power). Roll back the
        unflushed writes on a power loss if this disk loses them, and drop the store object's
        in-memory caches (a restart opens the engine afresh). How many writes were lost.
        """
        lost = self.unsynced() if lose_unsynced and self.faults.loses_unsynced else []
        for entry in reversed(lost):
            self._restore(entry)
        if lost:
            self._undo.clear()
            # As production does after an unclean stop (runtime/persist.py): a new incarnation,
            # so the restarted node cannot re-issue counters the lost writes had used (KV679).
            self.incarnation = f"{self.incarnation}+"
        self.store = NodeStore(self._engine, self.q)
        return len(lost)

    def unsynced(self) -> list[Unsynced]:
        """The writes a power loss now would roll back, oldest first."""
        self._expire()
        return list(self._undo)

    def _restore(self, entry: Unsynced) -> None:
        before, bucket, key = entry.before, entry.bucket, entry.key
        assert before is None or isinstance(before, VersionedObject)
        if entry.kind == "hint":
            if before is None:
                self.store.delete_hint(entry.target, bucket, key)
            else:
                self.store.put_hint(entry.target, bucket, key, before)
        elif before is None:
            self.store.delete(bucket, key)
        else:
            self.store.put(bucket, key, before)

    def _expire(self) -> None:
        """Forget the writes the OS has flushed by now (older than ``flush_ms``)."""
        flush = self.faults.flush_ms
        if not flush or not self._undo:
            return
        horizon = self._clock() - flush
        keep = 0
        while keep < len(self._undo) and self._undo[keep].at_ms <= horizon:
            keep += 1
        if keep:
            del self._undo[:keep]

    def _remember(self, kind: str, target: str, bucket: str, key: bytes) -> None:
        if not self.faults.loses_unsynced:
            return
        before: Before
        if kind == "hint":
            before = self.store.get_hint(target, bucket, key)
        else:
            before = self.store.get(bucket, key)
        self._expire()
        self._undo.append(Unsynced(self._clock(), kind, target, bucket, key, before))

    def _read_fault(self, op: str, bucket: str, key: bytes) -> None:
        self.reads += 1
        p = self.faults.storage_fault
        if p and self._rng.random() < p:
            self.failed += 1
            raise StorageError(f"simulated {op} fault on {self.node_id} for {bucket}/{key!r}")

    def _write_fault_or_lie(self, op: str, bucket: str, key: bytes) -> bool:
        """Raise a simulated fault, or return True when the injected bug skips this write."""
        self.writes += 1
        p = self.faults.storage_fault
        if p and self._rng.random() < p:
            self.failed += 1
            raise StorageError(f"simulated {op} fault on {self.node_id} for {bucket}/{key!r}")
        lie = self.faults.lie_every
        if lie and self.writes % lie == 0:
            self.lied += 1
            return True  # the injected bug: report success, write nothing
        return False

    # ---- for the checkers, which sit outside the system -----------------------------------------

    def peek(self, bucket: str, key: bytes) -> VersionedObject | None:
        """Read without faults or counting."""
        return self.store.get(bucket, key)

    def peek_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None:
        return self.store.get_hint(target, bucket, key)

    def objects(self) -> Iterator[tuple[str, bytes, VersionedObject]]:
        """Every stored object, partition by partition."""
        for partition in range(self.q):
            yield from self.store.fold_partition(partition)

    def hints(self) -> dict[str, int]:
        """Hints still held, per target node."""
        return self.store.hint_counts()
