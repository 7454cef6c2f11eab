"""Hypothesis invariants of ``dynamokv.core.claim`` over ring shapes.

Shapes: q a power of two from 8 to 1024, 1 to 20 members with arbitrary ids, target_n 1 to 5.
``feasible`` (some balanced ring has no repeated owner in any window) is exactly
``ceil(q / S) * min(N, S) <= q``; the tests check claim against it rather than assuming it.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.core.claim import balance, claim, moves
from dynamokv.core.ring import Member, MemberStatus, Ring

QS = [8, 16, 32, 64, 128, 256, 512, 1024]
OWNING = (MemberStatus.JOINING, MemberStatus.VALID)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


@st.composite
def shapes(draw: st.DrawFn, extra: int = 0) -> tuple[int, int, list[Member]]:
    """``(q, target_n, members)``: ``extra`` more ids than members are drawn, for joiners."""
    q = draw(st.sampled_from(QS))
    n = draw(st.integers(min_value=1, max_value=5))
    count = draw(st.integers(min_value=1, max_value=20))
    names = draw(st.lists(ids, min_size=count + extra, max_size=count + extra, unique=True))
    return q, n, [Member(name, f"{name}:7000") for name in names]


def check_layout(ring: Ring, n: int) -> None:
    """Every partition has an owning owner, counts are floor/ceil, windows distinct if feasible."""
    owning = {m.node_id for m in ring.members if m.status in OWNING}
    assert set(ring.owners) <= owning
    report = balance(ring, n)
    assert report.balanced, report.counts
    s = len(owning)
    assert report.feasible == (-(-ring.q // s) * min(n, s) <= ring.q)
    if report.feasible:
        assert report.violations == ()
        for p in range(ring.q):
            assert len(ring.preference_list(p, n)) == min(n, s)


PROPS = settings(max_examples=60, deadline=None)


@PROPS
@given(shapes())
def test_fresh_ring_invariants(shape: tuple[int, int, list[Member]]) -> None:
    q, n, members = shape
    ring = claim(None, members, q=q, target_n=n, claimant=members[0].node_id)
    assert ring.version == 1
    check_layout(ring, n)
    report = balance(ring, n)
    if not report.feasible:
        # Infeasible means infeasible: a balanced ring of this shape must repeat somewhere.
        assert report.violations


@PROPS
@given(shapes(extra=1))
def test_join_moves_only_to_the_joiner_and_keeps_invariants(
    shape: tuple[int, int, list[Member]],
) -> None:
    q, n, everyone = shape
    *members, joiner = everyone
    old = claim(None, members, q=q, target_n=n, claimant=members[0].node_id)
    joining = Member(joiner.node_id, joiner.address, MemberStatus.JOINING)
    new = claim(old, [*members, joining], q=q, target_n=n, claimant=members[0].node_id)
    assert new.version == old.version + 1
    moved = moves(old, new)
    assert all(to == joiner.node_id for _, _, to in moved)
    assert len(moved) == len(new.partitions_of(joiner.node_id))
    report = balance(new, n)
    assert report.balanced
    # The joiner's picks are always spaced; old nodes keep their places, so the whole ring is
    # spaced whenever the new shape is feasible and the old ring was already spaced for the new
    # effective n (it grows with S while S < N).
    if report.feasible and not balance(old, report.effective_n).violations:
        assert report.violations == ()


@PROPS
@given(shapes(), st.data())
def test_leave_moves_only_the_leavers_partitions(
    shape: tuple[int, int, list[Member]], data: st.DataObject
) -> None:
    q, n, members = shape
    if len(members) < 2:
        return
    old = claim(None, members, q=q, target_n=n, claimant=members[0].node_id)
    leaver = data.draw(st.sampled_from(members)).node_id
    status = data.draw(st.sampled_from([MemberStatus.LEAVING, MemberStatus.EXITING]))
    after = [Member(m.node_id, m.address, status) if m.node_id == leaver else m for m in members]
    claimant = next(m.node_id for m in after if m.node_id != leaver)
    new = claim(old, after, q=q, target_n=n, claimant=claimant)
    moved = moves(old, new)
    assert all(frm == leaver for _, frm, _ in moved)
    assert len(moved) == len(old.partitions_of(leaver))
    assert leaver not in new.owners
    assert balance(new, n).balanced  # spacing may suffer: see docs/ring-and-claim.md


@PROPS
@given(shapes(extra=2), st.data())
def test_mixed_changes_move_only_leavers_or_to_joiners(
    shape: tuple[int, int, list[Member]], data: st.DataObject
) -> None:
    q, n, everyone = shape
    *members, j1, j2 = everyone
    old = claim(None, members, q=q, target_n=n, claimant=members[0].node_id)
    leavers = set(data.draw(st.lists(st.sampled_from(members), max_size=len(members) - 1)))
    leaving = {m.node_id for m in leavers}
    after = [
        Member(m.node_id, m.address, MemberStatus.LEAVING) if m.node_id in leaving else m
        for m in members
    ]
    after += [Member(j.node_id, j.address, MemberStatus.JOINING) for j in (j1, j2)]
    new = claim(old, after, q=q, target_n=n, claimant=j1.node_id)
    for _, frm, to in moves(old, new):
        assert frm in leaving or to in (j1.node_id, j2.node_id)
    assert not leaving & set(new.owners)
    assert balance(new, n).balanced


@PROPS
@given(shapes(extra=1), st.randoms(use_true_random=False))
def test_claim_is_deterministic(shape: tuple[int, int, list[Member]], rnd: random.Random) -> None:
    q, n, everyone = shape
    *members, joiner = everyone
    old = claim(None, members, q=q, target_n=n, claimant="c")
    assert old == claim(None, list(reversed(members)), q=q, target_n=n, claimant="c")
    target = [*members, joiner]
    shuffled = list(target)
    rnd.shuffle(shuffled)
    assert claim(old, target, q=q, target_n=n, claimant="c") == claim(
        old, shuffled, q=q, target_n=n, claimant="c"
    )


@PROPS
@given(shapes())
def test_claim_without_changes_moves_nothing(shape: tuple[int, int, list[Member]]) -> None:
    q, n, members = shape
    old = claim(None, members, q=q, target_n=n, claimant="c")
    again = claim(old, members, q=q, target_n=n, claimant="c")
    assert moves(old, again) == []
    assert again.version == old.version + 1
