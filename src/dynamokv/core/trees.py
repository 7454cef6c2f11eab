"""Anti-entropy trees kept current on every write, through a store wrapper.

Owns: ``TreeStore`` — an ``ObjectStore`` that forwards to the real store and updates the
partition's ``MerkleTree`` and its per-segment key digests on every put and delete, and counts
the keys deleted per partition (``forgotten``, which ``core.actors`` rotates actors on).
May import: ``dynamokv.core.{merkle,versioned,hashing,ports}``.

Trees are built once per partition (a fold of the partition, paced by the caller) and then kept
current incrementally: a write costs one XOR at its leaf. Until a partition's tree is built,
writes to it are not tracked (the build reads the store, which has them). Trees and the key
digest index live in memory: about 100 bytes per key, rebuilt after a restart (a design choice
recorded in docs/anti-entropy.md; riak persists its trees in leveldb instead).
"""

from __future__ import annotations

from collections.abc import Iterator

from dynamokv.core.hashing import RESERVED_BUCKET_PREFIX, key_partition
from dynamokv.core.merkle import MerkleTree
from dynamokv.core.ports import ObjectStore
from dynamokv.core.versioned import VersionedObject, object_digest

KeyId = tuple[str, bytes]


class PartitionTree:
    __slots__ = ("segments", "tree")

    def __init__(self) -> None:
        self.tree = MerkleTree()
        self.segments: dict[int, dict[KeyId, bytes]] = {}

    def set(self, bucket: str, key: bytes, digest: bytes | None) -> None:
        segment = self.tree.segment_of(bucket, key)
        keys = self.segments.setdefault(segment, {})
        old = keys.get((bucket, key))
        if old == digest:
            return
        self.tree.update(bucket, key, old, digest)
        if digest is None:
            keys.pop((bucket, key), None)
            if not keys:
                del self.segments[segment]
        else:
            keys[(bucket, key)] = digest

    def keys_in(self, segments: list[int] | tuple[int, ...]) -> dict[KeyId, bytes]:
        out: dict[KeyId, bytes] = {}
        for segment in segments:
            out.update(self.segments.get(segment, {}))
        return out

    def key_count(self) -> int:
        return sum(len(k) for k in self.segments.values())


# Every key a reserved bucket (a table's partition-log items) holds in practice sorts below
# this one; a scan that meets such a bucket resumes here instead of reading each of its items.
_BUCKET_END = b"\xff" * 64


def _past(bucket: str, key: bytes) -> tuple[str, bytes]:
    """Where a scan that just read ``(bucket, key)`` resumes: past the rest of a reserved
    bucket in one seek (its rows are skipped anyway; a key above ``_BUCKET_END`` is simply met
    and skipped), else right after the key. Without this, ``nonempty_partitions`` read every
    item of every table, one scan each (a stall of ~1 s per 10,000 items, every handoff check)."""
    if bucket.startswith(RESERVED_BUCKET_PREFIX) and key < _BUCKET_END:
        return bucket, _BUCKET_END
    return bucket, key


class TreeStore:
    """The node's ``ObjectStore``, with Merkle trees of the partitions it has built."""

    def __init__(self, inner: ObjectStore, q: int) -> None:
        self.inner = inner
        self.q = q
        self.trees: dict[int, PartitionTree] = {}
        # Keys deleted per partition in this process: a coordinator's local copy no longer
        # remembers every dot its actor issued once a key was deleted (``core.actors``).
        self._forgotten: dict[int, int] = {}

    # ---- tracking ------------------------------------------------------------------------------
    def build(self, partition: int) -> int:
        """(Re)build ``partition``'s tree from the store; the number of keys."""
        tree = PartitionTree()
        for bucket, key, obj in self.fold_partition(partition):
            tree.set(bucket, key, object_digest(obj))
        self.trees[partition] = tree
        return tree.key_count()

    def forgotten(self, partition: int) -> int:
        """How many keys of ``partition`` this process deleted or quarantined so far."""
        return self._forgotten.get(partition, 0) + self.inner.quarantined().get(partition, 0)

    def quarantined(self) -> dict[int, int]:
        return self.inner.quarantined()

    def drop_tree(self, partition: int) -> None:
        self.trees.pop(partition, None)

    def _track(self, bucket: str, key: bytes, obj: VersionedObject | None) -> None:
        tree = self.trees.get(key_partition(bucket, key, self.q))
        if tree is not None:
            tree.set(bucket, key, None if obj is None else object_digest(obj))

    # ---- ObjectStore ---------------------------------------------------------------------------
    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        return self.inner.get(bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        self.inner.put(bucket, key, obj)
        self._track(bucket, key, obj)

    def delete(self, bucket: str, key: bytes) -> None:
        partition = key_partition(bucket, key, self.q)
        self._forgotten[partition] = self._forgotten.get(partition, 0) + 1
        self.inner.delete(bucket, key)
        self._track(bucket, key, None)

    # The Dynamo machinery (handoff, anti-entropy, leaving) sees Dynamo buckets only: items of
    # tables and the system catalog belong to the partition logs (``core.replog``), which
    # replicate, repair and move them themselves.
    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        return ((b, k, o) for b, k, o in self.inner.fold_partition(partition)
                if not b.startswith(RESERVED_BUCKET_PREFIX))

    def scan_partition(self, partition: int, after: tuple[str, bytes] | None, limit: int
                       ) -> list[tuple[str, bytes, VersionedObject]]:
        out: list[tuple[str, bytes, VersionedObject]] = []
        while len(out) < limit:
            rows = self.inner.scan_partition(partition, after, limit)
            out.extend(r for r in rows if not r[0].startswith(RESERVED_BUCKET_PREFIX))
            if len(rows) < limit:
                break
            after = _past(rows[-1][0], rows[-1][1])
        return out[:limit]

    def nonempty_partitions(self) -> list[int]:
        return [p for p in self.inner.nonempty_partitions() if self.scan_partition(p, None, 1)]

    def sync(self) -> None:
        self.inner.sync()

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
        return self.inner.scan_range(bucket, hash_part, start, end, reverse, limit)

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        return self.inner.scan_bucket(partition, bucket, after, limit)

