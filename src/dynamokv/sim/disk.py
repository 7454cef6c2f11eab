"""A node's simulated disk: its object store and ring file, with injected faults.

Owns: ``SimDisk`` (an ``ObjectStore`` over ``storage.memory`` that survives the node's crashes),
``DiskFaults``, ``PutObserver``.
May import: stdlib, ``dynamokv.core.*``, ``dynamokv.storage.memory``, ``dynamokv.storage.objects``,
``dynamokv.errors``.

A crash drops the ``NodeCore`` (all in-memory state); the ``SimDisk`` stays, and the restarted
core is built from it, so it plays the part of the node's data directory: objects, the last
persisted ring (``PersistRing``) and the incarnation that names the node's version-vector actor.

Faults:

- ``storage_fault``: a read or write raises ``StorageError`` before touching anything, as a
  failing disk would; the core must turn it into an error reply, never a crash.
- Unsynced-write loss (hook, off today): with ``loses_unsynced`` every write since the last
  ``sync()`` is kept in an undo log and rolled back on ``crash()``. The core does not call
  ``sync()`` yet (every write counts as synced), so it stays off until the write path syncs.
- ``lie_every``: a deliberate bug (``--bug lying-disk``) for testing the checkers: every
  ``lie_every``-th write is silently skipped while reporting success.

Every successful write is reported to ``observer`` (the checkers' disk log), which is how the
checkers learn the dot each write was given without any help from the core.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dynamokv.core.ring import Ring
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import StorageError
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.objects import EngineObjectStore

PutObserver = Callable[[str, str, bytes, VersionedObject], None]
"""Called as ``observer(node_id, bucket, key, obj)`` after every write that reached the disk."""


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
        self.incarnation = incarnation
        self.faults = faults
        self.observer = observer
        self.ring_record: RingRecord | None = None
        self.store = EngineObjectStore(MemoryEngine(), q)
        self.reads = 0
        self.writes = 0
        self.failed = 0
        self.lied = 0
        self._rng = rng
        # (bucket, key, object before the write) for every write since the last sync.
        self._undo: list[tuple[str, bytes, VersionedObject | None]] = []

    # ---- ObjectStore -------------------------------------------------------------------------

    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        self.reads += 1
        self._maybe_fail("read", bucket, key)
        return self.store.get(bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        self.writes += 1
        self._maybe_fail("write", bucket, key)
        lie = self.faults.lie_every
        if lie and self.writes % lie == 0:
            self.lied += 1
            return  # the injected bug: report success, write nothing
        if self.faults.loses_unsynced:
            self._undo.append((bucket, key, self.store.get(bucket, key)))
        self.store.put(bucket, key, obj)
        if self.observer is not None:
            self.observer(self.node_id, bucket, key, obj)

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        return self.store.fold_partition(partition)

    def sync(self) -> None:
        self.store.sync()
        self._undo.clear()

    # ---- the data directory's other files ------------------------------------------------------

    def persist_ring(self, ring: Ring, buckets: dict[str, dict[str, Any]], version: int) -> None:
        self.ring_record = RingRecord(ring, dict(buckets), version)

    # ---- faults ------------------------------------------------------------------------------

    def crash(self) -> int:
        """The node lost power: drop unsynced writes if the disk loses them. How many were lost."""
        lost = len(self._undo)
        for bucket, key, before in reversed(self._undo):
            if before is None:
                self.store.delete(bucket, key)
            else:
                self.store.put(bucket, key, before)
        self._undo.clear()
        return lost

    def peek(self, bucket: str, key: bytes) -> VersionedObject | None:
        """Read without faults or counting: for the checkers, which sit outside the system."""
        return self.store.get(bucket, key)

    def objects(self) -> Iterator[tuple[str, bytes, VersionedObject]]:
        """Every stored object, partition by partition (for the checkers)."""
        for partition in range(self.store.q):
            yield from self.store.fold_partition(partition)

    def _maybe_fail(self, op: str, bucket: str, key: bytes) -> None:
        p = self.faults.storage_fault
        if p and self._rng.random() < p:
            self.failed += 1
            raise StorageError(f"simulated {op} fault on {self.node_id} for {bucket}/{key!r}")
