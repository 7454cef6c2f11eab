"""Unit tests for ``dynamokv.core.merkle``: shape, hashing, incremental updates, descent.

The laws over random contents (exact differing segments, incremental == rebuild, cost bounded
by the difference) are in ``tests/property/test_merkle_props.py``.
"""

from __future__ import annotations

import hashlib

import pytest

from dynamokv.core.hashing import key_partition
from dynamokv.core.merkle import (
    EMPTY_LEAF,
    HASH_BYTES,
    SEGMENTS_DEFAULT,
    WIDTH_DEFAULT,
    MerkleTree,
    diff_level,
    differing_segments,
    key_hash,
)


def digest(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()[:8]


def filled(count: int, *, segments: int = 64, width: int = 8, bucket: str = "b") -> MerkleTree:
    tree = MerkleTree(segments, width)
    for i in range(count):
        tree.insert(bucket, b"k%d" % i, digest(i))
    return tree


# --- shape --------------------------------------------------------------------------------------


def test_default_shape_is_root_32_1024() -> None:
    tree = MerkleTree()
    assert (tree.segments, tree.width) == (SEGMENTS_DEFAULT, WIDTH_DEFAULT) == (1024, 32)
    assert tree.levels() == 3
    assert len(tree.level_hashes(1, range(32))) == 32
    assert len(tree.level_hashes(2, range(1024))) == 1024


@pytest.mark.parametrize(
    ("segments", "width", "levels"), [(2, 2, 2), (8, 2, 4), (16, 4, 3), (4096, 16, 4), (27, 3, 4)]
)
def test_levels_of_other_shapes(segments: int, width: int, levels: int) -> None:
    assert MerkleTree(segments, width).levels() == levels


@pytest.mark.parametrize(("segments", "width"), [(1000, 32), (1, 32), (0, 4), (48, 4), (8, 1)])
def test_rejects_segments_not_a_positive_power_of_width(segments: int, width: int) -> None:
    with pytest.raises(ValueError):
        MerkleTree(segments, width)


def test_children_ranges() -> None:
    tree = MerkleTree()
    assert tree.children(0, 0) == range(0, 32)
    assert tree.children(1, 0) == range(0, 32)
    assert tree.children(1, 31) == range(992, 1024)
    small = MerkleTree(16, 4)
    assert small.children(1, 2) == range(8, 12)


def test_children_rejects_leaves_and_bad_indexes() -> None:
    tree = MerkleTree()
    with pytest.raises(ValueError):
        tree.children(2, 0)  # leaves have no children
    with pytest.raises(ValueError):
        tree.children(-1, 0)
    with pytest.raises(IndexError):
        tree.children(0, 1)
    with pytest.raises(IndexError):
        tree.children(1, 32)


def test_level_hashes_rejects_bad_levels_and_indexes() -> None:
    tree = MerkleTree()
    with pytest.raises(ValueError):
        tree.level_hashes(3, [0])
    with pytest.raises(IndexError):
        tree.level_hashes(1, [32])
    with pytest.raises(IndexError):
        tree.level_hashes(2, [-1])  # a negative index must not silently mean "from the end"


# --- hashing ------------------------------------------------------------------------------------


def test_key_hash_is_pinned() -> None:
    # Replicas on different versions compare trees: a change here changes every segment.
    assert key_hash("users", b"alice") == 0x2BE8F410EF70434F
    assert 0 <= key_hash("", b"") < 2**64


def test_key_hash_separates_bucket_and_key() -> None:
    assert key_hash("a\x00b", b"c") != key_hash("a", b"b\x00c")
    assert key_hash("ab", b"c") != key_hash("a", b"bc")
    assert key_hash("a", b"k") != key_hash("b", b"k")


def test_empty_roots_are_pinned_constants() -> None:
    assert MerkleTree().root().hex() == "9fa252f24c352969e599691e6af3daf9"
    assert MerkleTree(16, 4).root().hex() == "be51e05322b5ffed00ef12f4fe745512"
    assert MerkleTree().root() == MerkleTree().root()
    assert MerkleTree().level_hashes(2, [0, 1023]) == [EMPTY_LEAF, EMPTY_LEAF]


def test_one_key_root_is_pinned() -> None:
    tree = MerkleTree()
    tree.insert("users", b"alice", b"\x01" * 8)
    assert tree.segment_of("users", b"alice") == 175
    assert tree.root().hex() == "587163ae5b413262a4d29b0fae43c653"


def test_hashes_are_16_bytes() -> None:
    tree = filled(10)
    assert len(tree.root()) == HASH_BYTES
    assert all(len(h) == HASH_BYTES for h in tree.level_hashes(2, range(64)))


def test_segment_of_in_range_and_spread() -> None:
    tree = MerkleTree()
    counts = [0] * 1024
    for i in range(20_000):
        s = tree.segment_of("b", b"%d" % i)
        counts[s] += 1
    # ~19.5 keys per segment on average; a uniform hash leaves none empty and none crowded.
    assert min(counts) > 0
    assert max(counts) < 60


def test_keys_of_one_ring_partition_spread_over_all_segments() -> None:
    # The tree summarises one partition, whose keys share the ring position's top bits; the
    # segment hash must not be derived from that position.
    tree = MerkleTree()
    keys = [b"%d" % i for i in range(40_000)]
    mine = [k for k in keys if key_partition("b", k, 64) == 5]
    assert len(mine) > 400
    assert len({tree.segment_of("b", k) for k in mine}) > 300


# --- updates ------------------------------------------------------------------------------------


def test_insert_changes_exactly_one_leaf_and_the_path_to_it() -> None:
    tree = MerkleTree()
    before = [tree.level_hashes(level, range(32**level)) for level in range(3)]
    tree.insert("b", b"k", b"d")
    after = [tree.level_hashes(level, range(32**level)) for level in range(3)]
    seg = tree.segment_of("b", b"k")
    changed = [
        [i for i, (x, y) in enumerate(zip(b, a, strict=True)) if x != y]
        for b, a in zip(before, after, strict=True)
    ]
    assert changed == [[0], [seg // 32], [seg]]


def test_insert_then_remove_restores_the_root() -> None:
    tree = filled(100)
    root = tree.root()
    tree.insert("b", b"new", b"d")
    assert tree.root() != root
    tree.update("b", b"new", b"d", None)
    assert tree.root() == root
    assert tree == filled(100)


def test_update_replaces_the_old_digest() -> None:
    a = filled(50)
    a.update("b", b"k7", digest(7), b"changed")
    b = MerkleTree(64, 8)
    for i in range(50):
        b.insert("b", b"k%d" % i, b"changed" if i == 7 else digest(i))
    assert a == b
    assert a.root() == b.root()


def test_update_to_the_same_digest_is_a_no_op() -> None:
    tree = filled(20)
    root = tree.root()
    tree.update("b", b"k3", digest(3), digest(3))
    tree.update("b", b"absent", None, None)
    assert tree.root() == root


def test_digest_matters_not_only_the_key() -> None:
    a, b = MerkleTree(), MerkleTree()
    a.insert("b", b"k", b"v1")
    b.insert("b", b"k", b"v2")
    assert a.root() != b.root()
    assert differing_segments(a, b) == [a.segment_of("b", b"k")]


def test_bucket_matters() -> None:
    a, b = MerkleTree(), MerkleTree()
    a.insert("x", b"k", b"d")
    b.insert("y", b"k", b"d")
    assert a.root() != b.root()


def test_insertion_order_does_not_matter() -> None:
    items = [("b", b"k%d" % i, digest(i)) for i in range(300)]
    forward, backward = MerkleTree(16, 4), MerkleTree(16, 4)
    for bucket, key, d in items:
        forward.insert(bucket, key, d)
    for bucket, key, d in reversed(items):
        backward.insert(bucket, key, d)
    assert forward == backward
    assert forward.root() == backward.root()


def test_reads_between_writes_see_every_write() -> None:
    # Lazy rehashing must not lose dirty marks when a read happens in between.
    lazy, eager = MerkleTree(64, 4), MerkleTree(64, 4)
    for i in range(200):
        lazy.insert("b", b"k%d" % i, digest(i))
        eager.insert("b", b"k%d" % i, digest(i))
        eager.root()
        if i % 7 == 0:
            eager.level_hashes(1, [0, 3])
    assert lazy.root() == eager.root()
    assert lazy.level_hashes(2, range(16)) == eager.level_hashes(2, range(16))


# --- copy, clear, equality ----------------------------------------------------------------------


def test_copy_is_independent() -> None:
    tree = filled(30)
    tree.insert("b", b"dirty", b"d")  # copied while dirty: the copy must rehash on its own
    clone = tree.copy()
    assert clone == tree
    assert clone.root() == tree.root()
    clone.insert("b", b"only-in-clone", b"d")
    assert clone != tree
    assert clone.root() != tree.root()
    tree.update("b", b"dirty", b"d", None)
    assert tree == filled(30)


def test_clear_empties_the_tree() -> None:
    tree = filled(30)
    tree.root()
    tree.insert("b", b"pending", b"d")
    tree.clear()
    assert tree == MerkleTree(64, 8)
    assert tree.root() == MerkleTree(64, 8).root()
    tree.insert("b", b"k0", digest(0))
    assert tree.root() == filled(1).root()


def test_equality_needs_same_shape_and_leaves() -> None:
    assert MerkleTree() == MerkleTree()
    assert MerkleTree(16, 4) != MerkleTree(16, 2)
    assert MerkleTree(64, 8) != MerkleTree(64, 4)
    assert filled(5) != filled(6)
    assert MerkleTree() != "not a tree"


def test_trees_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(MerkleTree())


# --- descent ------------------------------------------------------------------------------------


def test_diff_level_returns_the_indexes_that_differ() -> None:
    x, y, z = b"x" * 16, b"y" * 16, b"z" * 16
    assert diff_level([x, y, z], [x, z, z], [4, 9, 11]) == [9]
    assert diff_level([], [], []) == []
    with pytest.raises(ValueError):
        diff_level([x], [x, y], [0, 1])


def test_differing_segments_of_equal_trees_is_empty() -> None:
    assert differing_segments(filled(100), filled(100)) == []
    assert differing_segments(MerkleTree(), MerkleTree()) == []


def test_differing_segments_finds_each_changed_key() -> None:
    a, b = filled(500), filled(500)
    b.update("b", b"k10", digest(10), b"new")  # changed
    b.update("b", b"k20", digest(20), None)  # missing on b
    a.insert("b", b"extra", b"d")  # only on a
    want = sorted({a.segment_of("b", k) for k in (b"k10", b"k20", b"extra")})
    assert differing_segments(a, b) == want
    assert differing_segments(b, a) == want


def test_differing_segments_rejects_different_shapes() -> None:
    with pytest.raises(ValueError):
        differing_segments(MerkleTree(), MerkleTree(1024, 4))


def test_manual_exchange_with_level_hashes() -> None:
    # The steps the exchange state machine takes, by hand, on the default shape.
    a, b = MerkleTree(), MerkleTree()
    for i in range(2000):
        a.insert("b", b"k%d" % i, digest(i))
        b.insert("b", b"k%d" % i, digest(i))
    b.update("b", b"k1234", digest(1234), b"stale")
    assert diff_level([a.root()], [b.root()], [0]) == [0]
    inner = list(a.children(0, 0))
    level1 = diff_level(a.level_hashes(1, inner), b.level_hashes(1, inner), inner)
    assert len(level1) == 1
    leaves = list(a.children(1, level1[0]))
    level2 = diff_level(a.level_hashes(2, leaves), b.level_hashes(2, leaves), leaves)
    assert level2 == [a.segment_of("b", b"k1234")]
