"""``dynamokv.core.ring``: preference lists, key placement and ring reconciliation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dynamokv.core.claim import claim
from dynamokv.core.hashing import key_partition
from dynamokv.core.ring import Member, MemberStatus, Ring, reconcile


def members(count: int) -> list[Member]:
    return [Member(f"n{i}", f"127.0.0.1:{9000 + i}") for i in range(count)]


def ring_of(count: int, q: int = 64, n: int = 3) -> Ring:
    return claim(None, members(count), q=q, target_n=n, claimant="n0")


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_preference_list_is_distinct_and_starts_at_owner(count: int, n: int) -> None:
    ring = ring_of(count, q=64, n=n)
    for partition in range(ring.q):
        prefs = ring.preference_list(partition, n)
        assert len(prefs) == min(n, count)
        assert len(set(prefs)) == len(prefs)
        assert prefs[0] == ring.owners[partition]


def test_preference_list_walks_clockwise_skipping_repeats() -> None:
    ring = Ring(
        q=8,
        owners=("a", "a", "b", "a", "c", "b", "c", "d"),
        members=tuple(Member(x, "h:1") for x in "abcd"),
        version=1,
        claimant="a",
    )
    assert ring.preference_list(0, 3) == ("a", "b", "c")
    assert ring.preference_list(7, 3) == ("d", "a", "b")  # wraps around
    assert ring.successors(5) == ("b", "c", "d", "a")


def test_partition_for_is_stable_and_in_range() -> None:
    ring = ring_of(4, q=128)
    for i in range(200):
        key = f"key-{i}".encode()
        p = ring.partition_for("bucket", key)
        assert 0 <= p < 128
        assert p == ring.partition_for("bucket", key) == key_partition("bucket", key, 128)
    # A bigger ring refines a smaller one: partition p of q/2 splits into 2p and 2p+1.
    for i in range(50):
        key = f"k{i}".encode()
        assert key_partition("bucket", key, 256) // 2 == key_partition("bucket", key, 128)


def test_partition_for_does_not_depend_on_owners() -> None:
    a = ring_of(3, q=64)
    b = ring_of(7, q=64)
    for i in range(50):
        key = str(i).encode()
        assert a.partition_for("t", key) == b.partition_for("t", key)


def test_ring_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        Ring(q=12, owners=("a",) * 12, members=(), version=1, claimant="a")
    with pytest.raises(ValueError):
        Ring(q=8, owners=("a",) * 7, members=(), version=1, claimant="a")


def test_reconcile_takes_the_higher_version_either_way() -> None:
    old = ring_of(3)
    new = claim(
        old,
        [*members(3), Member("n3", "h:3", MemberStatus.JOINING)],
        q=64,
        target_n=3,
        claimant="n0",
    )
    assert new.version == old.version + 1
    assert reconcile(old, new) == new
    assert reconcile(new, old) == new
    assert reconcile(None, old) == old


def test_reconcile_breaks_version_ties_symmetrically() -> None:
    a = ring_of(3)
    b = replace(a, claimant="n2", owners=tuple(reversed(a.owners)))
    assert a.version == b.version
    assert reconcile(a, b) == reconcile(b, a)
    assert reconcile(a, b) in (a, b)
    assert reconcile(a, a) is a


def test_with_member_keeps_members_sorted_and_ownership() -> None:
    ring = ring_of(3)
    updated = ring.with_member(Member("n1", "10.0.0.1:1", MemberStatus.LEAVING))
    assert updated.node_ids() == ("n0", "n1", "n2")
    assert updated.owners == ring.owners
    assert updated.version == ring.version
    member = updated.member("n1")
    assert member is not None and member.status is MemberStatus.LEAVING
    assert updated.address_of("n1") == "10.0.0.1:1"
    assert updated.address_of("zz") is None
