"""Unit tests for ``dynamokv.core.versioned``: the Dynamo scenarios on dotted version vectors."""

from __future__ import annotations

from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import (
    Dot,
    Sibling,
    VersionedObject,
    apply_write,
    is_descendant,
    new_sibling,
    resolve_lww,
    sync,
)

EMPTY = VectorClock.empty()


def put(
    local: VersionedObject | None,
    actor: str,
    value: bytes | None,
    context: VectorClock = EMPTY,
    ts: int = 0,
) -> VersionedObject:
    """A coordinated write: stamp at ``actor`` and apply to its local object."""
    return apply_write(local, new_sibling(local, actor, value, context, ts))


def dots(obj: VersionedObject) -> list[tuple[str, int]]:
    return [(s.dot.actor, s.dot.counter) for s in obj.siblings]


def sib(actor: str, n: int, value: bytes | None, ts: int = 0, **ctx: int) -> Sibling:
    context = VectorClock.from_entries([(a.replace("_", "."), c, 0) for a, c in ctx.items()])
    return Sibling(value, Dot(actor, n), context, ts)


# --- basic shape --------------------------------------------------------------------------------


def test_first_write() -> None:
    obj = put(None, "a.1", b"x", ts=5)
    assert dots(obj) == [("a.1", 1)]
    assert obj.values() == [b"x"]
    assert obj.context().as_dict() == {"a.1": 1}
    assert not obj.is_deleted()
    assert obj.max_timestamp_ms() == 5


def test_sibling_clock_adds_its_dot() -> None:
    s = sib("a.1", 3, b"x", b_1=2)
    assert s.clock().as_dict() == {"a.1": 3, "b.1": 2}
    assert s.obsoleted_by(VectorClock.from_entries([("a.1", 3, 0)]))
    assert not s.obsoleted_by(VectorClock.from_entries([("a.1", 2, 0)]))


def test_of_sorts_dedupes_and_drops_obsoleted() -> None:
    s1, s2 = sib("b.1", 1, b"x"), sib("a.1", 1, b"y")
    s3 = sib("c.1", 1, b"z", a_1=1)  # saw a.1:1
    obj = VersionedObject.of([s1, s2, s1, s3])
    assert dots(obj) == [("b.1", 1), ("c.1", 1)]


def test_empty_object() -> None:
    empty = VersionedObject(())
    assert empty.context() == EMPTY
    assert empty.values() == []
    assert empty.is_deleted()  # nothing live: reads as not found
    assert empty.max_timestamp_ms() == 0
    assert sync(None, None) == empty
    assert sync(empty, None) == empty


# --- concurrent writers -------------------------------------------------------------------------


def test_two_blind_writes_at_one_coordinator_give_two_siblings() -> None:
    # The case plain per-node clocks get wrong: both writers send no context to the same node.
    obj = put(None, "a.1", b"one", ts=1)
    obj = put(obj, "a.1", b"two", ts=2)
    assert dots(obj) == [("a.1", 1), ("a.1", 2)]
    assert obj.values() == [b"one", b"two"]
    assert obj.context().as_dict() == {"a.1": 2}


def test_write_with_merged_context_resolves_siblings() -> None:
    obj = put(put(None, "a.1", b"one"), "a.1", b"two")
    obj = put(obj, "a.1", b"merged", obj.context())
    assert dots(obj) == [("a.1", 3)]
    assert obj.values() == [b"merged"]


def test_merged_context_resolves_at_another_coordinator_too() -> None:
    at_a = put(put(None, "a.1", b"one"), "a.1", b"two")
    at_b = put(at_a, "b.1", b"merged", at_a.context())
    assert dots(at_b) == [("b.1", 1)]
    # Syncing back to a stale replica removes both siblings there as well.
    assert sync(at_a, at_b) == at_b


def test_stale_context_replaces_only_what_it_saw() -> None:
    v1 = put(None, "a.1", b"one")
    seen_by_writer = v1.context()  # the writer read before "two" arrived
    obj = put(v1, "a.1", b"two")
    obj = put(obj, "a.1", b"three", seen_by_writer)
    assert dots(obj) == [("a.1", 2), ("a.1", 3)]
    assert obj.values() == [b"two", b"three"]


def test_stale_context_through_another_coordinator() -> None:
    v1 = put(None, "a.1", b"one")
    at_a = put(v1, "a.1", b"two")
    at_b = put(v1, "b.1", b"three", v1.context())  # b.1 only had v1
    assert dots(at_b) == [("b.1", 1)]
    merged = sync(at_a, at_b)
    assert dots(merged) == [("a.1", 2), ("b.1", 1)]
    assert merged == sync(at_b, at_a)


def test_concurrent_writes_at_different_coordinators_are_kept() -> None:
    a = put(None, "a.1", b"x")
    b = put(None, "b.1", b"y")
    assert dots(sync(a, b)) == [("a.1", 1), ("b.1", 1)]


# --- tombstones ---------------------------------------------------------------------------------


def test_delete_with_context_hides_value() -> None:
    obj = put(None, "a.1", b"x")
    gone = put(obj, "a.1", None, obj.context())
    assert dots(gone) == [("a.1", 2)]
    assert gone.siblings[0].tombstone
    assert gone.is_deleted()
    assert gone.values() == []
    # The tombstone still carries causality: it obsoletes the value on a stale replica.
    assert sync(obj, gone) == gone


def test_write_with_tombstone_context_supersedes_it() -> None:
    obj = put(None, "a.1", b"x")
    gone = put(obj, "a.1", None, obj.context())
    back = put(gone, "b.1", b"y", gone.context())
    assert dots(back) == [("b.1", 1)]
    assert not back.is_deleted()
    assert back.values() == [b"y"]
    assert sync(gone, back) == back


def test_blind_write_is_concurrent_with_tombstone() -> None:
    obj = put(None, "a.1", b"x")
    gone = put(obj, "a.1", None, obj.context())
    both = put(gone, "a.1", b"y")
    assert dots(both) == [("a.1", 2), ("a.1", 3)]
    assert not both.is_deleted()
    assert both.values() == [b"y"]


def test_delete_without_context_keeps_value() -> None:
    obj = put(None, "a.1", b"x")
    both = put(obj, "b.1", None)
    assert not both.is_deleted()
    assert both.values() == [b"x"]


# --- last writer wins ---------------------------------------------------------------------------


def test_resolve_lww_keeps_latest_and_widens_context() -> None:
    a = put(None, "a.1", b"old", ts=10)
    b = put(None, "b.1", b"new", ts=20)
    obj = sync(a, b)
    won = resolve_lww(obj)
    assert dots(won) == [("b.1", 1)]
    assert won.values() == [b"new"]
    assert won.siblings[0].context == obj.context()
    # Synced into a replica that only had the loser, the winner obsoletes it.
    assert sync(a, won) == won
    assert sync(obj, won) == won
    assert is_descendant(won, a) and is_descendant(won, obj)


def test_resolve_lww_breaks_timestamp_ties_by_dot() -> None:
    obj = sync(put(None, "b.1", b"b", ts=7), put(None, "a.1", b"a", ts=7))
    assert resolve_lww(obj).values() == [b"b"]


def test_resolve_lww_is_identity_on_one_sibling() -> None:
    obj = put(None, "a.1", b"x")
    assert resolve_lww(obj) is obj
    assert resolve_lww(VersionedObject(())) == VersionedObject(())


def test_resolve_lww_same_on_every_replica() -> None:
    obj = sync(put(None, "a.1", b"x", ts=1), put(None, "b.1", b"y", ts=2))
    assert resolve_lww(obj) == resolve_lww(VersionedObject.of(list(reversed(obj.siblings))))


def test_resolve_lww_keeps_unseen_concurrent_write() -> None:
    # The resolution only obsoletes what it saw; a write it never saw stays a sibling.
    won = resolve_lww(sync(put(None, "a.1", b"x", ts=1), put(None, "b.1", b"y", ts=2)))
    other = put(None, "c.1", b"z", ts=0)
    assert dots(sync(won, other)) == [("b.1", 1), ("c.1", 1)]


def test_lww_losers_stay_lost_after_winner_is_superseded() -> None:
    # Regression: s beats u by LWW on replica A; t (which saw only s) supersedes s on B. Once s is
    # dropped, u must not come back from a stale replica C, whatever order the syncs run in, and
    # the object's context must still cover u (else its actor could re-issue u's dot).
    s_only = put(None, "a.1", b"s", ts=10)
    u_only = put(None, "c.1", b"u", ts=5)
    a = resolve_lww(sync(s_only, u_only))
    b = put(s_only, "b.1", b"t", s_only.context(), ts=20)
    c = u_only
    left = sync(sync(a, b), c)
    right = sync(a, sync(b, c))
    assert dots(left) == dots(right) == [("b.1", 1)]
    assert left == right
    assert left.context().contains("c.1", 1)
    assert new_sibling(left, "c.1", b"again", EMPTY, 30).dot == Dot("c.1", 2)


def test_lww_winner_superseded_by_same_actor_keeps_knowledge() -> None:
    # Regression for dot re-issue: b.1:1 loses to a.1:1 by LWW, then a.1:2, written by a client
    # that had read only a.1:1, supersedes a.1:1. The object must remember b.1:1, so b.1's next
    # write gets a fresh dot.
    a_only = put(None, "a.1", b"a", ts=8)
    obj = resolve_lww(sync(put(None, "b.1", b"b", ts=4), a_only))
    obj = put(obj, "a.1", b"a2", a_only.context(), ts=12)
    assert dots(obj) == [("a.1", 2)]
    assert obj.context().get("b.1") == 1
    fresh = new_sibling(obj, "b.1", b"b2", EMPTY, 16)
    assert fresh.dot == Dot("b.1", 2)


# --- new_sibling --------------------------------------------------------------------------------


def test_new_sibling_counts_from_local_object() -> None:
    obj = put(put(put(None, "a.1", b"1"), "a.1", b"2"), "a.1", b"3")
    s = new_sibling(obj, "a.1", b"4", EMPTY, 0)
    assert s.dot == Dot("a.1", 4)
    assert s.context == EMPTY


def test_new_sibling_counts_from_context() -> None:
    ctx = VectorClock.from_entries([("a.1", 5, 0), ("b.1", 2, 0)])
    assert new_sibling(None, "a.1", b"x", ctx, 0).dot == Dot("a.1", 6)
    assert new_sibling(put(None, "a.1", b"y"), "a.1", b"x", ctx, 0).dot == Dot("a.1", 6)
    assert new_sibling(None, "c.1", b"x", ctx, 0).dot == Dot("c.1", 1)


def test_new_sibling_counts_obsoleted_dots_of_local_object() -> None:
    # The local object holds only b.1's sibling, but its context remembers a.1:3.
    local = VersionedObject((sib("b.1", 1, b"y", a_1=3),))
    assert new_sibling(local, "a.1", b"x", EMPTY, 0).dot == Dot("a.1", 4)


def test_new_sibling_never_reuses_a_dot() -> None:
    local: VersionedObject | None = None
    seen: set[Dot] = set()
    for i in range(6):
        ctx = local.context() if (local is not None and i % 2) else EMPTY
        s = new_sibling(local, "a.1", f"v{i}".encode(), ctx, i)
        assert s.dot not in seen
        assert not ctx.contains(s.dot.actor, s.dot.counter)
        seen.add(s.dot)
        local = apply_write(local, s)


# --- sync and is_descendant ---------------------------------------------------------------------


def test_sync_joins_contexts_of_one_dot() -> None:
    narrow = VersionedObject((sib("a.1", 1, b"x"),))
    wide = VersionedObject((sib("a.1", 1, b"x", b_1=1),))
    assert sync(narrow, wide) == sync(wide, narrow) == wide


def test_is_descendant() -> None:
    v1 = put(None, "a.1", b"x")
    v2 = put(v1, "a.1", b"y", v1.context())
    assert is_descendant(v2, v1)
    assert not is_descendant(v1, v2)
    assert is_descendant(v1, None)
    other = put(None, "b.1", b"z")
    assert not is_descendant(v2, other)
    assert is_descendant(sync(v2, other), other)


def test_size_bytes() -> None:
    s = sib("a.1", 1, b"abcd", b_1=1)
    assert s.size_bytes() == 4 + 16 * 2
    tomb = sib("a.1", 2, None)
    assert tomb.size_bytes() == 16
    assert VersionedObject((s,)).size_bytes() == s.size_bytes()
