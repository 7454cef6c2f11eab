"""TreeStore's scans skip the reserved buckets (partition-log items of tables) by seeking past
each one, not by reading its items: a handoff check of a node holding large tables must not
read every item."""

from __future__ import annotations

from dynamokv.core.hashing import key_partition
from dynamokv.core.trees import TreeStore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

Q = 4


class CountingStore(NodeStore):
    """The real store, counting the rows its partition scans hand out."""

    rows_read = 0

    def scan_partition(self, partition: int, after: tuple[str, bytes] | None, limit: int
                       ) -> list[tuple[str, bytes, VersionedObject]]:
        rows = super().scan_partition(partition, after, limit)
        self.rows_read += len(rows)
        return rows


def _obj(value: bytes) -> VersionedObject:
    return VersionedObject((Sibling(value, Dot("a.1", 1), VectorClock.empty(), 0),))


def _keys_of(partition: int, count: int, bucket: str) -> list[bytes]:
    keys: list[bytes] = []
    i = 0
    while len(keys) < count:
        key = b"k%06d" % i
        if key_partition(bucket, key, Q) == partition:
            keys.append(key)
        i += 1
    return keys


def test_nonempty_partitions_seek_past_table_items() -> None:
    inner = CountingStore(MemoryEngine(), Q)
    store = TreeStore(inner, Q)
    for bucket in ("~t/one", "~t/two"):
        for p in range(Q):
            for key in _keys_of(p, 300, bucket):
                inner.put(bucket, key, _obj(b"item"))
    plain = _keys_of(2, 1, "plain")[0]
    store.put("plain", plain, _obj(b"v"))
    inner.rows_read = 0
    assert store.nonempty_partitions() == [2]
    assert inner.rows_read < 10 * Q  # 2,400 table items stored; a few rows per bucket read


def test_scan_partition_returns_plain_rows_around_reserved_buckets() -> None:
    inner = NodeStore(MemoryEngine(), Q)
    store = TreeStore(inner, Q)
    for key in _keys_of(1, 50, "~t/x"):
        inner.put("~t/x", key, _obj(b"item"))
    wanted = []
    for bucket in ("a", "zz", "\u00e9t\u00e9"):  # sort before and after "~t/x" in storage
        for key in _keys_of(1, 3, bucket):
            store.put(bucket, key, _obj(b"v"))
            wanted.append((bucket, key))
    got: list[tuple[str, bytes]] = []
    after = None
    while True:
        rows = store.scan_partition(1, after, 2)
        got += [(b, k) for b, k, _ in rows]
        if len(rows) < 2:
            break
        after = (rows[-1][0], rows[-1][1])
    assert sorted(got) == sorted(wanted) and len(got) == len(set(got))
