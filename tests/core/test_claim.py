"""``dynamokv.core.claim``: fresh layouts, joins, leaves, the balance report and moves.

The invariants over many shapes are in ``tests/property/test_claim_props.py``; these are the
worked examples and edge cases.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from dynamokv.core.claim import balance, claim, moves
from dynamokv.core.ring import Member, MemberStatus, Ring

VALID = MemberStatus.VALID
JOINING = MemberStatus.JOINING
LEAVING = MemberStatus.LEAVING
EXITING = MemberStatus.EXITING


def node(i: int, status: MemberStatus = VALID) -> Member:
    return Member(f"n{i:02d}", f"127.0.0.1:{9000 + i}", status)


def nodes(count: int) -> list[Member]:
    return [node(i) for i in range(count)]


def fresh(count: int, q: int, n: int) -> Ring:
    return claim(None, nodes(count), q=q, target_n=n, claimant="n00")


def with_status(members: list[Member], node_id: str, status: MemberStatus) -> list[Member]:
    return [Member(m.node_id, m.address, status) if m.node_id == node_id else m for m in members]


# --- fresh rings -------------------------------------------------------------------------------


def test_fresh_ring_metadata() -> None:
    ring = claim(None, list(reversed(nodes(3))), q=16, target_n=3, claimant="n01")
    assert ring.version == 1
    assert ring.claimant == "n01"
    assert ring.q == 16
    assert ring.node_ids() == ("n00", "n01", "n02")  # sorted, whatever the input order


@pytest.mark.parametrize(("count", "q", "n"), [(4, 64, 3), (8, 64, 3), (5, 1024, 3), (20, 1024, 5)])
def test_fresh_ring_balanced_and_spaced(count: int, q: int, n: int) -> None:
    ring = fresh(count, q, n)
    report = balance(ring, n)
    assert report.ok and report.feasible
    assert report.max_count - report.min_count <= 1
    assert {owner for owner in ring.owners} == {f"n{i:02d}" for i in range(count)}
    for p in range(q):
        window = [ring.owners[(p + d) % q] for d in range(n)]
        assert len(set(window)) == n


def test_divisible_ring_gives_equal_shares() -> None:
    report = balance(fresh(8, 64, 3), 3)
    assert set(dict(report.counts).values()) == {8}
    assert report.imbalance == 0.0


def test_indivisible_ring_uses_floor_and_ceil() -> None:
    # 64 = 5 * 12 + 4: four nodes own 13, one owns 12; 13 * 3 <= 64 so spacing is reachable.
    report = balance(fresh(5, 64, 3), 3)
    assert sorted(dict(report.counts).values()) == [12, 13, 13, 13, 13]
    assert report.feasible and report.ok


def test_three_nodes_cannot_space_three_on_a_power_of_two() -> None:
    # 64 = 3 * 21 + 1: the node with 22 partitions cannot have them all 3 apart (22 * 3 > 64).
    report = balance(fresh(3, 64, 3), 3)
    assert sorted(dict(report.counts).values()) == [21, 21, 22]
    assert not report.feasible and report.balanced and report.violations


def test_infeasible_shape_stays_balanced_and_reports_violations() -> None:
    # q=8 over 7 nodes: someone owns 2 of 8 partitions, which cannot be 5 apart.
    ring = fresh(7, 8, 5)
    report = balance(ring, 5)
    assert not report.feasible
    assert report.balanced
    assert report.violations  # reported, not raised


def test_fewer_nodes_than_n_spreads_over_all_of_them() -> None:
    ring = fresh(2, 16, 3)
    report = balance(ring, 3)
    assert report.effective_n == 2
    assert report.ok
    assert all(ring.owners[p] != ring.owners[(p + 1) % 16] for p in range(16))
    assert all(len(ring.preference_list(p, 3)) == 2 for p in range(16))


def test_more_nodes_than_partitions() -> None:
    ring = fresh(12, 8, 3)
    assert len(set(ring.owners)) == 8
    report = balance(ring, 3)
    assert (report.min_count, report.max_count) == (0, 1)
    assert report.ok


def test_single_node_owns_everything() -> None:
    ring = claim(None, [node(0)], q=8, target_n=3, claimant="n00")
    assert set(ring.owners) == {"n00"}
    assert balance(ring, 3).ok  # effective_n is 1


def test_non_owning_members_get_nothing_in_a_fresh_ring() -> None:
    members = [node(0), node(1, JOINING), node(2, LEAVING), node(3, EXITING)]
    ring = claim(None, members, q=16, target_n=2, claimant="n00")
    assert set(ring.owners) == {"n00", "n01"}
    assert len(ring.members) == 4


# --- changes ----------------------------------------------------------------------------------


def test_join_moves_only_to_the_new_node() -> None:
    old = fresh(4, 64, 3)
    new = claim(old, [*nodes(4), node(4, JOINING)], q=64, target_n=3, claimant="n00")
    moved = moves(old, new)
    assert new.version == old.version + 1
    assert {to for _, _, to in moved} == {"n04"}
    assert len(moved) == len(new.partitions_of("n04")) in (12, 13)
    assert balance(new, 3).ok


def test_leave_moves_only_the_leavers_partitions() -> None:
    old = fresh(5, 64, 3)
    members = with_status(nodes(5), "n02", LEAVING)
    new = claim(old, members, q=64, target_n=3, claimant="n00")
    moved = moves(old, new)
    assert {frm for _, frm, _ in moved} == {"n02"}
    assert len(moved) == len(old.partitions_of("n02"))
    assert new.partitions_of("n02") == []
    assert balance(new, 3).balanced
    leaving = new.member("n02")
    assert leaving is not None and leaving.status is LEAVING  # still a member, owns nothing


@pytest.mark.parametrize("status", [EXITING, None])
def test_exiting_or_vanished_owner_loses_its_partitions(status: MemberStatus | None) -> None:
    old = fresh(4, 32, 2)
    members = nodes(4)
    members = (
        with_status(members, "n03", status)
        if status
        else [m for m in members if m.node_id != "n03"]
    )
    new = claim(old, members, q=32, target_n=2, claimant="n00")
    assert "n03" not in new.owners
    assert {frm for _, frm, _ in moves(old, new)} == {"n03"}
    assert balance(new, 2).balanced


def test_replacement_hands_partitions_straight_to_the_joiner() -> None:
    old = fresh(5, 64, 3)
    members = [*with_status(nodes(5), "n01", LEAVING), node(9, JOINING)]
    new = claim(old, members, q=64, target_n=3, claimant="n00")
    moved = moves(old, new)
    assert all(frm == "n01" and to == "n09" for _, frm, to in moved)
    assert len(moved) == len(old.partitions_of("n01"))
    assert balance(new, 3).ok


def test_claim_without_membership_change_moves_nothing() -> None:
    old = claim(None, [*nodes(3), node(3, JOINING)], q=32, target_n=3, claimant="n00")
    new = claim(old, nodes(4), q=32, target_n=3, claimant="n00")  # n03 JOINING -> VALID
    assert moves(old, new) == []
    assert new.version == old.version + 1
    member = new.member("n03")
    assert member is not None and member.status is VALID


def test_several_joins_and_a_leave_at_once() -> None:
    old = fresh(6, 128, 3)
    members = [*with_status(nodes(6), "n00", LEAVING), node(6, JOINING), node(7, JOINING)]
    new = claim(old, members, q=128, target_n=3, claimant="n01")
    for _, frm, to in moves(old, new):
        assert frm == "n00" or to in ("n06", "n07")
    assert balance(new, 3).ok


def test_grow_one_by_one_to_twenty_keeps_everything() -> None:
    ring = fresh(1, 256, 3)
    members = nodes(1)
    for i in range(1, 20):
        members = [*members, node(i)]
        before = ring
        ring = claim(ring, members, q=256, target_n=3, claimant="n00")
        assert {to for _, _, to in moves(before, ring)} <= {f"n{i:02d}"}
        report = balance(ring, 3)
        assert report.balanced
        assert report.ok or not report.feasible or balance(before, report.effective_n).violations


def test_large_ring_leaves_keep_spacing() -> None:
    # Observed, not promised in general: with many survivors and a large q the leaver's
    # partitions always find spaced receivers. (See docs/ring-and-claim.md for when not.)
    old = fresh(20, 1024, 3)
    for leaver in range(20):
        members = with_status(nodes(20), f"n{leaver:02d}", LEAVING)
        assert balance(claim(old, members, q=1024, target_n=3, claimant="n00"), 3).ok


def test_restripe_bumps_version_and_lays_out_afresh() -> None:
    members = nodes(4)
    clumped = Ring(
        q=16,
        owners=tuple(m.node_id for m in members for _ in range(4)),
        members=tuple(members),
        version=7,
        claimant="n00",
    )
    assert balance(clumped, 3).violations
    assert moves(clumped, claim(clumped, members, q=16, target_n=3, claimant="n00")) == []
    new = claim(clumped, members, q=16, target_n=3, claimant="n00", restripe=True)
    assert new.version == 8
    assert new.owners == fresh(4, 16, 3).owners
    assert balance(new, 3).ok


def test_claim_is_deterministic() -> None:
    members = [*nodes(7), node(7, JOINING)]
    old = fresh(7, 512, 3)
    a = claim(old, members, q=512, target_n=3, claimant="n00")
    b = claim(old, list(reversed(members)), q=512, target_n=3, claimant="n00")
    assert a == b


@pytest.mark.parametrize(
    ("ring", "members", "q", "n"),
    [
        (None, [node(0), node(0)], 8, 3),  # duplicate id
        (None, [node(0, LEAVING)], 8, 3),  # nobody to own partitions
        (None, nodes(2), 8, 0),  # target_n < 1
        (None, nodes(2), 12, 3),  # q not a power of two
        ("q8", nodes(2), 16, 3),  # resizing
    ],
)
def test_claim_rejects_bad_input(ring: str | None, members: list[Member], q: int, n: int) -> None:
    current = fresh(2, 8, 2) if ring == "q8" else None
    with pytest.raises(ValueError):
        claim(current, members, q=q, target_n=n, claimant="n00")


def test_claim_is_fast_at_q1024_and_twenty_nodes() -> None:
    start = time.perf_counter()
    ring = fresh(20, 1024, 3)
    joined = claim(ring, [*nodes(20), node(20, JOINING)], q=1024, target_n=3, claimant="n00")
    claim(
        joined,
        with_status([*nodes(20), node(20)], "n05", LEAVING),
        q=1024,
        target_n=3,
        claimant="n00",
    )
    assert time.perf_counter() - start < 1.0


# --- balance and moves ------------------------------------------------------------------------


def test_balance_report_on_a_handmade_ring() -> None:
    ring = Ring(
        q=8,
        owners=("a", "b", "a", "c", "b", "c", "a", "b"),
        members=(Member("a", "h:1"), Member("b", "h:2"), Member("c", "h:3"), Member("d", "h:4")),
        version=3,
        claimant="a",
    )
    report = balance(ring, 3)
    assert report.counts == (("a", 3), ("b", 3), ("c", 2), ("d", 0))
    assert (report.max_count, report.min_count) == (3, 0)
    assert report.ideal == 2.0
    assert report.imbalance == 0.5
    assert report.effective_n == 3
    # Windows of 3 with a repeat: a b a (0), c b c (3), a b a wrapping: 7 b,a,b (7), 6 a,b,a (6).
    assert report.violations == (0, 3, 6, 7)
    assert not report.balanced and not report.ok
    assert report.count("c") == 2 and report.count("zz") == 0
    assert report.feasible  # 4 nodes, ceil(8/4) * 3 <= 8


def test_balance_counts_a_leaving_node_that_still_owns() -> None:
    ring = Ring(
        q=4,
        owners=("a", "b", "a", "b"),
        members=(Member("a", "h:1"), Member("b", "h:2", LEAVING)),
        version=1,
        claimant="a",
    )
    assert dict(balance(ring, 2).counts) == {"a": 2, "b": 2}


def test_balance_with_n_one_never_violates() -> None:
    ring = Ring(q=4, owners=("a",) * 4, members=(Member("a", "h"),), version=1, claimant="a")
    report = balance(ring, 1)
    assert report.violations == () and report.ok


def test_moves_lists_changed_partitions() -> None:
    members = (Member("a", "h"), Member("b", "h"))
    old = Ring(q=4, owners=("a", "b", "a", "b"), members=members, version=1, claimant="a")
    new = Ring(q=4, owners=("a", "a", "b", "b"), members=members, version=2, claimant="a")
    assert moves(old, new) == [(1, "b", "a"), (2, "a", "b")]
    assert moves(old, old) == []
    with pytest.raises(ValueError):
        moves(old, Ring(q=8, owners=("a",) * 8, members=members, version=2, claimant="a"))


def test_join_counts_match_the_new_share() -> None:
    old = fresh(3, 1024, 3)
    new = claim(old, [*nodes(3), node(3)], q=1024, target_n=3, claimant="n00")
    assert Counter(new.owners)["n03"] == 256
    assert len(moves(old, new)) == 256
