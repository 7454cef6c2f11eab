"""Hypothesis laws for ``dynamokv.core.merkle``.

Contents are dicts ``(bucket, key) -> digest``. Keys come from small alphabets so that two
generated replicas overlap a lot and several keys share a segment (small shapes are drawn too),
which is where a wrong descent or a wrong XOR would show. "Equal" below is exact: a 128-bit
collision is too unlikely to ever be drawn.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.core.merkle import MerkleTree, differing_segments

Key = tuple[str, bytes]
Contents = dict[Key, bytes]

SHAPES = [(2, 2), (8, 2), (16, 4), (64, 8), (1024, 32), (27, 3)]

shapes = st.sampled_from(SHAPES)
keys = st.tuples(st.sampled_from(["", "a", "users"]), st.binary(max_size=3))
digests = st.binary(min_size=1, max_size=4)
contents = st.dictionaries(keys, digests, max_size=60)


@st.composite
def replica_pairs(draw: st.DrawFn) -> tuple[Contents, Contents]:
    """Two replicas' contents: a shared base, then some keys changed, dropped or added on b."""
    a = draw(contents)
    b = dict(a)
    touched = draw(st.lists(st.sampled_from(sorted(a)), max_size=8)) if a else []
    for k in touched:
        if draw(st.booleans()):
            b.pop(k, None)
        else:
            b[k] = draw(digests)
    b.update(draw(st.dictionaries(keys, digests, max_size=6)))
    return a, b


def build(items: Mapping[Key, bytes], shape: tuple[int, int]) -> MerkleTree:
    tree = MerkleTree(*shape)
    for (bucket, key), d in items.items():
        tree.insert(bucket, key, d)
    return tree


def expected_segments(a: Contents, b: Contents, tree: MerkleTree) -> list[int]:
    differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return sorted({tree.segment_of(bucket, key) for bucket, key in differ})


class CountingTree(MerkleTree):
    """A tree that counts the hashes ``level_hashes`` hands out: what an exchange would send."""

    __slots__ = ("sent",)

    def __init__(self, segments: int, width: int) -> None:
        super().__init__(segments, width)
        self.sent = 0

    def level_hashes(self, level: int, indexes: Sequence[int]) -> list[bytes]:
        self.sent += len(indexes)
        return super().level_hashes(level, indexes)


# --- descent finds exactly the difference -------------------------------------------------------


@given(replica_pairs(), shapes)
def test_differing_segments_are_exactly_those_of_differing_keys(
    pair: tuple[Contents, Contents], shape: tuple[int, int]
) -> None:
    a, b = pair
    ta, tb = build(a, shape), build(b, shape)
    want = expected_segments(a, b, ta)
    assert differing_segments(ta, tb) == want
    assert differing_segments(tb, ta) == want


@given(replica_pairs(), shapes)
def test_root_equal_iff_contents_equal(
    pair: tuple[Contents, Contents], shape: tuple[int, int]
) -> None:
    a, b = pair
    ta, tb = build(a, shape), build(b, shape)
    assert (ta.root() == tb.root()) == (a == b)
    assert (ta == tb) == (a == b)


@given(replica_pairs(), shapes)
@settings(max_examples=200)
def test_descent_cost_is_proportional_to_the_difference(
    pair: tuple[Contents, Contents], shape: tuple[int, int]
) -> None:
    a, b = pair
    ta, tb = CountingTree(*shape), CountingTree(*shape)
    for tree, items in ((ta, a), (tb, b)):
        for (bucket, key), d in items.items():
            tree.insert(bucket, key, d)
    found = differing_segments(ta, tb)
    n_diff = len(found)
    assert ta.sent == tb.sent  # both sides send the same nodes
    if n_diff == 0:
        assert ta.sent == 1  # the roots alone
    else:
        assert ta.sent <= 1 + ta.width * (ta.levels() - 1) * n_diff
        assert ta.sent <= ta.levels() * ta.width * n_diff


# --- incremental maintenance --------------------------------------------------------------------

ops = st.lists(
    st.tuples(keys, st.one_of(st.none(), digests), st.booleans()),  # (key, new digest, read now?)
    max_size=80,
)


@given(contents, ops, shapes)
def test_incremental_updates_equal_a_rebuild(
    start: Contents, steps: list[tuple[Key, bytes | None, bool]], shape: tuple[int, int]
) -> None:
    tree = build(start, shape)
    model = dict(start)
    for (bucket, key), new, read in steps:
        tree.update(bucket, key, model.get((bucket, key)), new)
        if new is None:
            model.pop((bucket, key), None)
        else:
            model[(bucket, key)] = new
        if read:  # interleave lazy rehashes with writes
            tree.root()
    rebuilt = build(model, shape)
    assert tree == rebuilt
    assert tree.root() == rebuilt.root()
    for level in range(tree.levels()):
        everything = range(tree.width**level)
        assert tree.level_hashes(level, everything) == rebuilt.level_hashes(level, everything)


@given(contents, shapes, st.randoms(use_true_random=False))
def test_leaves_do_not_depend_on_insertion_order(
    items: Contents, shape: tuple[int, int], rnd: random.Random
) -> None:
    order = list(items.items())
    rnd.shuffle(order)
    shuffled = MerkleTree(*shape)
    for (bucket, key), d in order:
        shuffled.insert(bucket, key, d)
    assert shuffled == build(items, shape)
    assert shuffled.root() == build(items, shape).root()


@given(contents, keys, digests, shapes)
def test_insert_then_remove_restores_the_root(
    items: Contents, key: Key, d: bytes, shape: tuple[int, int]
) -> None:
    items.pop(key, None)
    tree = build(items, shape)
    root = tree.root()
    tree.insert(key[0], key[1], d)
    tree.update(key[0], key[1], d, None)
    assert tree.root() == root
    assert tree == build(items, shape)


@given(contents, keys, digests, digests, shapes)
def test_update_there_and_back_restores_the_root(
    items: Contents, key: Key, d1: bytes, d2: bytes, shape: tuple[int, int]
) -> None:
    items[key] = d1
    tree = build(items, shape)
    root = tree.root()
    tree.update(key[0], key[1], d1, d2)
    assert (tree.root() == root) == (d1 == d2)
    tree.update(key[0], key[1], d2, d1)
    assert tree.root() == root


@given(replica_pairs(), shapes)
def test_copy_then_diverge(pair: tuple[Contents, Contents], shape: tuple[int, int]) -> None:
    a, b = pair
    original = build(a, shape)
    clone = original.copy()
    for k in a.keys() | b.keys():
        clone.update(k[0], k[1], a.get(k), b.get(k))
    assert clone == build(b, shape)
    assert original == build(a, shape)
    assert differing_segments(original, clone) == expected_segments(a, b, original)
