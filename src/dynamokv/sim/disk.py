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
- Unsynced-write loss (hook, off today): with ``loses_unsynced`` every write since the last
  ``sync()`` is kept in an undo log and rolled back on ``crash()``. The core does not call
  ``sync()`` yet (every write counts as synced), so it stays off until the write path syncs.
- ``lie_every``: a deliberate bug (``--bug lying-disk``) for testing the checkers: every
  ``lie_every``-th object or hint write is silently skipped while reporting success.

Every successful object or hint write is reported to ``observer`` (the checkers' disk log),
which is how the checkers learn the dot each write was given without any help from the core.
Paxos acceptor state and table scans pass straight through (no faults yet).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dynamokv.core.paxos import AcceptorState
from dynamokv.core.ring import Ring
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import StorageError
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

PutObserver = Callable[[str, str, bytes, VersionedObject], None]
"""Called as ``observer(node_id, bucket, key, obj)`` after every write that reached the disk
(hints included: a hint holds the same siblings as the object it stands in for)."""

# (target node for a hint or "" for an object, bucket, key, what was there before the write)
_Undo = tuple[str, str, bytes, VersionedObject | None]


@dataclass(frozen=True, slots=True)
class DiskFaults:
    storage_fault: float = 0.0
    lie_every: int = 0
    loses_unsynced: bool = False


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
        self._undo: list[_Undo] = []  # every write since the last sync, oldest first

    # ---- ObjectStore: objects ------------------------------------------------------------------

    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        self._read_fault("read", bucket, key)
        return self.store.get(bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        if self._write_fault_or_lie("write", bucket, key):
            return
        self._remember("", bucket, key)
        self.store.put(bucket, key, obj)
        if self.observer is not None:
            self.observer(self.node_id, bucket, key, obj)

    def delete(self, bucket: str, key: bytes) -> None:
        self._remember("", bucket, key)
        self.store.delete(bucket, key)

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        return self.store.fold_partition(partition)

    def scan_partition(
        self, partition: int, after: tuple[str, bytes] | None, limit: int
    ) -> list[tuple[str, bytes, VersionedObject]]:
        return self.store.scan_partition(partition, after, limit)

    def nonempty_partitions(self) -> list[int]:
        return self.store.nonempty_partitions()

    # ---- ObjectStore: hints --------------------------------------------------------------------

    def hint_counts(self) -> dict[str, int]:
        return self.store.hint_counts()

    def get_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None:
        self._read_fault("hint read", bucket, key)
        return self.store.get_hint(target, bucket, key)

    def put_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        if self._write_fault_or_lie("hint write", bucket, key):
            return
        self._remember(target, bucket, key)
        self.store.put_hint(target, bucket, key, obj)
        if self.observer is not None:
            self.observer(self.node_id, bucket, key, obj)

    def delete_hint(self, target: str, bucket: str, key: bytes) -> None:
        self._remember(target, bucket, key)
        self.store.delete_hint(target, bucket, key)

    def scan_hints(self, target: str, limit: int) -> list[tuple[str, bytes, VersionedObject]]:
        return self.store.scan_hints(target, limit)

    def sync(self) -> None:
        self.store.sync()
        self._undo.clear()

    # ---- ObjectStore: tables and per-key Paxos state -------------------------------------------

    def scan_range(self, bucket: str, hash_part: bytes, start: bytes | None, end: bytes | None,
                   reverse: bool, limit: int
                   ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        return self.store.scan_range(bucket, hash_part, start, end, reverse, limit)

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        return self.store.scan_bucket(partition, bucket, after, limit)

    def get_paxos(self, bucket: str, key: bytes) -> AcceptorState | None:
        return self.store.get_paxos(bucket, key)

    def put_paxos(self, bucket: str, key: bytes, state: AcceptorState) -> None:
        self.store.put_paxos(bucket, key, state)

    # ---- the data directory's other files ------------------------------------------------------

    def persist_ring(self, ring: Ring, buckets: dict[str, dict[str, Any]], version: int) -> None:
        self.ring_record = RingRecord(ring, dict(buckets), version)

    # ---- faults ------------------------------------------------------------------------------

    def crash(self) -> int:
        """The node lost power: roll back unsynced writes if the disk loses them, and drop the
        store object's in-memory caches (a restart opens the engine afresh). How many were lost.
        """
        lost = len(self._undo)
        for target, bucket, key, before in reversed(self._undo):
            if target and before is None:
                self.store.delete_hint(target, bucket, key)
            elif target:
                assert before is not None
                self.store.put_hint(target, bucket, key, before)
            elif before is None:
                self.store.delete(bucket, key)
            else:
                self.store.put(bucket, key, before)
        self._undo.clear()
        self.store = NodeStore(self._engine, self.q)
        return lost

    def _remember(self, target: str, bucket: str, key: bytes) -> None:
        if self.faults.loses_unsynced:
            before = (self.store.get_hint(target, bucket, key) if target
                      else self.store.get(bucket, key))
            self._undo.append((target, bucket, key, before))

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

    def objects(self) -> Iterator[tuple[str, bytes, VersionedObject]]:
        """Every stored object, partition by partition."""
        for partition in range(self.q):
            yield from self.store.fold_partition(partition)

    def hints(self) -> dict[str, int]:
        """Hints still held, per target node."""
        return self.store.hint_counts()
