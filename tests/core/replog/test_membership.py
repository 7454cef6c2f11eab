"""next_step: one membership change at a time, adding before removing."""

from __future__ import annotations

from dynamokv.core.replog.membership import Step, next_step

UP = frozenset({"a", "b", "c", "d"})


def test_a_missing_replica_learns_first_then_joins() -> None:
    assert next_step("a", ("a", "b"), ("a", "b", "c"), UP, frozenset()) == Step("learn", "c")
    assert next_step("a", ("a", "b"), ("a", "b", "c"), UP, frozenset({"c"})) == Step("add", "c")


def test_removal_waits_until_every_target_replica_is_a_voter() -> None:
    assert next_step("a", ("a", "b", "d"), ("a", "b", "c"), UP, frozenset()).action == "learn"
    assert next_step("a", ("a", "b", "c", "d"), ("a", "b", "c"), UP,
                     frozenset()) == Step("remove", "d")


def test_a_down_target_replica_blocks_removals() -> None:
    up = frozenset({"a", "b", "d"})
    assert next_step("a", ("a", "b", "d"), ("a", "b", "c"), up, frozenset()) == Step("none")


def test_a_leader_that_must_go_hands_over_first() -> None:
    assert next_step("d", ("a", "b", "c", "d"), ("a", "b", "c"), UP,
                     frozenset()) == Step("transfer", "a")


def test_leadership_moves_to_the_preferred_replica() -> None:
    assert next_step("b", ("a", "b", "c"), ("a", "b", "c"), UP, frozenset()) == Step("transfer",
                                                                                      "a")
    assert next_step("a", ("a", "b", "c"), ("a", "b", "c"), UP, frozenset()) == Step("none")
