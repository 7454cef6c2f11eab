"""Anti-entropy trees kept current on every write, through a store wrapper.

Owns: ``TreeStore`` — an ``ObjectStore`` that forwards to the real store and updates the
partition's ``MerkleTree`` and its per-segment key digests on every put and delete, builds the
trees in bounded steps, and counts the keys deleted per partition (``forgotten``, which
``core.actors`` rotates actors on).
May import: ``dynamokv.core.{merkle,versioned,hashing,ports}``.

Trees live in memory only and are never persisted: a tree is derived from the store, so after a
restart (a clean stop or kill -9 alike) it is rebuilt from what the store holds and can never
claim data the store lacks, nor miss data it has (see docs/anti-entropy.md, "Start-up").
Building is paced: ``build_some`` reads at most a given number of stored records per call, so
the caller (``core.exchange``, on the background tick) bounds how long one call holds the event
loop, whatever the partition holds; foreground requests are served between steps, and an
exchange of a partition waits until its tree is complete. A write to a partition being built
goes into the tree if the scan has passed its key and is kept aside (``_Build.pending``) until
the scan ends otherwise, so the finished tree matches the store exactly, in any scan order.

Once built, a tree is kept current incrementally: a write costs one XOR at its leaf. Each key's
digest is kept per segment under the key's ``merkle.encode_key`` bytes (one bytes object per key
rather than a tuple of a str and a bytes): about 176 bytes per key in CPython.
"""

from __future__ import annotations

from collections.abc import Iterator

from dynamokv.core.hashing import RESERVED_BUCKET_PREFIX, key_partition
from dynamokv.core.merkle import MerkleTree, decode_key, encode_key
from dynamokv.core.ports import ObjectStore
from dynamokv.core.versioned import VersionedObject, object_digest

KeyId = tuple[str, bytes]


class PartitionTree:
    __slots__ = ("segments", "tree")

    def __init__(self) -> None:
        self.tree = MerkleTree()
        # segment -> encoded key -> digest; segments without keys have no entry.
        self.segments: dict[int, dict[bytes, bytes]] = {}

    def set(self, bucket: str, key: bytes, digest: bytes | None) -> None:
        self.set_encoded(encode_key(bucket, key), digest)

    def set_encoded(self, encoded: bytes, digest: bytes | None) -> None:
        """Record ``digest`` (``None``: absent) for the key of ``encode_key`` bytes ``encoded``."""
        segment = self.tree.segment_of_encoded(encoded)
        keys = self.segments.get(segment)
        old = None if keys is None else keys.get(encoded)
        if old == digest:
            return
        self.tree.update_encoded(encoded, old, digest, segment)
        if digest is None:
            assert keys is not None  # old != digest, so the key was held
            del keys[encoded]
            if not keys:
                del self.segments[segment]
        elif keys is None:
            self.segments[segment] = {encoded: digest}
        else:
            keys[encoded] = digest

    def holds(self, encoded: bytes) -> bool:
        keys = self.segments.get(self.tree.segment_of_encoded(encoded))
        return keys is not None and encoded in keys

    def keys_in(self, segments: list[int] | tuple[int, ...]) -> dict[KeyId, bytes]:
        out: dict[KeyId, bytes] = {}
        for segment in segments:
            for encoded, digest in self.segments.get(segment, {}).items():
                out[decode_key(encoded)] = digest
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


class _Build:
    """A tree being built: the scan's position and the writes it has not reached."""

    __slots__ = ("after", "pending", "tree")

    def __init__(self) -> None:
        self.tree = PartitionTree()
        self.after: tuple[str, bytes] | None = None  # the last stored record read
        # Writes, during the build, to keys the tree does not hold: the newest digest (None:
        # deleted). The scan skips these keys (it may have read them before or after the
        # write); they go into the tree when the scan ends.
        self.pending: dict[bytes, bytes | None] = {}

    def track(self, encoded: bytes, digest: bytes | None) -> None:
        if self.tree.holds(encoded):
            self.tree.set_encoded(encoded, digest)  # the scan read it already: keep it current
        else:
            self.pending[encoded] = digest

    def finish(self) -> PartitionTree:
        for encoded, digest in self.pending.items():
            if digest is not None:
                self.tree.set_encoded(encoded, digest)
        self.pending.clear()
        return self.tree


class TreeStore:
    """The node's ``ObjectStore``, with Merkle trees of the partitions it has built."""

    def __init__(self, inner: ObjectStore, q: int) -> None:
        self.inner = inner
        self.q = q
        self.trees: dict[int, PartitionTree] = {}  # complete trees only
        self.building: dict[int, _Build] = {}
        # Keys deleted per partition in this process: a coordinator's local copy no longer
        # remembers every dot its actor issued once a key was deleted (``core.actors``).
        self._forgotten: dict[int, int] = {}

    # ---- tracking ------------------------------------------------------------------------------
    def build(self, partition: int) -> int:
        """(Re)build ``partition``'s tree from the store in one go; the number of keys."""
        self.drop_tree(partition)
        while partition not in self.trees:
            self.build_some(partition, 1 << 16)
        return self.trees[partition].key_count()

    def build_some(self, partition: int, budget: int) -> int:
        """Advance ``partition``'s build by reading at most ``budget`` stored records; the
        number read. The tree appears in ``trees`` once the scan reaches the partition's end.
        Raises ``StorageError``; the build then resumes where it stopped on the next call."""
        build = self.building.get(partition)
        if build is None:
            build = self.building[partition] = _Build()
        limit = max(1, budget)
        quarantined = sum(self.inner.quarantined().values())
        # The inner store's scan, not ours: ours reads on past records of the partition logs
        # until it has ``limit`` Dynamo records, which would not bound the step.
        rows = self.inner.scan_partition(partition, build.after, limit)
        for bucket, key, obj in rows:
            if bucket.startswith(RESERVED_BUCKET_PREFIX):
                continue
            encoded = encode_key(bucket, key)
            if encoded not in build.pending:
                build.tree.set_encoded(encoded, object_digest(obj))
        if rows:
            build.after = _past(rows[-1][0], rows[-1][1])  # table items: one seek past
        # A short scan is the end of the partition, unless it quarantined records (they are
        # moved out of the range, so the next call reads on after them).
        if len(rows) < limit and sum(self.inner.quarantined().values()) == quarantined:
            del self.building[partition]
            self.trees[partition] = build.finish()
        return max(1, len(rows))

    def forgotten(self, partition: int) -> int:
        """How many keys of ``partition`` this process deleted or quarantined so far."""
        return self._forgotten.get(partition, 0) + self.inner.quarantined().get(partition, 0)

    def quarantined(self) -> dict[int, int]:
        return self.inner.quarantined()

    def drop_tree(self, partition: int) -> None:
        self.trees.pop(partition, None)
        self.building.pop(partition, None)

    def _track(self, bucket: str, key: bytes, obj: VersionedObject | None) -> None:
        if bucket.startswith(RESERVED_BUCKET_PREFIX):
            return  # items of the partition logs: never in a tree (see ``fold_partition``)
        partition = key_partition(bucket, key, self.q)
        tree = self.trees.get(partition)
        if tree is not None:
            tree.set(bucket, key, None if obj is None else object_digest(obj))
            return
        build = self.building.get(partition)
        if build is not None:
            build.track(encode_key(bucket, key), None if obj is None else object_digest(obj))

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

