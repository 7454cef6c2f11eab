"""The object buffer (core/buffer.py) over a real NodeStore on the memory engine."""

from __future__ import annotations

import pytest

from dynamokv.core.buffer import BufferSettings, ObjectBuffer
from dynamokv.core.hashing import key_partition
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import StorageError
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

Q = 8


class CountingStore(NodeStore):
    """A NodeStore that counts syncs and batches, and can be told to fail writes."""

    def __init__(self) -> None:
        super().__init__(MemoryEngine(), Q)
        self.syncs = 0
        self.batches = 0
        self.fail = False

    def sync(self) -> None:
        self.syncs += 1
        super().sync()

    def put_objects(self, items: list[tuple[str, bytes, VersionedObject]]) -> None:  # type: ignore[override]
        if self.fail:
            raise StorageError("disk full")
        self.batches += 1
        super().put_objects(items)


def obj(value: bytes, counter: int = 1) -> VersionedObject:
    return VersionedObject((Sibling(value, Dot("a", counter), VectorClock.empty(), 0),))


def make(objects_max: int = 100) -> tuple[ObjectBuffer, CountingStore]:
    inner = CountingStore()
    buf = ObjectBuffer(inner, BufferSettings(objects_max=objects_max),
                       lambda bucket: bucket == "carts")
    return buf, inner


def test_buffered_writes_are_read_back_before_they_reach_the_engine() -> None:
    buf, inner = make()
    buf.put("carts", b"k", obj(b"v"))
    assert inner.get("carts", b"k") is None
    assert buf.get("carts", b"k") == obj(b"v")
    assert buf.flush() == 1 and inner.batches == 1
    assert inner.get("carts", b"k") == obj(b"v") and buf.entries == {}


def test_other_buckets_go_straight_to_the_engine() -> None:
    buf, inner = make()
    buf.put("users", b"k", obj(b"v"))
    assert inner.get("users", b"k") == obj(b"v") and buf.entries == {}


def test_a_full_buffer_flushes_in_one_batch() -> None:
    buf, inner = make(objects_max=3)
    for i in range(3):
        buf.put("carts", bytes([i]), obj(b"v"))
    assert buf.entries == {} and inner.batches == 1
    assert all(inner.get("carts", bytes([i])) is not None for i in range(3))


def test_make_durable_moves_the_key_to_the_engine_and_syncs() -> None:
    buf, inner = make()
    buf.put("carts", b"k", obj(b"v"))
    buf.put("carts", b"other", obj(b"w"))
    buf.make_durable("carts", b"k")
    assert inner.get("carts", b"k") == obj(b"v") and inner.syncs == 1
    assert ("carts", b"other") in buf.entries and ("carts", b"k") not in buf.entries


def test_delete_drops_the_buffered_copy_too() -> None:
    buf, inner = make()
    buf.put("carts", b"k", obj(b"v"))
    buf.delete("carts", b"k")
    assert buf.get("carts", b"k") is None
    buf.flush()
    assert inner.get("carts", b"k") is None


def test_scans_see_buffered_writes() -> None:
    buf, _ = make()
    buf.put("carts", b"k", obj(b"v"))
    part = key_partition("carts", b"k", Q)
    assert [k for _, k, _ in buf.fold_partition(part)] == [b"k"]
    assert part in buf.nonempty_partitions()


def test_a_failed_flush_keeps_the_objects_buffered_and_readable() -> None:
    buf, inner = make()
    buf.put("carts", b"k", obj(b"v"))
    inner.fail = True
    with pytest.raises(StorageError):
        buf.flush()
    assert buf.get("carts", b"k") == obj(b"v")
    inner.fail = False
    assert buf.flush() == 1 and inner.get("carts", b"k") == obj(b"v")
