"""The storage engine conformance kit: what every ``StorageEngine`` must do, as runnable checks.

Owns: the ``check_*`` functions, ``CHECKS``, ``check_survives_reopen``,
``run_model_comparison`` and ``check_engine``.
May import: stdlib, ``dynamokv.storage``, ``dynamokv.errors``; ``hypothesis`` only inside
``run_model_comparison`` (it is a test dependency, not a runtime one).

Shipped in the package (like ``trio.testing``) so that a third-party engine can prove itself
with the same checks as ours::

    from dynamokv.storage.conformance import check_engine
    check_engine(lambda: MyEngine(fresh_dir()), reopen=lambda: MyEngine(last_dir()))

Every check takes ``make_engine``, a factory returning a new, empty engine each call, and closes
what it opens. ``reopen`` (durable engines only) must open the storage that the most recent
``make_engine()`` call created, after that engine was closed. Checks fail with
``AssertionError``, so they work inside any test runner.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from dynamokv.errors import StorageError
from dynamokv.storage._scan import SCAN_CHUNK
from dynamokv.storage.base import StorageEngine

EngineFactory = Callable[[], StorageEngine]


@contextmanager
def _opened(make_engine: EngineFactory) -> Iterator[StorageEngine]:
    engine = make_engine()
    try:
        yield engine
    finally:
        engine.close()


def _scan(engine: StorageEngine, *args: Any, **kwargs: Any) -> list[tuple[bytes, bytes]]:
    return list(engine.scan(*args, **kwargs))


def _keys(engine: StorageEngine, *args: Any, **kwargs: Any) -> list[bytes]:
    return [k for k, _ in engine.scan(*args, **kwargs)]


def _expect_scan(
    model: dict[bytes, bytes],
    start: bytes = b"",
    end: bytes | None = None,
    reverse: bool = False,
    limit: int | None = None,
) -> list[tuple[bytes, bytes]]:
    """What ``scan`` must return over a dict ``model``."""
    pairs = sorted((k, v) for k, v in model.items() if k >= start and (end is None or k < end))
    if reverse:
        pairs.reverse()
    return pairs if limit is None else pairs[:limit]


def _put_all(engine: StorageEngine, pairs: Iterable[tuple[bytes, bytes]]) -> None:
    for k, v in pairs:
        engine.put(k, v)


# -- the checks -------------------------------------------------------------------------------


def check_info(make_engine: EngineFactory) -> None:
    """``info`` names the engine and says in words what a write guarantees."""
    with _opened(make_engine) as engine:
        info = engine.info
        assert isinstance(info.name, str) and info.name
        assert isinstance(info.durable, bool)
        assert isinstance(info.sync_mode, str) and info.sync_mode


def check_get_put_delete_overwrite(make_engine: EngineFactory) -> None:
    with _opened(make_engine) as engine:
        assert engine.get(b"k") is None
        engine.put(b"k", b"v1")
        assert engine.get(b"k") == b"v1"
        engine.put(b"k", b"v2")
        assert engine.get(b"k") == b"v2", "put must overwrite"
        engine.put(b"other", b"x")
        engine.delete(b"k")
        assert engine.get(b"k") is None
        engine.delete(b"k")  # absent: no error
        engine.delete(b"never-written")
        assert engine.get(b"other") == b"x", "delete must touch only its key"
        engine.put(b"k", b"v3")
        assert engine.get(b"k") == b"v3", "a deleted key can be written again"
        assert isinstance(engine.get(b"k"), bytes)


def check_empty_key_and_value(make_engine: EngineFactory) -> None:
    with _opened(make_engine) as engine:
        engine.put(b"", b"empty key")
        engine.put(b"empty value", b"")
        assert engine.get(b"") == b"empty key"
        assert engine.get(b"empty value") == b"", "an empty value is not an absent one"
        assert _scan(engine) == [(b"", b"empty key"), (b"empty value", b"")]
        assert _scan(engine, b"", b"\x00") == [(b"", b"empty key")]
        engine.delete(b"")
        assert engine.get(b"") is None
        assert _keys(engine) == [b"empty value"]


def check_binary_keys(make_engine: EngineFactory) -> None:
    """Every byte value is legal anywhere in a key or a value, including 0x00 and 0xff."""
    keys = [bytes([b]) for b in range(256)]
    keys += [b"\x00", b"\x00\x00", b"\xff", b"\xff\xff", b"a\x00b", b"a\xffb", b"\x00\xff\x00"]
    keys = sorted(set(keys))
    with _opened(make_engine) as engine:
        for k in keys:
            engine.put(k, k + b"\x00\xff" + k)
        for k in keys:
            assert engine.get(k) == k + b"\x00\xff" + k
        assert _keys(engine) == keys
        assert engine.get(b"a\x00") is None, "a\\x00 must not be confused with a"


def check_bytewise_order(make_engine: EngineFactory) -> None:
    """Keys sort by memcmp, shorter first on a tie: b"a" < b"a\\x00" < b"b"."""
    rng = random.Random(1)
    keys = {b"", b"a", b"a\x00", b"a\x00\x00", b"a\x01", b"aa", b"b", b"\x7f", b"\x80", b"\xff"}
    keys |= {rng.randbytes(rng.randrange(0, 12)) for _ in range(300)}
    with _opened(make_engine) as engine:
        shuffled = list(keys)
        rng.shuffle(shuffled)
        _put_all(engine, ((k, b"v") for k in shuffled))
        got = _keys(engine)
        assert got == sorted(keys), "scan must return keys in bytewise order"
        assert got.index(b"a") < got.index(b"a\x00") < got.index(b"b")
        assert _keys(engine, reverse=True) == sorted(keys, reverse=True)


def check_scan_bounds(make_engine: EngineFactory) -> None:
    """``start`` is inclusive, ``end`` exclusive; bounds need not be present keys."""
    model = {k: k.upper() for k in (b"a", b"b", b"ba", b"c", b"d")}
    with _opened(make_engine) as engine:
        _put_all(engine, model.items())
        assert _keys(engine, b"b", b"d") == [b"b", b"ba", b"c"]
        assert _keys(engine, b"b") == [b"b", b"ba", b"c", b"d"]
        assert _keys(engine, b"", b"b") == [b"a"]
        assert _keys(engine, b"bb", b"cc") == [b"c"]
        assert _keys(engine, b"b", b"b\x00") == [b"b"], "b\\x00 is the first key after b"
        assert _keys(engine, b"a\x00", b"ba") == [b"b"]
        for start, end in [(b"b", b"d"), (b"", None), (b"0", b"z"), (b"ba", None)]:
            assert _scan(engine, start, end) == _expect_scan(model, start, end)
        assert _scan(engine, b"b", b"d")[0] == (b"b", b"B"), "scan yields the values too"


def check_reverse_scan(make_engine: EngineFactory) -> None:
    model = {k: k * 2 for k in (b"", b"a", b"b", b"ba", b"c", b"d", b"\xff")}
    with _opened(make_engine) as engine:
        _put_all(engine, model.items())
        assert _keys(engine, reverse=True) == [b"\xff", b"d", b"c", b"ba", b"b", b"a", b""]
        assert _keys(engine, b"b", b"d", reverse=True) == [b"c", b"ba", b"b"]
        assert _keys(engine, b"bb", b"cc", reverse=True) == [b"c"]
        assert _keys(engine, b"", b"a", reverse=True) == [b""]
        for start, end in [(b"b", b"ba"), (b"a", None), (b"", b"\xff"), (b"c", b"c\x00")]:
            assert _scan(engine, start, end, reverse=True) == _expect_scan(
                model, start, end, reverse=True
            )


def check_scan_limit(make_engine: EngineFactory) -> None:
    model = {bytes([c]): b"v" for c in b"abcdefgh"}
    with _opened(make_engine) as engine:
        _put_all(engine, model.items())
        for limit in (0, 1, 3, 8, 100, None):
            for reverse in (False, True):
                for start, end in [(b"", None), (b"c", b"g")]:
                    got = _scan(engine, start, end, reverse=reverse, limit=limit)
                    assert got == _expect_scan(model, start, end, reverse, limit), (
                        f"scan({start!r}, {end!r}, reverse={reverse}, limit={limit})"
                    )
        try:
            engine.scan(limit=-1)
        except ValueError:
            pass
        else:
            raise AssertionError("a negative limit must raise ValueError")


def check_scan_empty_ranges(make_engine: EngineFactory) -> None:
    with _opened(make_engine) as engine:
        assert _scan(engine) == []
        assert _scan(engine, reverse=True) == []
        assert _scan(engine, b"a", b"z") == []
        _put_all(engine, [(b"a", b"1"), (b"c", b"3")])
        assert _scan(engine, b"b", b"c") == [], "no key in [b, c)"
        assert _scan(engine, b"b", b"c", reverse=True) == []
        assert _scan(engine, b"c", b"c") == [], "start == end is empty"
        assert _scan(engine, b"d", b"a") == [], "start > end is empty"
        assert _scan(engine, b"d", b"a", reverse=True) == []
        assert _scan(engine, b"d") == []
        assert _scan(engine, b"d", reverse=True) == []


def check_long_scans(make_engine: EngineFactory) -> None:
    """Scans longer than one engine read chunk, with writes interleaved, never fail."""
    n = 3 * SCAN_CHUNK + 17
    model = {b"m" + i.to_bytes(4, "big"): i.to_bytes(4, "big") * 3 for i in range(n)}
    with _opened(make_engine) as engine:
        engine.write_batch(model.items())
        assert _scan(engine) == _expect_scan(model)
        assert _scan(engine, reverse=True) == _expect_scan(model, reverse=True)
        lo, hi = b"m" + (100).to_bytes(4, "big"), b"m" + (700).to_bytes(4, "big")
        for limit in (None, SCAN_CHUNK, SCAN_CHUNK + 1, 2 * SCAN_CHUNK - 1):
            for reverse in (False, True):
                assert _scan(engine, lo, hi, reverse=reverse, limit=limit) == _expect_scan(
                    model, lo, hi, reverse, limit
                )
        # Writes while a scan is part-way must not break it. Whether the scan sees a write
        # ahead of its position depends on the engine (one snapshot or one per chunk), but
        # keys come out once each, in order, every untouched key comes out, and nothing
        # written behind the scan position does.
        deleted: set[bytes] = set()
        seen: list[bytes] = []
        for i, (k, v) in enumerate(engine.scan(b"m", b"n")):
            seen.append(k)
            assert v == model[k]
            if i % 50 == 0:
                engine.put(b"a" + k, b"behind")
                engine.put(b"z" + k, b"past the end")
                ahead = b"m" + (i + 2).to_bytes(4, "big")
                engine.delete(ahead)
                deleted.add(ahead)
        assert seen == sorted(set(seen)), "keys must come out once each, in order"
        assert set(seen) >= set(model) - deleted, "a key nobody touched went missing"
        assert not any(k.startswith((b"a", b"z")) for k in seen)


def check_large_keys_and_values(make_engine: EngineFactory) -> None:
    """Keys up to a DynamoDB-sized 2.4 KiB (sharing long prefixes) and 1 MiB values."""
    prefix = b"p" * 550
    model: dict[bytes, bytes] = {}
    for i in range(SCAN_CHUNK + 44):  # one shared long prefix, more keys than a read chunk
        model[prefix + i.to_bytes(2, "big")] = i.to_bytes(2, "big")
    for size in (509, 510, 511, 512, 1024, 2048, 2400):
        model[b"k" * size] = size.to_bytes(4, "big")
        model[b"k" * (size - 1) + b"\x00"] = b"z"
        model[b"k" * (size - 1) + b"\xff"] = b"f"
    model[prefix] = b"the prefix itself"
    model[prefix[:-1]] = b"shorter"
    model[prefix + b"\x00"] = b"prefix then zero"
    big = bytes(range(256)) * 4096  # 1 MiB
    model[b"big"] = big
    with _opened(make_engine) as engine:
        keys = list(model)
        random.Random(2).shuffle(keys)
        for k in keys:
            engine.put(k, model[k])
        for k, v in model.items():
            assert engine.get(k) == v, f"get of a {len(k)}-byte key"
        assert engine.get(prefix + b"\x00\x00\x00") is None
        assert engine.get(b"k" * 3000) is None
        assert _scan(engine) == _expect_scan(model)
        assert _scan(engine, reverse=True) == _expect_scan(model, reverse=True)
        mid_lo, mid_hi = prefix + (7).to_bytes(2, "big"), prefix + (290).to_bytes(2, "big")
        for start, end in [(mid_lo, mid_hi), (prefix, mid_hi), (b"k" * 600, b"k" * 2049)]:
            for reverse in (False, True):
                for limit in (None, 5, SCAN_CHUNK + 3):
                    assert _scan(engine, start, end, reverse=reverse, limit=limit) == (
                        _expect_scan(model, start, end, reverse, limit)
                    )
        for i in range(0, SCAN_CHUNK + 44, 2):
            engine.delete(prefix + i.to_bytes(2, "big"))
            del model[prefix + i.to_bytes(2, "big")]
        engine.delete(b"k" * 2048)
        del model[b"k" * 2048]
        assert _scan(engine) == _expect_scan(model)
        assert _scan(engine, reverse=True) == _expect_scan(model, reverse=True)


def check_write_batch(make_engine: EngineFactory) -> None:
    """A batch applies in order and all at once; a batch that fails applies nothing."""
    with _opened(make_engine) as engine:
        engine.put(b"old", b"1")
        engine.write_batch(
            [
                (b"a", b"1"),
                (b"a", None),  # put then delete: gone
                (b"b", None),
                (b"b", b"2"),  # delete then put: present
                (b"c", b"3"),
                (b"c", b"33"),  # last put wins
                (b"old", None),
                (b"", b"empty"),
            ]
        )
        assert engine.get(b"a") is None
        assert engine.get(b"b") == b"2"
        assert engine.get(b"c") == b"33"
        assert engine.get(b"old") is None
        assert _keys(engine) == [b"", b"b", b"c"]
        engine.write_batch([])  # empty batch: no-op
        engine.write_batch(iter([(b"d", b"4")]))  # any iterable
        assert engine.get(b"d") == b"4"

        class Boom(Exception):
            pass

        def failing() -> Iterator[tuple[bytes, bytes | None]]:
            yield (b"e", b"5")
            yield (b"b", None)
            raise Boom("the caller's iterable failed half-way")

        try:
            engine.write_batch(failing())
        except Boom:
            pass
        else:
            raise AssertionError("write_batch must propagate the iterable's exception")
        assert engine.get(b"e") is None, "a failed batch must apply nothing"
        assert engine.get(b"b") == b"2", "a failed batch must apply nothing"
        engine.put(b"f", b"6")  # and the engine is still usable
        assert engine.get(b"f") == b"6"


def check_is_empty(make_engine: EngineFactory) -> None:
    with _opened(make_engine) as engine:
        assert engine.is_empty()
        engine.put(b"", b"")
        assert not engine.is_empty(), "an empty key with an empty value is still an entry"
        engine.delete(b"")
        assert engine.is_empty()
        engine.write_batch([(b"x" * 1000, b"v")])
        assert not engine.is_empty()
        engine.write_batch([(b"x" * 1000, None)])
        assert engine.is_empty()


def check_sync(make_engine: EngineFactory) -> None:
    with _opened(make_engine) as engine:
        engine.sync()  # on an empty engine
        engine.put(b"k", b"v")
        engine.sync()
        assert engine.get(b"k") == b"v"


def check_close(make_engine: EngineFactory) -> None:
    """``close`` is idempotent, and a closed engine fails with ``StorageError``."""
    engine = make_engine()
    engine.put(b"k", b"v")
    engine.close()
    engine.close()
    for op in (
        lambda: engine.get(b"k"),
        lambda: engine.put(b"k", b"v"),
        lambda: engine.delete(b"k"),
        lambda: engine.write_batch([(b"k", b"v")]),
        lambda: list(engine.scan()),
        lambda: engine.is_empty(),
    ):
        try:
            op()
        except StorageError:
            pass
        else:
            raise AssertionError("an operation on a closed engine must raise StorageError")


CHECKS: tuple[Callable[[EngineFactory], None], ...] = (
    check_info,
    check_get_put_delete_overwrite,
    check_empty_key_and_value,
    check_binary_keys,
    check_bytewise_order,
    check_scan_bounds,
    check_reverse_scan,
    check_scan_limit,
    check_scan_empty_ranges,
    check_long_scans,
    check_large_keys_and_values,
    check_write_batch,
    check_is_empty,
    check_sync,
    check_close,
)


def check_survives_reopen(make_engine: EngineFactory, reopen: EngineFactory) -> None:
    """What a durable engine acknowledged is there after close and reopen, deletes included."""
    model: dict[bytes, bytes] = {}
    engine = make_engine()
    try:
        assert engine.info.durable, "only durable engines are reopened"
        for i in range(500):
            k = i.to_bytes(2, "big") * (1 + i % 3)
            model[k] = k * 3
            engine.put(k, model[k])
        batch: list[tuple[bytes, bytes | None]] = [(b"", b"e"), (b"\xff" * 2000, b"long")]
        batch += [(i.to_bytes(2, "big"), None) for i in range(0, 500, 7)]
        engine.write_batch(batch)
        for k, v in batch:
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        engine.delete(b"\x00\x01")
        model.pop(b"\x00\x01", None)
    finally:
        engine.close()
    for round_ in range(2):
        again = reopen()
        try:
            assert _scan(again) == _expect_scan(model), f"reopen {round_ + 1} lost data"
            for k, v in model.items():
                assert again.get(k) == v
            assert again.get(b"\x00\x01") is None
            again.put(b"round", bytes([round_]))
            model[b"round"] = bytes([round_])
        finally:
            again.close()


def run_model_comparison(
    make_engine: EngineFactory, *, max_examples: int = 60, steps: int = 40
) -> None:
    """A hypothesis state machine: random puts, deletes, batches, gets and scans with random
    bounds, each compared against a plain dict."""
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        RuleBasedStateMachine,
        invariant,
        rule,
        run_state_machine_as_test,
    )

    # Few distinct bytes, short keys: collisions, shared prefixes and the 0x00/0xff edges are
    # common, which is where ordering and bounds bugs live.
    keys = st.lists(st.sampled_from([0x00, 0x01, 0x61, 0x62, 0xFF]), max_size=5).map(bytes)
    values = st.binary(max_size=16)
    bounds = st.none() | keys

    class EngineVsDict(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.engine = make_engine()
            self.model: dict[bytes, bytes] = {}

        @rule(k=keys, v=values)
        def put(self, k: bytes, v: bytes) -> None:
            self.engine.put(k, v)
            self.model[k] = v

        @rule(k=keys)
        def delete(self, k: bytes) -> None:
            self.engine.delete(k)
            self.model.pop(k, None)

        @rule(ops=st.lists(st.tuples(keys, st.none() | values), max_size=8))
        def batch(self, ops: list[tuple[bytes, bytes | None]]) -> None:
            self.engine.write_batch(ops)
            for k, v in ops:
                if v is None:
                    self.model.pop(k, None)
                else:
                    self.model[k] = v

        @rule(k=keys)
        def get(self, k: bytes) -> None:
            assert self.engine.get(k) == self.model.get(k)

        @rule(
            start=keys,
            end=bounds,
            reverse=st.booleans(),
            limit=st.none() | st.integers(min_value=0, max_value=10),
        )
        def scan(self, start: bytes, end: bytes | None, reverse: bool, limit: int | None) -> None:
            got = list(self.engine.scan(start, end, reverse=reverse, limit=limit))
            assert got == _expect_scan(self.model, start, end, reverse, limit)

        @invariant()
        def emptiness(self) -> None:
            assert self.engine.is_empty() == (not self.model)

        def teardown(self) -> None:
            self.engine.close()

    # hypothesis leaves this one function unannotated.
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        EngineVsDict,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def check_engine(make_engine: EngineFactory, reopen: EngineFactory | None = None) -> None:
    """Run the whole kit: every check, the dict-model comparison, and (given ``reopen``) the
    durability check."""
    for check in CHECKS:
        check(make_engine)
    run_model_comparison(make_engine)
    if reopen is not None:
        check_survives_reopen(make_engine, reopen)


__all__ = [
    "CHECKS",
    "EngineFactory",
    "check_engine",
    "check_survives_reopen",
    "run_model_comparison",
]
