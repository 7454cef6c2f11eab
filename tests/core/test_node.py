"""NodeCore end to end through the in-memory pump: quorums, siblings, forwarding, failures."""

from __future__ import annotations

from dynamokv.core.messages import (
    BucketPropsReply,
    BucketPropsRequest,
    ErrorReply,
    GetReply,
    GetRequest,
    PutReply,
    PutRequest,
    RingReply,
    RingRequest,
    StatusReply,
    StatusRequest,
)
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump

EMPTY = VectorClock.empty()


def put(pump: Pump, node: str, key: bytes, value: bytes | None, ctx: VectorClock = EMPTY,
        **kw: object) -> object:
    return pump.request(node, PutRequest(1, "b", key, value, ctx, **kw))  # type: ignore[arg-type]


def get(pump: Pump, node: str, key: bytes, **kw: object) -> object:
    return pump.request(node, GetRequest(2, "b", key, **kw))  # type: ignore[arg-type]


def test_cluster_forms_with_every_node_owning_partitions(pump3: Pump) -> None:
    ring = pump3.nodes["n1"].ring
    assert ring is not None
    assert sorted(ring.node_ids()) == ["n1", "n2", "n3"]
    assert all(ring.partitions_of(n) for n in ("n1", "n2", "n3"))
    assert {n.ring for n in pump3.nodes.values()} == {ring}


def test_write_then_read_from_every_node(pump3: Pump) -> None:
    reply = put(pump3, "n2", b"k", b"v1")
    assert isinstance(reply, PutReply)
    for node in ("n1", "n2", "n3"):
        got = get(pump3, node, b"k")
        assert isinstance(got, GetReply)
        assert got.values == (b"v1",)
        assert got.found
    for node in ("n1", "n2", "n3"):  # N=3 on three nodes: every node holds a copy
        assert pump3.stored(node, "b", b"k").values() == [b"v1"]


def test_missing_key_is_not_found(pump3: Pump) -> None:
    got = get(pump3, "n1", b"nope")
    assert isinstance(got, GetReply)
    assert not got.found and got.values == ()


def test_two_writers_without_context_make_siblings_and_context_resolves(pump3: Pump) -> None:
    put(pump3, "n1", b"cart", b"a")
    put(pump3, "n1", b"cart", b"b")
    got = get(pump3, "n3", b"cart")
    assert isinstance(got, GetReply)
    assert sorted(got.values) == [b"a", b"b"]
    resolved = put(pump3, "n2", b"cart", b"ab", got.context)
    assert isinstance(resolved, PutReply)
    again = get(pump3, "n1", b"cart")
    assert isinstance(again, GetReply)
    assert again.values == (b"ab",)


def test_delete_is_a_tombstone_that_a_later_write_supersedes(pump3: Pump) -> None:
    put(pump3, "n1", b"k", b"v")
    got = get(pump3, "n1", b"k")
    assert isinstance(got, GetReply)
    put(pump3, "n1", b"k", None, got.context)
    gone = get(pump3, "n2", b"k")
    assert isinstance(gone, GetReply)
    assert not gone.found
    put(pump3, "n1", b"k", b"again", gone.context)
    back = get(pump3, "n3", b"k")
    assert isinstance(back, GetReply)
    assert back.values == (b"again",)


def test_one_node_down_quorum_still_met(pump3: Pump) -> None:
    pump3.down.add("n3")
    assert isinstance(put(pump3, "n1", b"k", b"v"), PutReply)
    got = get(pump3, "n2", b"k")
    assert isinstance(got, GetReply) and got.values == (b"v",)


def test_two_nodes_down_write_fails_with_details(pump3: Pump) -> None:
    pump3.down.update({"n2", "n3"})
    reply = put(pump3, "n1", b"k", b"v")
    assert isinstance(reply, ErrorReply)
    assert reply.code == "QuorumNotMet"
    assert reply.details["needed"] == 2
    assert reply.details["succeeded"] == ["n1"]
    assert set(reply.details["failed"]) == {"n2", "n3"}


def test_w1_succeeds_with_two_down(pump3: Pump) -> None:
    pump3.down.update({"n2", "n3"})
    assert isinstance(put(pump3, "n1", b"k", b"v", w=1), PutReply)


def test_read_repair_heals_a_replica_that_missed_a_write(pump3: Pump) -> None:
    pump3.down.add("n3")
    put(pump3, "n1", b"k", b"v")
    pump3.down.discard("n3")
    pump3.nodes["n1"].detector.heard_from("n3")
    pump3.nodes["n2"].detector.heard_from("n3")
    assert pump3.stored("n3", "b", b"k") is None
    get(pump3, "n1", b"k")
    pump3.advance(100)
    assert pump3.stored("n3", "b", b"k").values() == [b"v"]


def test_invalid_quorum_and_sizes_are_rejected() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    reply = pump.request("n1", GetRequest(1, "b", b"k", r=5))
    assert isinstance(reply, ErrorReply) and reply.code == "InvalidRequest"
    reply = pump.request("n1", PutRequest(1, "b", b"x" * 40000, b"v", EMPTY))
    assert isinstance(reply, ErrorReply) and reply.code == "KeyTooLarge"
    reply = pump.request("n1", PutRequest(1, "b", b"k", b"v" * (2 << 20), EMPTY))
    assert isinstance(reply, ErrorReply) and reply.code == "ValueTooLarge"
    assert reply.details["limit"] == 1024 * 1024


def test_put_at_a_non_replica_is_forwarded() -> None:
    pump = Pump.with_nodes(4)
    pump.settle()
    ring = pump.nodes["n1"].ring
    assert ring is not None
    key = next(k for k in (b"k%d" % i for i in range(100))
               if len(set(ring.preference_list(ring.partition_for("b", k), 3))) == 3
               and "n4" not in ring.preference_list(ring.partition_for("b", k), 3))
    reply = put(pump, "n4", key, b"v")
    assert isinstance(reply, PutReply)
    assert pump.stored("n4", "b", key) is None
    got = get(pump, "n4", key)
    assert isinstance(got, GetReply) and got.values == (b"v",)


def test_ring_status_and_bucket_props(pump3: Pump) -> None:
    ring = pump3.request("n2", RingRequest(7))
    assert isinstance(ring, RingReply) and ring.ring.version >= 1
    status = pump3.request("n2", StatusRequest(8))
    assert isinstance(status, StatusReply) and status.status["node"] == "n2"
    props = pump3.request("n1", BucketPropsRequest(9, "carts", {"w": 3, "lww": True}))
    assert isinstance(props, BucketPropsReply) and props.props["w"] == 3
    pump3.advance(3000)
    assert pump3.nodes["n3"].bucket_props("carts").lww
    bad = pump3.request("n1", BucketPropsRequest(10, "carts", {"w": 9}))
    assert isinstance(bad, ErrorReply) and bad.code == "InvalidRequest"


def test_lww_bucket_never_returns_siblings(pump3: Pump) -> None:
    pump3.request("n1", BucketPropsRequest(9, "b", {"lww": True}))
    pump3.advance(3000)
    put(pump3, "n1", b"k", b"first")
    pump3.advance(5)
    put(pump3, "n2", b"k", b"second")
    got = get(pump3, "n3", b"k")
    assert isinstance(got, GetReply)
    assert got.values == (b"second",)


def test_request_times_out_when_replies_never_come(pump3: Pump) -> None:
    # Drop every message to n2/n3 silently (no PeerUnreachable): the deadline must answer.
    node = pump3.nodes["n1"]
    effects = node.handle(
        __import__("dynamokv.core.events", fromlist=["ClientRequested"]).ClientRequested(
            5, GetRequest(3, "b", b"k", timeout_ms=1000)),
        pump3.now_ms, 0)
    assert not [e for e in effects if type(e).__name__ == "Reply"]
    deadline = node.next_deadline()
    assert deadline is not None and deadline <= pump3.now_ms + 1000
    from dynamokv.core.events import TimerFired

    effects = node.handle(TimerFired(), pump3.now_ms + 1000, 0)
    replies = [e for e in effects if type(e).__name__ == "Reply"]
    assert len(replies) == 1
    msg = replies[0].msg  # type: ignore[union-attr]
    assert isinstance(msg, ErrorReply) and msg.code == "RequestTimeout"


def test_contexts_are_pruned_past_the_size_limit() -> None:
    from dataclasses import replace

    from dynamokv.core.settings import CoreSettings
    from dynamokv.core.vclock import PruneLimits

    settings = replace(CoreSettings(q=16), prune=PruneLimits(small_vclock=3, big_vclock=3,
                                                              young_vclock_ms=0))
    pump = Pump.with_nodes(3, settings=settings)
    pump.settle()
    big = VectorClock.from_entries([(f"old{i}", 1, i) for i in range(10)])
    reply = put(pump, "n1", b"k", b"v", big)
    assert isinstance(reply, PutReply)
    assert len(reply.context) <= 4  # three kept plus the new dot
