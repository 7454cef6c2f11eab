"""``core.trees``: trees built in bounded steps match the store exactly, whatever is written,
overwritten or deleted between the steps; items of the partition logs never enter a tree."""

from __future__ import annotations

import random

from dynamokv.core.hashing import key_partition
from dynamokv.core.merkle import decode_key, encode_key
from dynamokv.core.trees import TreeStore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject, object_digest
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

Q = 4


def _obj(value: bytes, counter: int) -> VersionedObject:
    clock = VectorClock.from_entries([("a", counter, 0)])
    return VersionedObject((Sibling(value, Dot("a", counter), clock, 0),))


def _keys(partition: int, count: int, bucket: str = "b") -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while len(out) < count:
        key = b"k%d" % i
        if key_partition(bucket, key, Q) == partition:
            out.append(key)
        i += 1
    return out


def _expected(store: NodeStore, partition: int) -> dict[tuple[str, bytes], bytes]:
    """What the tree must hold: every Dynamo key of the partition and its digest, from the
    store itself."""
    return {(b, k): object_digest(o) for b, k, o in store.fold_partition(partition)
            if not b.startswith("~")}


def test_a_build_in_small_steps_matches_the_store_despite_writes_between_steps() -> None:
    rng = random.Random(7)
    inner = NodeStore(MemoryEngine(), Q)
    trees = TreeStore(inner, Q)
    keys = _keys(1, 400)
    for n, key in enumerate(keys[:300]):
        trees.put("b", key, _obj(b"v", n + 1))
    counter = 1_000
    steps = 0
    while 1 not in trees.trees:
        read = trees.build_some(1, 25)
        assert 1 <= read <= 25
        steps += 1
        for _ in range(rng.randrange(6)):  # writes the scan has or has not passed yet
            key = rng.choice(keys)
            counter += 1
            if rng.random() < 0.3:
                trees.delete("b", key)
            else:
                trees.put("b", key, _obj(b"w%d" % counter, counter))
    assert steps >= 10  # it did take many bounded steps (300 keys, 25 per step, deletes)
    tree = trees.trees[1]
    expected = _expected(inner, 1)
    assert tree.keys_in(range(tree.tree.segments)) == expected
    rebuilt = TreeStore(inner, Q)
    rebuilt.build(1)
    assert rebuilt.trees[1].tree.root() == tree.tree.root()
    assert not trees.building


def test_a_key_deleted_and_written_again_during_a_build_is_held_once_with_its_last_digest(
        ) -> None:
    inner = NodeStore(MemoryEngine(), Q)
    trees = TreeStore(inner, Q)
    keys = _keys(2, 50)
    for n, key in enumerate(keys):
        trees.put("b", key, _obj(b"v", n + 1))
    trees.build_some(2, 10)
    last = keys[-1]  # not read yet by the scan
    trees.delete("b", last)
    trees.put("b", last, _obj(b"again", 99))
    while 2 not in trees.trees:
        trees.build_some(2, 10)
    held = trees.trees[2].keys_in(range(trees.trees[2].tree.segments))
    assert held == _expected(inner, 2)
    assert held[("b", last)] == object_digest(_obj(b"again", 99))


def test_a_dropped_build_starts_over_and_other_partitions_are_untouched() -> None:
    inner = NodeStore(MemoryEngine(), Q)
    trees = TreeStore(inner, Q)
    for n, key in enumerate(_keys(0, 30)):
        trees.put("b", key, _obj(b"v", n + 1))
    trees.build_some(0, 5)
    assert 0 in trees.building
    trees.drop_tree(0)
    assert 0 not in trees.building and 0 not in trees.trees
    assert trees.build(0) == 30
    assert trees.build(3) == 0  # an empty partition has an (empty) tree too


def test_items_of_the_partition_logs_are_never_in_a_tree() -> None:
    inner = NodeStore(MemoryEngine(), Q)
    trees = TreeStore(inner, Q)
    trees.build(1)
    table_key = _keys(1, 1, bucket="~t")[0]
    trees.put("~t", table_key, _obj(b"item", 1))  # written after the build
    inner.put("~t", _keys(1, 2, bucket="~t")[1], _obj(b"item", 2))
    assert trees.trees[1].key_count() == 0
    assert trees.build(1) == 0  # nor after a rebuild


def test_keys_are_held_encoded_and_come_back_as_bucket_and_key() -> None:
    for bucket, key in [("b", b""), ("a\x00b", b"c"), ("a", b"b\x00c"), ("\u00e9", b"\xff" * 40)]:
        assert decode_key(encode_key(bucket, key)) == (bucket, key)
