"""``dynamokv.core.apl``: primaries, fallbacks for down primaries, and running short."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.core.apl import Replica, ReplicaKind, active_preference_list, primaries
from dynamokv.core.claim import claim
from dynamokv.core.ring import Member, Ring

P = ReplicaKind.PRIMARY
F = ReplicaKind.FALLBACK

# Partition 0's successors, in ring order: a b c d e (then the ring repeats).
RING = Ring(
    q=8,
    owners=("a", "b", "c", "d", "e", "a", "b", "c"),
    members=tuple(Member(x, f"{x}:1") for x in "abcde"),
    version=1,
    claimant="a",
)
ALL = frozenset("abcde")


def test_primaries_are_the_preference_list() -> None:
    assert primaries(RING, 0, 3) == ("a", "b", "c")
    assert primaries(RING, 6, 3) == ("b", "c", "a")
    assert primaries(RING, 0, 9) == ("a", "b", "c", "d", "e")


def test_all_up_gives_primaries_only() -> None:
    assert active_preference_list(RING, 0, 3, ALL) == (
        Replica("a", P, None),
        Replica("b", P, None),
        Replica("c", P, None),
    )


def test_down_primary_is_replaced_by_the_next_node_beyond_n() -> None:
    apl = active_preference_list(RING, 0, 3, ALL - {"b"})
    assert apl == (Replica("a", P), Replica("c", P), Replica("d", F, for_node="b"))


def test_fallbacks_follow_the_order_of_the_primaries_they_replace() -> None:
    apl = active_preference_list(RING, 0, 3, ALL - {"a", "c"})
    assert apl == (Replica("b", P), Replica("d", F, "a"), Replica("e", F, "c"))


def test_down_fallback_candidates_are_skipped() -> None:
    apl = active_preference_list(RING, 0, 3, ALL - {"a", "d"})
    assert apl == (Replica("b", P), Replica("c", P), Replica("e", F, "a"))


def test_too_few_nodes_up_gives_a_shorter_list() -> None:
    apl = active_preference_list(RING, 0, 3, frozenset({"a", "d"}))
    assert apl == (Replica("a", P), Replica("d", F, "b"))
    assert active_preference_list(RING, 0, 3, frozenset()) == ()


def test_n_covering_every_node_leaves_no_fallbacks() -> None:
    apl = active_preference_list(RING, 0, 5, ALL - {"c"})
    assert [r.node for r in apl] == ["a", "b", "d", "e"]
    assert all(r.kind is P for r in apl)


def test_unknown_up_nodes_are_ignored() -> None:
    apl = active_preference_list(RING, 0, 2, frozenset({"a", "c", "zz"}))
    assert apl == (Replica("a", P), Replica("c", F, "b"))
    assert active_preference_list(RING, 0, 2, frozenset({"a", "zz"})) == (Replica("a", P),)


def test_fallback_is_a_replica_value() -> None:
    r = Replica("d", F, for_node="b")
    assert r == Replica("d", F, "b") and hash(r) == hash(Replica("d", F, "b"))


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=8),
    n=st.integers(min_value=1, max_value=5),
    partition=st.integers(min_value=0, max_value=63),
    down=st.sets(st.integers(min_value=0, max_value=7)),
)
def test_active_preference_list_laws(count: int, n: int, partition: int, down: set[int]) -> None:
    members = [Member(f"n{i}", f"n{i}:1") for i in range(count)]
    ring = claim(None, members, q=64, target_n=n, claimant="n0")
    up = frozenset(f"n{i}" for i in range(count) if i not in down)
    apl = active_preference_list(ring, partition, n, up)
    prefs = primaries(ring, partition, n)
    nodes = [r.node for r in apl]
    assert len(set(nodes)) == len(nodes)  # never the same node twice
    assert set(nodes) <= up
    assert [r.node for r in apl if r.kind is P] == [p for p in prefs if p in up]
    fallbacks = [r for r in apl if r.kind is F]
    assert all(r.for_node in prefs and r.for_node not in up for r in fallbacks)
    assert all(r.node not in prefs for r in fallbacks)
    assert all(r.for_node is None for r in apl if r.kind is P)
    # As many replicas as there can be: n, or every up node when fewer are up.
    assert len(apl) == min(n, len(up & set(ring.owners)))
