"""Hypothesis laws for ``dynamokv.core.vclock``: ``merge`` is a join, ``descends`` a partial order.

Counters come from a tiny alphabet of actors so that generated clocks overlap often; timestamps
vary independently because ordering must ignore them.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dynamokv.core.vclock import Order, PruneLimits, VectorClock

ACTORS = ["a.1", "b.1", "c.1", "d.1"]

entries = st.tuples(
    st.sampled_from(ACTORS), st.integers(min_value=1, max_value=4), st.integers(0, 10**6)
)
clocks = st.lists(entries, max_size=len(ACTORS) + 2).map(VectorClock.from_entries)


def counters(clock: VectorClock) -> dict[str, int]:
    return clock.as_dict()


# --- construction invariants --------------------------------------------------------------------


@given(clocks)
def test_entries_sorted_unique_positive(a: VectorClock) -> None:
    actors = [e[0] for e in a.entries]
    assert actors == sorted(set(actors))
    assert all(c > 0 for _, c, _ in a.entries)


# --- merge is a join ----------------------------------------------------------------------------


@given(clocks, clocks)
def test_merge_commutative(a: VectorClock, b: VectorClock) -> None:
    assert a.merge(b) == b.merge(a)


@given(clocks, clocks, clocks)
def test_merge_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_idempotent(a: VectorClock) -> None:
    assert a.merge(a) == a


@given(clocks)
def test_empty_is_merge_identity(a: VectorClock) -> None:
    assert a.merge(VectorClock.empty()) == a
    assert VectorClock.empty().merge(a) == a


@given(clocks, clocks)
def test_merge_descends_both(a: VectorClock, b: VectorClock) -> None:
    m = a.merge(b)
    assert m.descends(a)
    assert m.descends(b)


@given(clocks, clocks, clocks)
def test_merge_is_least_upper_bound(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    if c.descends(a) and c.descends(b):
        assert c.descends(a.merge(b))


# --- descends is a partial order ----------------------------------------------------------------


@given(clocks)
def test_descends_reflexive(a: VectorClock) -> None:
    assert a.descends(a)


@given(clocks, clocks)
def test_descends_antisymmetric_ignoring_timestamps(a: VectorClock, b: VectorClock) -> None:
    if a.descends(b) and b.descends(a):
        assert counters(a) == counters(b)


@given(clocks, clocks, clocks)
def test_descends_transitive(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    # Build a chain so the premise holds often enough to matter.
    ab = a.merge(b)
    abc = ab.merge(c)
    assert abc.descends(ab) and ab.descends(a) and abc.descends(a)
    if a.descends(b) and b.descends(c):
        assert a.descends(c)


@given(clocks)
def test_everything_descends_empty(a: VectorClock) -> None:
    assert a.descends(VectorClock.empty())


@given(clocks, clocks)
def test_descends_iff_pointwise_ge(a: VectorClock, b: VectorClock) -> None:
    expected = all(a.get(x) >= b.get(x) for x in ACTORS)
    assert a.descends(b) is expected


# --- compare agrees with descends ---------------------------------------------------------------


@given(clocks, clocks)
def test_compare_consistent_with_descends(a: VectorClock, b: VectorClock) -> None:
    ge, le = a.descends(b), b.descends(a)
    expected = {
        (True, True): Order.EQUAL,
        (True, False): Order.AFTER,
        (False, True): Order.BEFORE,
        (False, False): Order.CONCURRENT,
    }[(ge, le)]
    assert a.compare(b) is expected


@given(clocks, clocks)
def test_compare_flips(a: VectorClock, b: VectorClock) -> None:
    flip = {
        Order.BEFORE: Order.AFTER,
        Order.AFTER: Order.BEFORE,
        Order.EQUAL: Order.EQUAL,
        Order.CONCURRENT: Order.CONCURRENT,
    }
    assert b.compare(a) is flip[a.compare(b)]


# --- increment ----------------------------------------------------------------------------------


@given(clocks, st.sampled_from(ACTORS), st.integers(0, 10**6))
def test_increment_is_after(a: VectorClock, actor: str, ts: int) -> None:
    b = a.increment(actor, ts)
    assert b.compare(a) is Order.AFTER
    assert a.compare(b) is Order.BEFORE
    assert b.get(actor) == a.get(actor) + 1
    assert all(b.get(x) == a.get(x) for x in ACTORS if x != actor)
    assert b.contains(actor, b.get(actor)) and not a.contains(actor, b.get(actor))


@given(clocks, clocks, st.sampled_from(ACTORS), st.integers(0, 10**6))
def test_increment_of_merge_is_after_both(
    a: VectorClock, b: VectorClock, actor: str, ts: int
) -> None:
    c = a.merge(b).increment(actor, ts)
    assert c.compare(a) is Order.AFTER
    assert c.compare(b) is Order.AFTER


# --- contains -----------------------------------------------------------------------------------


@given(clocks, st.sampled_from(ACTORS), st.integers(1, 6))
def test_contains_matches_descends_of_single_event(a: VectorClock, actor: str, n: int) -> None:
    assert a.contains(actor, n) is a.descends(VectorClock.from_entries([(actor, n, 0)]))


# --- prune --------------------------------------------------------------------------------------

many_actor_clocks = st.lists(
    st.tuples(
        st.sampled_from([f"n{i}.1" for i in range(12)]),
        st.integers(1, 4),
        st.integers(0, 100_000),
    ),
    max_size=16,
).map(VectorClock.from_entries)


def _limits(small: int, extra: int, young: int, old_extra: int) -> PruneLimits:
    return PruneLimits(small, small + extra, young, young + old_extra)


limits = st.builds(
    _limits, st.integers(0, 8), st.integers(0, 4), st.integers(0, 50_000), st.integers(0, 50_000)
)


@given(many_actor_clocks, limits, st.integers(0, 200_000))
def test_prune_is_subset_of_original(a: VectorClock, lim: PruneLimits, now: int) -> None:
    p = a.prune(now, lim)
    assert set(p.entries) <= set(a.entries)
    assert a.descends(p)
    assert list(p.entries) == sorted(p.entries)


@given(many_actor_clocks, limits, st.integers(0, 200_000))
def test_prune_respects_limits(a: VectorClock, lim: PruneLimits, now: int) -> None:
    p = a.prune(now, lim)
    dropped = set(a.entries) - set(p.entries)
    if len(a) <= lim.small_vclock:
        assert not dropped
    assert len(p) >= min(len(a), lim.small_vclock)
    for _, _, ts in dropped:
        assert now - ts >= lim.young_vclock_ms
        # Oldest first: everything dropped is no younger than anything kept.
        assert all(ts <= kts for _, _, kts in p.entries)
    if len(p) > lim.small_vclock:
        # Still above small: pruning stopped only because the oldest survivor is too young, or
        # the clock is within big and that survivor is not yet old.
        oldest = min(p.entries, key=lambda e: (e[2], e[0]))
        age = now - oldest[2]
        assert age < lim.young_vclock_ms or (len(p) <= lim.big_vclock and age <= lim.old_vclock_ms)


@given(many_actor_clocks, limits, st.integers(0, 200_000))
def test_prune_idempotent(a: VectorClock, lim: PruneLimits, now: int) -> None:
    p = a.prune(now, lim)
    assert p.prune(now, lim) == p
