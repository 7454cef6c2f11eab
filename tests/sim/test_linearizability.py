"""The per-key linearizability checker: hand-made histories with known answers, agreement with
a brute-force search on small histories, generated linearizable histories always pass, and one
corrupted result is (almost always) caught."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.sim.linearizability import (
    Op,
    apply,
    canonical,
    check_history,
    check_key,
)
from dynamokv.sim.linearizability_gen import corrupt, random_history


def op(kind: str, invoke: float, complete: float | None, key: str = "k", **kw: object) -> Op:
    return Op(key, kind, invoke, complete, **kw)  # type: ignore[arg-type]


# ---- known violations ----------------------------------------------------------------------


def test_stale_read_after_an_acknowledged_write_is_a_violation() -> None:
    history = [
        op("put", 0, 10, value=b"1", label="a"),
        op("put", 20, 30, value=b"2", label="b"),
        op("read", 40, 50, result=b"1", label="r"),
    ]
    verdict = check_key(history)
    assert verdict.outcome == "violation"
    assert [o.label for o in verdict.prefix] == ["a", "b"]
    assert verdict.prefix_state == b"2"
    assert [(o.label, why) for o, why in verdict.stuck] == [
        ("r", "read b'1' but the item was b'2'")]
    text = verdict.explain()
    assert "key 'k': violation" in text and "r [40..50] read -> b'1'" in text


def test_a_lost_write_is_a_violation() -> None:
    history = [op("put", 0, 10, value=b"x"), op("read", 20, 30, result=None)]
    assert check_key(history).outcome == "violation"
    # two increments acknowledged with the same new value: one was lost
    adds = [op("add", 0, 10, amount=1, result=1), op("add", 5, 12, amount=1, result=1)]
    assert check_key(adds).outcome == "violation"


def test_two_conditional_puts_on_one_expected_value_cannot_both_succeed() -> None:
    history = [
        op("put", 0, 1, value=b"v0"),
        op("cput", 2, 10, value=b"a", expected=b"v0", result=True, label="A"),
        op("cput", 3, 9, value=b"b", expected=b"v0", result=True, label="B"),
    ]
    verdict = check_key(history)
    assert verdict.outcome == "violation"
    assert len(verdict.prefix) == 2
    assert any("applied, but the item was" in why for _, why in verdict.stuck)


def test_read_new_then_old_is_a_violation() -> None:
    """The write is concurrent with both reads, but once one read saw it, a later one cannot
    miss it."""
    history = [
        op("put", 0, 1, value=b"old"),
        op("put", 5, 100, value=b"new"),
        op("read", 10, 20, result=b"new"),
        op("read", 30, 40, result=b"old"),
    ]
    assert check_key(history).outcome == "violation"


def test_a_failed_conditional_put_is_an_observation() -> None:
    # the item was "a" throughout: a cput expecting "a" cannot have failed
    history = [op("put", 0, 1, value=b"a"),
               op("cput", 5, 10, value=b"b", expected=b"a", result=False)]
    assert check_key(history).outcome == "violation"


# ---- known linearizable ----------------------------------------------------------------------


def test_a_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in (b"1", b"2"):
        history = [op("put", 0, 1, value=b"1"), op("put", 5, 20, value=b"2"),
                   op("read", 6, 8, result=seen)]
        assert check_key(history).outcome == "ok"


def test_racing_conditional_puts_one_wins_one_fails() -> None:
    history = [
        op("cput", 0, 10, value=b"a", expected=None, result=True),
        op("cput", 0, 10, value=b"b", expected=None, result=False),
        op("read", 11, 12, result=b"a"),
    ]
    assert check_key(history).outcome == "ok"


def test_an_unknown_write_may_take_effect_late_or_never() -> None:
    late = [op("put", 0, 1, value=b"1"), op("put", 2, None, value=b"2"),
            op("read", 50, 60, result=b"1"), op("read", 70, 80, result=b"2")]
    never = [op("put", 0, 1, value=b"1"), op("put", 2, None, value=b"2"),
             op("read", 50, 60, result=b"1")]
    assert check_key(late).outcome == "ok"
    assert check_key(never).outcome == "ok"
    # ... but not before it was invoked
    early = [op("put", 0, 1, value=b"1"), op("read", 2, 3, result=b"2"),
             op("put", 10, None, value=b"2")]
    assert check_key(early).outcome == "violation"


def test_add_counts_absent_as_zero_and_numbers_compare_as_numbers() -> None:
    history = [op("add", 0, 1, amount=5, result=5), op("add", 2, 3, amount=2, result=b"7.0"),
               op("read", 4, 5, result=b"7"), op("delete", 6, 7),
               op("add", 8, 9, amount=1, result=1)]
    assert check_key(history).outcome == "ok"
    assert canonical(b"7.50") == b"7.5" and canonical(b"x7") == b"x7"
    # ADD to a value that is not a number never applies
    assert apply(b"text", op("add", 0, 1, amount=1, result=1))[0] is False
    bad = [op("put", 0, 1, value=b"text"), op("add", 2, 3, amount=1, result=1)]
    assert "not a number" in check_key(bad).explain()


def test_conditional_delete() -> None:
    history = [op("put", 0, 1, value=b"a"),
               op("cdelete", 2, 3, expected=b"a", result=True),
               op("cdelete", 4, 5, expected=b"a", result=False),
               op("read", 6, 7, result=None)]
    assert check_key(history).outcome == "ok"


# ---- keys, bounds, budget, bad input ----------------------------------------------------------


def test_histories_are_checked_per_key() -> None:
    history = [op("put", 0, 1, key="a", value=b"1"), op("read", 2, 3, key="a", result=b"1"),
               op("put", 0, 1, key="b", value=b"1"), op("read", 2, 3, key="b", result=b"0")]
    verdict = check_history(history)
    assert verdict.outcome == "violation"
    assert [v.key for v in verdict.violations] == ["b"]
    assert "key 'b': violation" in verdict.explain() and "key 'a'" not in verdict.explain()


def test_a_key_over_the_bound_is_skipped_with_a_reason() -> None:
    history = random_history(random.Random(1), 50)
    verdict = check_key(history, max_ops=20)
    assert verdict.outcome == "skipped"
    assert "more than the bound of 20" in verdict.message
    assert check_history(history, max_ops_per_key=20).outcome == "skipped"


def test_an_exhausted_step_budget_is_unknown_not_a_verdict() -> None:
    # many concurrent blind writes with nothing to pin their order: the search must try orders
    history = [op("put", 0, 100, value=str(i).encode()) for i in range(12)]
    history.append(op("read", 200, 201, result=b"99"))
    verdict = check_key(history, step_budget=50)
    assert verdict.outcome == "unknown"
    assert "step budget" in verdict.message


def test_bad_input_is_refused_precisely() -> None:
    with pytest.raises(ValueError, match="completes before it is invoked"):
        check_key([op("read", 5, 1, result=None)])
    with pytest.raises(ValueError, match="unknown operation kind 'incr'"):
        check_key([op("incr", 0, 1)])
    with pytest.raises(ValueError, match="two keys"):
        check_key([op("read", 0, 1, key="a"), op("read", 0, 1, key="b")])
    with pytest.raises(ValueError, match="must carry the new value"):
        check_key([op("add", 0, 1, amount=1)])


def test_the_checker_is_fast_enough_on_a_long_concurrent_history() -> None:
    history = random_history(random.Random(7), 500, concurrency=5)
    assert check_key(history).outcome == "ok"
    broken, _ = corrupt(random.Random(8), history)
    assert check_key(broken).outcome in ("ok", "violation")


# ---- against brute force, and generated histories --------------------------------------------


def _brute_force(ops: list[Op]) -> bool:
    """Every order of every subset of the unknown ops with all the definite ones."""
    ops = [o for o in ops if not (o.kind == "read" and o.complete is None)]
    definite = [o for o in ops if o.complete is not None]
    unknown = [o for o in ops if o.complete is None]
    for r in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, r):
            for order in itertools.permutations(definite + list(chosen)):
                if _legal_order(list(order)):
                    return True
    return False


def _legal_order(order: list[Op]) -> bool:
    for i, a in enumerate(order):
        if any(b.complete is not None and b.complete < a.invoke for b in order[i + 1:]):
            return False
    state = None
    for o in order:
        canon = Op(o.key, o.kind, o.invoke, o.complete, canonical(o.value),
                   canonical(o.expected), o.amount,
                   canonical(o.result) if o.kind == "read" else o.result)
        legal, state = apply(state, canon)
        if not legal:
            return False
    return True


histories = st.builds(
    lambda seed, count, conc, spread, unknown: random_history(
        random.Random(seed), count, concurrency=conc, spread=spread, unknown=unknown),
    st.integers(0, 2**32), st.integers(1, 6), st.integers(1, 4), st.sampled_from([2, 8, 20]),
    st.sampled_from([0.0, 0.3, 0.6]))


@settings(max_examples=150, deadline=None)
@given(histories, st.integers(0, 2**32), st.booleans())
def test_agrees_with_brute_force_on_small_histories(
        history: list[Op], seed: int, broken: bool) -> None:
    if broken and any(o.complete is not None and o.kind not in ("put", "delete")
                      for o in history):
        history, _ = corrupt(random.Random(seed), history)
    assert (check_key(history).outcome == "ok") == _brute_force(history)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 200), st.integers(1, 5),
       st.sampled_from([2, 8, 20]), st.sampled_from([0.0, 0.1]))
def test_generated_linearizable_histories_pass(
        seed: int, count: int, conc: int, spread: int, unknown: float) -> None:
    history = random_history(random.Random(seed), count, concurrency=conc, spread=spread,
                             unknown=unknown)
    verdict = check_key(history)
    assert verdict.outcome == "ok", verdict.explain()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 150), st.integers(1, 5))
def test_a_read_of_a_value_never_written_is_always_caught(
        seed: int, count: int, conc: int) -> None:
    rng = random.Random(seed)
    history = random_history(rng, count, concurrency=conc)
    reads = [i for i, o in enumerate(history) if o.kind == "read"]
    if not reads:
        return
    i = rng.choice(reads)
    history[i] = Op("k", "read", history[i].invoke, history[i].complete, result=b"never")
    assert check_key(history).outcome == "violation"


def test_one_corrupted_result_is_almost_always_caught() -> None:
    """A changed result can happen to be explainable by another order (a read moved to a value
    a concurrent write made); most are not. Seeded, so the figure is fixed."""
    caught = 0
    for seed in range(200):
        rng = random.Random(seed)
        history = random_history(rng, rng.randint(10, 80), concurrency=rng.randint(1, 5),
                                 unknown=rng.choice([0.0, 0.1]))
        broken, _ = corrupt(rng, history)
        caught += check_key(broken).outcome == "violation"
    assert caught >= 160  # measured: 182 of 200
