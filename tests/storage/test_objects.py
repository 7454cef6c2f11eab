"""``EngineObjectStore``: versioned objects over each engine, the key layout, partition folds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from dynamokv.core.hashing import key_partition
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import InvalidRequest, StorageError
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.objects import (
    QUARANTINE_PREFIX,
    EngineObjectStore,
    decode_storage_key,
    encode_storage_key,
    partition_range,
)
from dynamokv.storage.registry import ENGINES, open_engine

Q = 16


def obj(value: bytes | None, actor: str = "n1", counter: int = 1) -> VersionedObject:
    context = VectorClock.empty().with_counter("n2", 3, 1_000)
    return VersionedObject((Sibling(value, Dot(actor, counter), context, 1_700_000_000_000),))


@pytest.fixture(params=sorted(ENGINES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineObjectStore]:
    s = EngineObjectStore(open_engine(request.param, tmp_path), Q)
    yield s
    s.close()


def test_put_get_roundtrip(store: EngineObjectStore) -> None:
    assert store.get("b", b"k") is None
    siblings = VersionedObject(
        (
            Sibling(b"v1", Dot("n1", 1), VectorClock.empty(), 5),
            Sibling(None, Dot("n2", 1), VectorClock.empty(), 6),  # a tombstone sibling
        )
    )
    store.put("b", b"k", siblings)
    assert store.get("b", b"k") == siblings
    store.put("b", b"k", obj(b"v2", counter=2))
    assert store.get("b", b"k") == obj(b"v2", counter=2)
    assert store.get("other", b"k") is None, "buckets are separate key spaces"
    store.put("b", b"", obj(b""))
    assert store.get("b", b"") == obj(b"")
    store.delete("b", b"k")
    assert store.get("b", b"k") is None
    store.sync()


def test_key_layout() -> None:
    key = encode_storage_key(0x1234, "bucket", b"\x00key")
    assert key == b"\x12\x34" + bytes([6]) + b"bucket" + b"\x00key"
    assert decode_storage_key(key) == (0x1234, "bucket", b"\x00key")
    assert decode_storage_key(encode_storage_key(7, "", b"")) == (7, "", b"")
    assert decode_storage_key(encode_storage_key(1, "é" * 100, b"k")) == (1, "é" * 100, b"k")
    with pytest.raises(InvalidRequest):
        encode_storage_key(0, "x" * 256, b"k")
    with pytest.raises(StorageError):
        decode_storage_key(b"\x00\x01\x09abc")  # length byte says 9, 3 bytes follow
    assert partition_range(3) == (b"\x00\x03", b"\x00\x04")
    assert partition_range(0xFFFF) == (b"\xff\xff", None)


def test_storage_key_uses_the_ring_partition() -> None:
    store = EngineObjectStore(MemoryEngine(), Q)
    for i in range(50):
        key = b"k%d" % i
        assert store.storage_key("b", key)[:2] == key_partition("b", key, Q).to_bytes(2, "big")


def test_fold_partition_is_exactly_one_partition(store: EngineObjectStore) -> None:
    written: dict[tuple[str, bytes], VersionedObject] = {}
    # Bucket names that are prefixes of each other must not leak into one another.
    for bucket in ("a", "ab", "b", ""):
        for i in range(60):
            key = b"key-%d" % i
            written[(bucket, key)] = obj(b"%s/%d" % (bucket.encode(), i))
            store.put(bucket, key, written[(bucket, key)])
    folded: dict[tuple[str, bytes], VersionedObject] = {}
    for partition in range(Q):
        items = list(store.fold_partition(partition))
        stored_keys = [encode_storage_key(partition, b, k) for b, k, _ in items]
        assert stored_keys == sorted(stored_keys), "a fold is in storage key order"
        for bucket, key, value in items:
            assert key_partition(bucket, key, Q) == partition
            folded[(bucket, key)] = value
        assert store.partition_is_empty(partition) == (not items)
    assert folded == written


def test_drop_partition(store: EngineObjectStore) -> None:
    for i in range(400):
        store.put("b", b"%d" % i, obj(b"x"))
    victim = key_partition("b", b"0", Q)
    expected = sum(1 for i in range(400) if key_partition("b", b"%d" % i, Q) == victim)
    assert store.drop_partition(victim) == expected
    assert store.partition_is_empty(victim)
    assert list(store.fold_partition(victim)) == []
    left = sum(len(list(store.fold_partition(p))) for p in range(Q))
    assert left == 400 - expected


def test_bad_partition_and_q() -> None:
    store = EngineObjectStore(MemoryEngine(), Q)
    with pytest.raises(ValueError):
        list(store.fold_partition(Q))
    with pytest.raises(ValueError):
        EngineObjectStore(MemoryEngine(), 12)
    with pytest.raises(ValueError):
        EngineObjectStore(MemoryEngine(), 1 << 17)


def test_corrupt_object_is_a_storage_error_on_get_and_quarantined_by_a_scan() -> None:
    engine = MemoryEngine()
    store = EngineObjectStore(engine, Q)
    bad = store.storage_key("b", b"k")
    engine.put(bad, b"\xff\x00 not an object")
    store.put("b", b"k2", obj(b"fine"))
    with pytest.raises(StorageError, match="cannot be decoded"):
        store.get("b", b"k")
    partition = key_partition("b", b"k", Q)
    rows = [row for p in range(Q) for row in store.fold_partition(p)]
    assert [(b, k) for b, k, _ in rows] == [("b", b"k2")]  # the scan went on past it
    assert store.quarantined() == {partition: 1}
    assert store.get("b", b"k") is None  # moved aside: anti-entropy restores it
    assert engine.get(QUARANTINE_PREFIX + bad) == b"\xff\x00 not an object"  # kept
    assert [row for p in range(Q) for row in store.fold_partition(p)] == rows
    assert store.quarantined() == {partition: 1}


class _Broken(MemoryEngine):
    """An engine that fails the way a third-party one might."""

    def get(self, key: bytes) -> bytes | None:
        raise OSError(5, "Input/output error")

    def put(self, key: bytes, value: bytes) -> None:
        raise StorageError("disk full: free space")

    def scan(
        self,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        def gen() -> Iterator[tuple[bytes, bytes]]:
            raise RuntimeError("cursor lost")
            yield (b"", b"")

        return gen()

    def write_batch(self, ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        raise KeyError("nope")


def test_engine_errors_become_storage_errors() -> None:
    store = EngineObjectStore(_Broken(), Q)
    with pytest.raises(StorageError, match="Input/output error"):
        store.get("b", b"k")
    with pytest.raises(StorageError, match="disk full: free space"):
        store.put("b", b"k", obj(b"v"))
    with pytest.raises(StorageError, match="cursor lost"):
        list(store.fold_partition(0))
