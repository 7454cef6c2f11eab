"""The one port through which the core touches storage.

Owns: ``ObjectStore``, the protocol the core uses to read and write versioned objects.
May import: ``dynamokv.core.versioned``.

Why a synchronous port instead of storage effects (ARCHITECTURE open decision 3): every store we
ship answers in microseconds from memory or an mmap'd B-tree (LMDB), so a round trip through the
driver per read would cost more than the read. The simulator still sees every storage call,
because it supplies the store (``sim.disk``) and can fail it or drop unsynced writes on a crash.
Implementation: ``dynamokv.storage.node_store.NodeStore`` over any storage engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from dynamokv.core.versioned import VersionedObject


class ObjectStore(Protocol):
    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        """The stored object, or ``None``. Raises ``StorageError`` on engine failure."""
        ...

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        """Store ``obj`` (replacing what was there). Raises ``StorageError`` on failure."""
        ...

    def delete(self, bucket: str, key: bytes) -> None:
        """Forget ``key`` entirely (after handing it off; not a tombstone)."""
        ...

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        """Every object of ``partition`` in key order (for handoff and anti-entropy)."""
        ...

    def scan_partition(
        self, partition: int, after: tuple[str, bytes] | None, limit: int
    ) -> list[tuple[str, bytes, VersionedObject]]:
        """Up to ``limit`` objects of ``partition`` in key order, strictly after ``after``."""
        ...

    def nonempty_partitions(self) -> list[int]:
        """Partitions holding at least one object."""
        ...

    def quarantined(self) -> dict[int, int]:
        """Records the scans above moved aside because they could not be decoded, per partition
        (-1: hints), since this store was opened. A scan skips such a record instead of
        failing, and the key then reads as absent."""
        ...

    # Hints: writes a fallback accepted for a down node, kept apart from its own objects.
    def hint_counts(self) -> dict[str, int]: ...

    def get_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None: ...

    def put_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None: ...

    def delete_hint(self, target: str, bucket: str, key: bytes) -> None: ...

    def scan_hints(self, target: str, limit: int) -> list[tuple[str, bytes, VersionedObject]]: ...

    def sync(self) -> None:
        """Make every write so far durable (the engine's strongest setting)."""
        ...

    # Tables: ordered reads within one partition key.
    def scan_range(self, bucket: str, hash_part: bytes, start: bytes | None, end: bytes | None,
                   reverse: bool, limit: int
                   ) -> tuple[list[tuple[bytes, VersionedObject]], bool]: ...

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]: ...


