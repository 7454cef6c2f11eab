"""Unit tests for ``dynamokv.core.vclock``: increment, merge, ordering, containment, pruning."""

from __future__ import annotations

import pytest

from dynamokv.core.vclock import Order, PruneLimits, VectorClock


def vc(**counters: int) -> VectorClock:
    """A clock with the given counters, every timestamp 0 (ordering ignores timestamps)."""
    return VectorClock.from_entries([(a, c, 0) for a, c in counters.items()])


# --- construction -------------------------------------------------------------------------------


def test_empty_is_a_singleton_value() -> None:
    assert VectorClock.empty() == VectorClock()
    assert len(VectorClock.empty()) == 0
    assert VectorClock.empty().get("a") == 0
    assert VectorClock.empty().as_dict() == {}


def test_from_entries_sorts_by_actor() -> None:
    clock = VectorClock.from_entries([("c", 1, 5), ("a", 2, 6), ("b", 3, 7)])
    assert clock.entries == (("a", 2, 6), ("b", 3, 7), ("c", 1, 5))


def test_from_entries_dedupe_keeps_larger_counter() -> None:
    clock = VectorClock.from_entries([("a", 1, 100), ("a", 3, 50), ("a", 2, 200)])
    assert clock.entries == (("a", 3, 50),)


def test_from_entries_dedupe_equal_counters_keeps_later_timestamp() -> None:
    # Deterministic whichever order the duplicates arrive in.
    one = VectorClock.from_entries([("a", 2, 10), ("a", 2, 30)])
    two = VectorClock.from_entries([("a", 2, 30), ("a", 2, 10)])
    assert one == two == VectorClock((("a", 2, 30),))


def test_from_entries_drops_non_positive_counters() -> None:
    assert VectorClock.from_entries([("a", 0, 1), ("b", -1, 1)]) == VectorClock.empty()


def test_equal_clocks_hash_alike() -> None:
    one = VectorClock.from_entries([("b", 1, 1), ("a", 1, 1)])
    two = VectorClock.from_entries([("a", 1, 1), ("b", 1, 1)])
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two}) == 1


# --- increment ----------------------------------------------------------------------------------


def test_increment_new_actor_starts_at_one() -> None:
    clock = VectorClock.empty().increment("a", 1000)
    assert clock.entries == (("a", 1, 1000),)


def test_increment_existing_actor_bumps_counter_and_timestamp() -> None:
    clock = VectorClock.empty().increment("a", 1).increment("b", 2).increment("a", 3)
    assert clock.entries == (("a", 2, 3), ("b", 1, 2))


def test_increment_does_not_mutate_original() -> None:
    base = vc(a=1)
    base.increment("a", 5)
    assert base == vc(a=1)


def test_with_counter_sets_and_keeps_sorted() -> None:
    clock = vc(a=1, c=1).with_counter("b", 7, 9)
    assert clock.entries == (("a", 1, 0), ("b", 7, 9), ("c", 1, 0))
    assert clock.with_counter("b", 2, 1).get("b") == 2


# --- merge --------------------------------------------------------------------------------------


def test_merge_takes_pointwise_max() -> None:
    merged = vc(a=3, b=1).merge(vc(b=4, c=2))
    assert merged.as_dict() == {"a": 3, "b": 4, "c": 2}
    assert [e[0] for e in merged.entries] == ["a", "b", "c"]


def test_merge_with_empty_is_identity() -> None:
    clock = vc(a=1)
    assert clock.merge(VectorClock.empty()) == clock
    assert VectorClock.empty().merge(clock) == clock


def test_merge_equal_counters_keeps_later_timestamp() -> None:
    one = VectorClock((("a", 1, 10),))
    two = VectorClock((("a", 1, 20),))
    assert one.merge(two) == two.merge(one) == two


# --- descends / compare -------------------------------------------------------------------------


def test_descends() -> None:
    assert vc(a=2, b=1).descends(vc(a=1))
    assert vc(a=1).descends(vc(a=1))
    assert vc(a=1).descends(VectorClock.empty())
    assert VectorClock.empty().descends(VectorClock.empty())
    assert not vc(a=1).descends(vc(a=2))
    assert not vc(a=1).descends(vc(b=1))
    assert not VectorClock.empty().descends(vc(a=1))


def test_descends_ignores_timestamps() -> None:
    assert VectorClock((("a", 1, 0),)).descends(VectorClock((("a", 1, 999),)))


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        (vc(a=1), vc(a=1), Order.EQUAL),
        (VectorClock.empty(), VectorClock.empty(), Order.EQUAL),
        (vc(a=1), vc(a=2), Order.BEFORE),
        (VectorClock.empty(), vc(a=1), Order.BEFORE),
        (vc(a=1), vc(a=1, b=1), Order.BEFORE),
        (vc(a=2), vc(a=1), Order.AFTER),
        (vc(a=1, b=1), VectorClock.empty(), Order.AFTER),
        (vc(a=1), vc(b=1), Order.CONCURRENT),
        (vc(a=2, b=1), vc(a=1, b=2), Order.CONCURRENT),
    ],
)
def test_compare(a: VectorClock, b: VectorClock, order: Order) -> None:
    assert a.compare(b) is order


def test_compare_is_antisymmetric_in_direction() -> None:
    flipped = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE}
    for a, b in [(vc(a=1), vc(a=2)), (vc(a=1), vc(b=1)), (vc(a=1), vc(a=1))]:
        assert b.compare(a) is flipped.get(a.compare(b), a.compare(b))


def test_compare_equal_ignores_timestamps() -> None:
    assert VectorClock((("a", 1, 1),)).compare(VectorClock((("a", 1, 2),))) is Order.EQUAL


# --- contains -----------------------------------------------------------------------------------


def test_contains() -> None:
    clock = vc(a=3)
    assert clock.contains("a", 1)
    assert clock.contains("a", 3)
    assert not clock.contains("a", 4)
    assert not clock.contains("b", 1)
    assert VectorClock.empty().contains("a", 0)


# --- prune --------------------------------------------------------------------------------------

LIMITS = PruneLimits(small_vclock=3, big_vclock=5, young_vclock_ms=1_000, old_vclock_ms=10_000)
NOW = 100_000


def aged(ages: list[int]) -> VectorClock:
    """A clock whose i-th actor ``a{i}`` was last incremented ``ages[i]`` ms before ``NOW``."""
    return VectorClock.from_entries([(f"a{i}", 1, NOW - age) for i, age in enumerate(ages)])


def test_default_limits_are_riaks() -> None:
    limits = PruneLimits()
    assert (limits.small_vclock, limits.big_vclock) == (50, 50)
    assert limits.young_vclock_ms == 20_000
    assert limits.old_vclock_ms == 86_400_000


def test_small_clock_never_pruned_however_old() -> None:
    clock = aged([10**9, 10**9, 10**9])
    assert clock.prune(NOW, LIMITS) is clock


def test_young_entries_never_pruned_however_big() -> None:
    clock = aged([10, 20, 30, 40, 50, 60, 70, 80])
    assert clock.prune(NOW, LIMITS) == clock


def test_big_clock_pruned_oldest_first_down_to_big() -> None:
    # Seven entries, all past young but none past old: only the excess over big goes.
    clock = aged([2_000, 9_000, 3_000, 8_000, 4_000, 5_000, 6_000])
    pruned = clock.prune(NOW, LIMITS)
    assert len(pruned) == LIMITS.big_vclock
    assert set(pruned.as_dict()) == {"a0", "a2", "a4", "a5", "a6"}


def test_old_entries_pruned_down_to_small() -> None:
    # Within big, but every entry is past old: pruned down to small, oldest first.
    clock = aged([20_000, 50_000, 30_000, 40_000, 60_000])
    pruned = clock.prune(NOW, LIMITS)
    assert len(pruned) == LIMITS.small_vclock
    assert set(pruned.as_dict()) == {"a0", "a2", "a3"}


def test_prune_stops_at_first_young_entry() -> None:
    # Past big; the two oldest are old enough to go, then a young one blocks further pruning.
    clock = aged([50_000, 40_000, 500, 400, 300, 200, 100])
    pruned = clock.prune(NOW, LIMITS)
    assert set(pruned.as_dict()) == {"a2", "a3", "a4", "a5", "a6"}


def test_prune_mid_aged_entries_within_big_kept() -> None:
    # Within big, older than young but not old: nothing to do.
    clock = aged([2_000, 3_000, 4_000, 5_000])
    assert clock.prune(NOW, LIMITS) == clock


def test_prune_keeps_entries_sorted_and_intact() -> None:
    clock = aged([20_000, 50_000, 30_000, 40_000, 60_000])
    pruned = clock.prune(NOW, LIMITS)
    assert list(pruned.entries) == sorted(pruned.entries)
    assert set(pruned.entries) <= set(clock.entries)


def test_prune_ties_on_timestamp_broken_by_actor() -> None:
    clock = aged([20_000] * 5)
    pruned = clock.prune(NOW, LIMITS)
    assert set(pruned.as_dict()) == {"a2", "a3", "a4"}
