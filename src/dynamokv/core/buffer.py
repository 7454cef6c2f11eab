"""The object buffer (Dynamo paper, section 6.1): writes of chosen buckets kept in memory and
written to the engine in batches.

Owns: ``BufferSettings``, ``ObjectBuffer`` (an ``ObjectStore`` over the node's store).
May import: ``dynamokv.core.ports``, ``dynamokv.core.versioned``.

A write of a bucket with ``buffer`` on goes to an in-memory map and is acknowledged from there;
``flush()`` writes the whole map to the engine as one batch (one commit, one fsync under
``--sync fsync``) and empties it. The node flushes on its own timer every
``flush_interval_ms``, and ``put`` flushes at once when the map holds ``objects_max``
objects, so a buffered write is at most one interval or ``objects_max`` writes old. Reads look
in the map first.

Invariants:

- The map never holds a value older than the engine's: every write to the map is the merge of
  what a read through the map returned (the node's read-merge-write), ``make_durable`` and
  ``delete`` remove the key from the map as they reach the engine, and a flush writes
  everything. So for every key, the map's value descends the engine's (``sim`` checks it).
- Hints, replicated logs and buckets without ``buffer`` go straight to the
  engine; scans (handoff, anti-entropy, tables) flush first so they see every write.

The durability trade: a process crash loses the map. The coordinator of each put therefore
writes its own copy durably (``make_durable``: engine commit, then ``sync()``) before it
acknowledges or sends to the other replicas, so an acknowledged write is on stable storage on
at least one node even if every other replica loses power before its next flush.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dynamokv.core.ports import ObjectStore
from dynamokv.core.versioned import VersionedObject


@dataclass(frozen=True, slots=True)
class BufferSettings:
    objects_max: int = 1_000  # flush at once when the buffer holds this many objects
    flush_interval_ms: int = 100  # flush at least this often (the oldest write's age bound)


class ObjectBuffer:
    """``ObjectStore`` that keeps writes of buffered buckets in memory until a flush."""

    def __init__(self, inner: ObjectStore, settings: BufferSettings,
                 buffered: Callable[[str], bool]) -> None:
        self.inner = inner
        self.settings = settings
        self.buffered = buffered  # bucket -> whether its writes may wait in memory
        self.entries: dict[tuple[str, bytes], VersionedObject] = {}
        self.flushes = 0
        self.flushed_objects = 0
        self.durable_writes = 0

    # ---- the buffer's own operations ---------------------------------------------------------

    def flush(self) -> int:
        """Write every buffered object to the engine; how many. On a storage error the
        objects stay buffered (the next flush tries again)."""
        if not self.entries:
            return 0
        items = [(b, k, o) for (b, k), o in self.entries.items()]
        # One engine transaction when the store offers it (``NodeStore.put_objects``).
        batch = getattr(self.inner, "put_objects", None)
        if batch is not None:
            batch(items)
        else:
            for bucket, key, obj in items:
                self.inner.put(bucket, key, obj)
        self.entries.clear()
        self.flushes += 1
        self.flushed_objects += len(items)
        return len(items)

    def make_durable(self, bucket: str, key: bytes) -> None:
        """Move ``key``'s buffered value (if any) to the engine and sync the engine."""
        obj = self.entries.pop((bucket, key), None)
        if obj is not None:
            try:
                self.inner.put(bucket, key, obj)
            except Exception:
                self.entries[(bucket, key)] = obj  # keep it readable; the put fails loudly
                raise
        self.inner.sync()
        self.durable_writes += 1

    def buffered_items(self) -> list[tuple[str, bytes, VersionedObject]]:
        return [(b, k, o) for (b, k), o in self.entries.items()]

    # ---- ObjectStore: objects ------------------------------------------------------------------

    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        obj = self.entries.get((bucket, key))
        return obj if obj is not None else self.inner.get(bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        if not self.buffered(bucket):
            self.inner.put(bucket, key, obj)
            return
        self.entries[(bucket, key)] = obj
        if len(self.entries) >= self.settings.objects_max:
            self.flush()

    def delete(self, bucket: str, key: bytes) -> None:
        self.entries.pop((bucket, key), None)
        self.inner.delete(bucket, key)

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        self.flush()
        return self.inner.fold_partition(partition)

    def scan_partition(self, partition: int, after: tuple[str, bytes] | None, limit: int
                       ) -> list[tuple[str, bytes, VersionedObject]]:
        self.flush()
        return self.inner.scan_partition(partition, after, limit)

    def nonempty_partitions(self) -> list[int]:
        self.flush()
        return self.inner.nonempty_partitions()

    def sync(self) -> None:
        self.flush()
        self.inner.sync()

    # ---- ObjectStore: hints and tables pass straight through ---------------------

    def hint_counts(self) -> dict[str, int]:
        return self.inner.hint_counts()

    def get_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None:
        return self.inner.get_hint(target, bucket, key)

    def put_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        self.inner.put_hint(target, bucket, key, obj)

    def delete_hint(self, target: str, bucket: str, key: bytes) -> None:
        self.inner.delete_hint(target, bucket, key)

    def scan_hints(self, target: str, limit: int) -> list[tuple[str, bytes, VersionedObject]]:
        return self.inner.scan_hints(target, limit)

    def scan_range(self, bucket: str, hash_part: bytes, start: bytes | None, end: bytes | None,
                   reverse: bool, limit: int
                   ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        self.flush()
        return self.inner.scan_range(bucket, hash_part, start, end, reverse, limit)

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        self.flush()
        return self.inner.scan_bucket(partition, bucket, after, limit)

    def quarantined(self) -> dict[int, int]:
        return self.inner.quarantined()
