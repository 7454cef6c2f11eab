"""Versioned objects over any storage engine: the ``ObjectStore`` the core reads and writes.

Owns: ``EngineObjectStore`` and the storage key layout of objects.
May import: ``dynamokv.core`` (hashing, versioned, ports), ``dynamokv.wire.codec``,
``dynamokv.storage.base``, ``dynamokv.errors``.

Key layout::

    partition (2 bytes, big-endian) | len(bucket) (1 byte) | bucket (utf-8) | key

Records that cannot be decoded are moved aside when a scan meets them (*quarantined*) rather than
failing the scan: one corrupt record must not stop handoff, anti-entropy or hint replay of
everything else. They are kept, byte for byte, under ``QUARANTINE_PREFIX | storage key`` for the
operator, and counted per partition (``quarantined()``); the key then reads as absent here, and
anti-entropy brings it back from the other replicas.

The partition comes first so that one partition is one contiguous key range (handoff and
anti-entropy fold a partition with a single range scan, and dropping a handed-off partition is a
range delete); the length-prefixed bucket comes next so that one bucket inside a partition is
contiguous too and no bucket name can be a prefix-collision of another. Values are
``dynamokv.wire.codec.encode_object`` bytes, so the on-disk format is the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dynamokv.core.hashing import is_power_of_two, key_partition
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import DynamoKVError, InvalidRequest, StorageError
from dynamokv.storage.base import StorageEngine
from dynamokv.wire.codec import decode_object, encode_object

PARTITION_BYTES = 2
QUARANTINE_PREFIX = b"\xff\xffQ"  # partition prefixes stay below 0x1000: no overlap
MAX_PARTITIONS = 1 << (8 * PARTITION_BYTES)
BUCKET_NAME_BYTES_MAX = 255  # what the 1-byte length prefix can say

# Keys deleted per write batch when dropping a partition: bounds the size of one transaction.
_DROP_BATCH = 1024

# Storage keys remembered per store (see ``EngineObjectStore.storage_key``), and the longest key
# worth remembering: together they bound the cache to a few MiB at most.
_KEY_CACHE_MAX = 4096
_KEY_CACHE_KEY_BYTES_MAX = 512


def partition_prefix(partition: int) -> bytes:
    return partition.to_bytes(PARTITION_BYTES, "big")


def partition_range(partition: int) -> tuple[bytes, bytes | None]:
    """``[start, end)`` of ``partition``'s storage keys (``end`` None for the last one)."""
    nxt = partition + 1
    return partition_prefix(partition), (partition_prefix(nxt) if nxt < MAX_PARTITIONS else None)


def encode_storage_key(partition: int, bucket: str, key: bytes) -> bytes:
    name = bucket.encode()
    if len(name) > BUCKET_NAME_BYTES_MAX:
        raise InvalidRequest(
            f"bucket name is {len(name)} bytes in utf-8; the limit is {BUCKET_NAME_BYTES_MAX}",
            {"limit": BUCKET_NAME_BYTES_MAX},
        )
    return partition_prefix(partition) + bytes((len(name),)) + name + key


def decode_storage_key(stored: bytes) -> tuple[int, str, bytes]:
    """``(partition, bucket, key)`` of a storage key; ``StorageError`` if it is malformed."""
    head = PARTITION_BYTES + 1
    if len(stored) < head or len(stored) < head + stored[PARTITION_BYTES]:
        raise StorageError(f"malformed storage key {stored[:40]!r}: the data files are corrupt")
    size = stored[PARTITION_BYTES]
    try:
        bucket = stored[head : head + size].decode()
    except UnicodeDecodeError as exc:
        raise StorageError(
            f"storage key {stored[:40]!r} has a bucket name that is not utf-8: "
            "the data files are corrupt"
        ) from exc
    return int.from_bytes(stored[:PARTITION_BYTES], "big"), bucket, stored[head + size :]


class EngineObjectStore:
    """``core.ports.ObjectStore`` over a ``StorageEngine``, on a ring of ``q`` partitions."""

    def __init__(self, engine: StorageEngine, q: int) -> None:
        if not is_power_of_two(q) or q > MAX_PARTITIONS:
            raise ValueError(f"q={q} must be a power of two no larger than {MAX_PARTITIONS}")
        self.engine = engine
        self.q = q
        self._keys: dict[tuple[str, bytes], bytes] = {}
        self._quarantined: dict[int, int] = {}  # partition (-1: hints) -> records, this process

    def storage_key(self, bucket: str, key: bytes) -> bytes:
        """Where ``key`` of ``bucket`` is stored: its partition, then the bucket, then the key.

        The partition costs a SHA-1 of the key, and a write reads the key before it writes it
        (the merge of ``sync``), so recent keys are remembered: the second lookup of a request
        is a dict hit. The cache is cleared when full, which is cheaper than tracking recency
        and, with the skewed key popularity of real workloads, refills with the hot keys at once.
        """
        if type(key) is not bytes or len(key) > _KEY_CACHE_KEY_BYTES_MAX:
            return encode_storage_key(key_partition(bucket, key, self.q), bucket, key)
        cache = self._keys
        ident = (bucket, key)
        skey = cache.get(ident)
        if skey is None:
            skey = encode_storage_key(key_partition(bucket, key, self.q), bucket, key)
            if len(cache) >= _KEY_CACHE_MAX:
                cache.clear()
            cache[ident] = skey
        return skey

    # get, put and delete are every request's path: they catch engine errors inline rather
    # than through ``_engine_errors``, whose generator costs more than the LMDB call itself.
    def get(self, bucket: str, key: bytes) -> VersionedObject | None:
        skey = self.storage_key(bucket, key)
        try:
            raw = self.engine.get(skey)
        except DynamoKVError:
            raise
        except Exception as exc:
            raise _storage_error("get", exc) from exc
        return None if raw is None else _decode(raw, bucket, key)

    def put(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        skey = self.storage_key(bucket, key)
        data = encode_object(obj)
        try:
            self.engine.put(skey, data)
        except DynamoKVError:
            raise
        except Exception as exc:
            raise _storage_error("put", exc) from exc

    def delete(self, bucket: str, key: bytes) -> None:
        """Forget ``key`` entirely (not a tombstone: used after reaping or handoff)."""
        skey = self.storage_key(bucket, key)
        try:
            self.engine.delete(skey)
        except DynamoKVError:
            raise
        except Exception as exc:
            raise _storage_error("delete", exc) from exc

    def fold_partition(self, partition: int) -> Iterator[tuple[str, bytes, VersionedObject]]:
        self._check_partition(partition)
        start, end = partition_range(partition)
        bad: list[tuple[bytes, bytes]] = []
        with _engine_errors("fold"):
            for skey, raw in self.engine.scan(start, end):
                row = decoded_row(skey, raw)
                if row is None:
                    bad.append((skey, raw))
                else:
                    yield row
        self.quarantine(partition, bad)

    def quarantined(self) -> dict[int, int]:
        """Records moved aside by this store object because they could not be decoded, per
        partition (-1 for hints)."""
        return dict(self._quarantined)

    def quarantine(self, partition: int, rows: list[tuple[bytes, bytes]]) -> None:
        """Move undecodable records ``(storage key, raw)`` aside, atomically, and count them."""
        if not rows:
            return
        ops: list[tuple[bytes, bytes | None]] = []
        for skey, raw in rows:
            ops += [(QUARANTINE_PREFIX + skey, raw), (skey, None)]
        with _engine_errors("quarantine"):
            self.engine.write_batch(ops)
        self._quarantined[partition] = self._quarantined.get(partition, 0) + len(rows)

    def partition_is_empty(self, partition: int) -> bool:
        self._check_partition(partition)
        start, end = partition_range(partition)
        with _engine_errors("scan"):
            return next(iter(self.engine.scan(start, end, limit=1)), None) is None

    def drop_partition(self, partition: int) -> int:
        """Delete every object of ``partition`` (after handing it off); how many were deleted.

        Deletes in batches of bounded size, each atomic; a crash part-way leaves a partition
        that is partly dropped, which a retry finishes.
        """
        self._check_partition(partition)
        start, end = partition_range(partition)
        dropped = 0
        with _engine_errors("drop"):
            while True:
                keys = [k for k, _ in self.engine.scan(start, end, limit=_DROP_BATCH)]
                if not keys:
                    return dropped
                self.engine.write_batch((k, None) for k in keys)
                dropped += len(keys)

    def sync(self) -> None:
        with _engine_errors("sync"):
            self.engine.sync()

    def close(self) -> None:
        with _engine_errors("close"):
            self.engine.close()

    def _check_partition(self, partition: int) -> None:
        if not 0 <= partition < self.q:
            raise ValueError(f"partition {partition} is outside 0..{self.q - 1}")


def decoded_row(skey: bytes, raw: bytes) -> tuple[str, bytes, VersionedObject] | None:
    """``(bucket, key, object)`` of a stored object, or ``None`` if it cannot be decoded."""
    try:
        _, bucket, key = decode_storage_key(skey)
        return bucket, key, _decode(raw, bucket, key)
    except StorageError:
        return None


def _decode(raw: bytes, bucket: str, key: bytes) -> VersionedObject:
    try:
        return decode_object(raw)
    except Exception as exc:
        raise StorageError(
            f"stored object {bucket}/{key[:40]!r} cannot be decoded ({exc}): the data files are "
            "corrupt or were written by an incompatible version; remove this node's data "
            "directory and let anti-entropy rebuild it from the replicas",
            {"bucket": bucket},
        ) from exc


@contextmanager
def _engine_errors(op: str) -> Iterator[None]:
    """Engine failures as ``StorageError``; dynamokv's own errors pass through unchanged.

    Engines already raise ``StorageError``; this catches what a buggy or third-party engine
    lets escape, so the core only ever has to handle the one documented exception.
    """
    try:
        yield
    except DynamoKVError:
        raise
    except Exception as exc:
        raise _storage_error(op, exc) from exc


def _storage_error(op: str, exc: Exception) -> StorageError:
    return StorageError(f"storage {op} failed: {type(exc).__name__}: {exc}")


__all__ = [
    "QUARANTINE_PREFIX",
    "EngineObjectStore",
    "decode_storage_key",
    "decoded_row",
    "encode_storage_key",
    "partition_range",
]
