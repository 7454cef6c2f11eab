"""Byte-bounded batches: the size estimate, the cut, and the three streams that use it (hint
replay, ownership handoff, range/scan replies) carrying items larger than a count would allow."""

from __future__ import annotations

from dataclasses import replace

from dynamokv.core.batches import fit_by_bytes, object_wire_bytes
from dynamokv.core.handoff import HandoffSettings
from dynamokv.core.hints import HintSettings
from dynamokv.core.messages import (
    ClusterReply,
    ClusterRequest,
    GetReply,
    GetRequest,
    HandoffBatch,
    HintBatch,
    KeyObject,
    LogReply,
    PutReply,
    PutRequest,
    ReplicaRangeReply,
)
from dynamokv.core.requests import RangeRequest, RangeResult
from dynamokv.core.settings import CoreSettings, Limits
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.wire.codec import encode
from tests.core.test_tables import local, put_item
from tests.pump import Pump

EMPTY = VectorClock.empty()
BUDGET = 20_000  # bytes per batch in these tests: a few 4 KB items each


def _obj(value: bytes | None, siblings: int = 1) -> VersionedObject:
    ctx = VectorClock.from_entries([(f"node-{i}.incarnation-7", i + 1, 1_700_000_000_000 + i)
                                    for i in range(5)])
    return VersionedObject(tuple(
        Sibling(value, Dot(f"actor-{i}.x", 2**40 + i), ctx, 1_700_000_000_000)
        for i in range(siblings)))


def _encoded_item(item: KeyObject) -> int:
    import msgpack

    from dynamokv.wire.values import _enc_object  # the wire form of one object

    return len(msgpack.packb([item.bucket, item.key, _enc_object(item.obj)]))


def test_the_estimate_never_undercounts_the_encoding() -> None:
    for value in (b"", b"x" * 10, b"y" * 70_000, None):
        for siblings in (1, 3):
            item = KeyObject("~t/orders-1", b"k" * 300, _obj(value, siblings))
            assert object_wire_bytes(item.bucket, item.key, item.obj) >= _encoded_item(item)


def test_fit_by_bytes_cuts_at_the_budget_and_a_large_first_row_goes_alone() -> None:
    assert fit_by_bytes([], 10, len) == 0
    assert fit_by_bytes([b"aaaa", b"bbbb", b"cccc"], 8, len) == 2
    assert fit_by_bytes([b"aaaa", b"bbbb", b"cccc"], 100, len) == 3
    assert fit_by_bytes([b"x" * 50, b"y"], 10, len) == 1  # oversized: alone, never stuck
    assert fit_by_bytes([b"y", b"x" * 50], 10, len) == 1


def _sent(pump: Pump, kind: type) -> list[object]:
    return [msg for _, _, msg in pump.sent if isinstance(msg, kind)]


def _assert_bounded(batches: list[object]) -> None:
    assert batches
    for batch in batches:
        items = batch.items  # type: ignore[attr-defined]
        assert len(items) == 1 or len(encode(batch)) <= BUDGET + 200, len(encode(batch))


def test_hint_batches_are_cut_by_bytes_and_a_huge_hint_still_drains() -> None:
    settings = CoreSettings(q=16, hints=replace(HintSettings(), batch_bytes_max=BUDGET))
    pump = Pump.with_nodes(5, settings=settings)
    pump.settle()
    victim = "n4"
    from tests.core.test_background import _mark_down, _mark_up, _replicas

    keys = [b"h%d" % i for i in range(200)]
    hinted = [k for k in keys if victim in _replicas(pump, k)][:12]
    _mark_down(pump, victim)
    for i, key in enumerate(hinted):
        value = b"v" * (60_000 if i == 0 else 4_000)  # one hint larger than a whole batch
        owner = next(n for n in _replicas(pump, key) if n != victim)
        assert isinstance(pump.request(owner, PutRequest(1, "b", key, value, EMPTY, w=3)),
                          PutReply)
    pump.sent.clear()
    _mark_up(pump, victim)
    pump.advance(10_000)
    _assert_bounded(_sent(pump, HintBatch))
    assert not any(node.store.hint_counts().get(victim) for node in pump.nodes.values())
    for i, key in enumerate(hinted):
        assert len(pump.stored(victim, "b", key).values()[0]) == (60_000 if i == 0 else 4_000)


def test_handoff_batches_are_cut_by_bytes_and_a_leaving_node_leaves() -> None:
    settings = CoreSettings(q=16, handoff=replace(HandoffSettings(), batch_bytes_max=BUDGET))
    pump = Pump.with_nodes(4, settings=settings)
    pump.settle()
    keys = [b"l%d" % i for i in range(60)]
    for i, key in enumerate(keys):
        value = b"w" * (50_000 if i % 20 == 0 else 4_000)
        assert isinstance(pump.request("n1", PutRequest(1, "b", key, value, EMPTY)), PutReply)
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    for req_id, (cmd, node) in enumerate((("leave", "n3"), ("plan", None), ("commit", None))):
        args = (node,) if node else ()
        assert isinstance(pump.request(claimant, ClusterRequest(req_id, cmd, *args)),
                          ClusterReply)
    pump.advance(40_000)
    _assert_bounded(_sent(pump, HandoffBatch))
    assert pump.nodes["n3"].left
    for i, key in enumerate(keys):
        got = pump.request("n1", GetRequest(2, "b", key))
        assert isinstance(got, GetReply) and len(got.values[0]) == (
            50_000 if i % 20 == 0 else 4_000)


def test_range_replies_are_cut_by_bytes_and_the_coordinator_pages_on() -> None:
    settings = CoreSettings(q=16, limits=replace(Limits(), reply_bytes_max=BUDGET))
    pump = Pump.with_nodes(3, settings=settings)
    pump.settle()
    sizes = {b"%02d" % i: (30_000 if i == 7 else 5_000) for i in range(20)}
    for sk, size in sizes.items():
        put_item(pump, "n1", b"cust-1", sk, b"v" * size)
    pump.sent.clear()
    seen: list[bytes] = []
    start: bytes | None = None
    for _ in range(40):
        page = local(pump, "n2", RangeRequest("~t/orders-1", b"cust-1", start, None,
                                                consistent=True))  # peers reply by message
        assert isinstance(page, RangeResult)
        seen.extend(len(v).to_bytes(4, "big") for _, v in page.items)
        if page.last_key is None:
            break
        start = page.last_key[len(b"cust-1") + 2:] + b"\x00"  # just after the last sort key
    # The leader answers consistent reads (LogReply); replicas answer eventual ones.
    replies = _sent(pump, ReplicaRangeReply) + _sent(pump, LogReply)
    assert replies
    assert all(len(r.items) == 1 or len(encode(r)) <= BUDGET + 200 for r in replies)
    assert any(r.more for r in replies)  # the budget did cut pages
    assert [int.from_bytes(s, "big") for s in seen] == list(sizes.values())
