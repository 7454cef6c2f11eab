"""Table operations through the pump: range reads in sort order with paging, and per-key
Paxos compare-and-set (sequential increments, racing conditional creates, failures)."""

from __future__ import annotations

from dynamokv.core.effects import Reply
from dynamokv.core.events import LocalRequested
from dynamokv.core.hashing import compose_key
from dynamokv.core.messages import ErrorReply, PutReply, PutRequest
from dynamokv.core.requests import (
    CasAborted,
    CasRequest,
    CasResult,
    RangeRequest,
    RangeResult,
)
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump

BUCKET = "~t/orders-1"


def local(pump: Pump, node: str, request: object, client: int = -1) -> object:
    pump.replies.pop(client, None)
    pump._run(node, pump.nodes[node].handle(LocalRequested(client, request), pump.now_ms,
                                            1_000_000 + pump.now_ms))
    for _ in range(500):
        pump.deliver_all()
        if pump.replies.get(client):
            return pump.replies[client][0]
        pump.advance(10)
    raise AssertionError("no reply")


def put_item(pump: Pump, node: str, pk: bytes, sk: bytes, value: bytes) -> None:
    req = PutRequest(1, BUCKET, compose_key(pk, sk), value, VectorClock.empty())
    assert isinstance(local(pump, node, req), PutReply)


def test_range_reads_one_partition_key_in_sort_order_with_paging(pump3: Pump) -> None:
    for i in (5, 1, 9, 3, 7):
        put_item(pump3, "n1", b"cust-1", b"%02d" % i, b"v%d" % i)
    put_item(pump3, "n2", b"cust-2", b"01", b"other")
    got = local(pump3, "n3", RangeRequest(BUCKET, b"cust-1", None, None))
    assert isinstance(got, RangeResult)
    assert [v for _, v in got.items] == [b"v1", b"v3", b"v5", b"v7", b"v9"]
    assert got.last_key is None
    page = local(pump3, "n2", RangeRequest(BUCKET, b"cust-1", b"02", b"08", limit=2))
    assert isinstance(page, RangeResult)
    assert [v for _, v in page.items] == [b"v3", b"v5"]
    assert page.last_key == compose_key(b"cust-1", b"05")
    back = local(pump3, "n1", RangeRequest(BUCKET, b"cust-1", None, None, reverse=True,
                                            consistent=True))
    assert isinstance(back, RangeResult)
    assert [v for _, v in back.items] == [b"v9", b"v7", b"v5", b"v3", b"v1"]


def test_sequential_cas_increments_from_every_node(pump3: Pump) -> None:
    def incr(old: bytes | None) -> bytes:
        return str(int(old or b"0") + 1).encode()

    for i in range(12):
        node = ("n1", "n2", "n3")[i % 3]
        got = local(pump3, node, CasRequest(BUCKET, b"counter", incr))
        assert isinstance(got, CasResult), got
        assert got.new == str(i + 1).encode()
    read = local(pump3, "n2", CasRequest(BUCKET, b"counter", None, read_only=True))
    assert isinstance(read, CasResult) and read.old == b"12"


def test_racing_conditional_creates_exactly_one_wins(pump3: Pump) -> None:
    class Exists(Exception):
        pass

    def create(tag: bytes):  # type: ignore[no-untyped-def]
        def decide(old: bytes | None) -> bytes:
            if old is not None:
                raise Exists(old)
            return tag
        return decide

    # Start both proposals before delivering anything: they contend for the same key.
    for client, node, tag in ((-1, "n1", b"a"), (-2, "n2", b"b"), (-3, "n3", b"c")):
        pump3._run(node, pump3.nodes[node].handle(
            LocalRequested(client, CasRequest(BUCKET, b"lock", create(tag))), pump3.now_ms,
            1_000_000 + pump3.now_ms))
    for _ in range(300):
        pump3.advance(10)
        if all(pump3.replies.get(c) for c in (-1, -2, -3)):
            break
    results = [pump3.replies[c][0] for c in (-1, -2, -3)]
    winners = [r for r in results if isinstance(r, CasResult)]
    losers = [r for r in results if isinstance(r, CasAborted)]
    assert len(winners) == 1, results
    assert len(losers) == 2
    final = local(pump3, "n3", CasRequest(BUCKET, b"lock", None, read_only=True))
    assert isinstance(final, CasResult) and final.old == winners[0].new


def test_cas_needs_a_majority_of_primaries(pump3: Pump) -> None:
    pump3.down.add("n3")
    for node in pump3.nodes.values():
        node.detector.unreachable("n3", pump3.now_ms)
    ok = local(pump3, "n1", CasRequest(BUCKET, b"k", lambda old: b"x"))
    assert isinstance(ok, CasResult)
    pump3.down.add("n2")
    pump3.nodes["n1"].detector.unreachable("n2", pump3.now_ms)
    failed = local(pump3, "n1", CasRequest(BUCKET, b"k", lambda old: b"y", timeout_ms=2000))
    assert isinstance(failed, ErrorReply)
    assert failed.code in ("QuorumNotMet", "RequestTimeout")


def test_reserved_buckets_are_refused_from_kv_clients(pump3: Pump) -> None:
    reply = pump3.request("n1", PutRequest(1, BUCKET, b"k", b"v", VectorClock.empty()))
    assert isinstance(reply, ErrorReply) and reply.code == "InvalidRequest"


def test_unused_reply_type_check() -> None:
    assert Reply(1, None).client == 1


def test_local_requests_are_foreground_traffic_for_admission_control(pump3: Pump) -> None:
    node = pump3.nodes["n2"]
    seen = node.admission._seen
    put_item(pump3, "n2", b"cust-9", b"01", b"v")
    local(pump3, "n2", RangeRequest(BUCKET, b"cust-9", None, None), client=-2)
    local(pump3, "n2", CasRequest(BUCKET, b"adm", lambda old: b"x"), client=-3)
    assert node.admission._seen == seen + 3  # every DynamoDB-API request reported a latency
    assert not node._client_started  # and none is left tracked once answered
