"""Review: a coordinator must never re-issue a dot its actor already issued for the key."""

from __future__ import annotations

from dynamokv.core.messages import (
    ClusterReply,
    ClusterRequest,
    GetReply,
    GetRequest,
    PutReply,
    PutRequest,
)
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump

EMPTY = VectorClock.empty()


def test_write_after_regaining_a_handed_off_key_is_not_lost() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    keys = [b"d%d" % i for i in range(40)]
    for key in keys:  # n1 coordinates: every object holds the dot (n1.a, 1)
        assert isinstance(pump.request("n1", PutRequest(1, "b", key, b"old", EMPTY)), PutReply)
    pump.add_node("n4")
    pump.settle()
    pump.advance(30_000)  # handoff: n1 sends away and deletes keys it no longer replicates
    ring = pump.nodes["n1"].ring
    assert ring is not None
    moved = [k for k in keys if "n1" not in ring.preference_list(ring.partition_for("b", k), 3)]
    assert moved
    key = moved[0]
    assert pump.stored("n1", "b", key) is None
    claimant = ring.claimant
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    # n1 is a replica of every key again but has not received this one back yet.
    assert "n1" in pump.nodes["n1"].ring.preference_list(  # type: ignore[union-attr]
        ring.partition_for("b", key), 3)
    assert pump.stored("n1", "b", key) is None
    # A blind write (no context): it must survive as a sibling of "old".
    assert isinstance(pump.request("n1", PutRequest(1, "b", key, b"new", EMPTY)), PutReply)
    pump.advance(30_000)  # handoff from n4 and anti-entropy settle everything
    got = pump.request("n2", GetRequest(2, "b", key, r=3))
    assert isinstance(got, GetReply)
    assert sorted(got.values) == [b"new", b"old"]


def test_writes_after_regaining_a_handed_off_key_never_reuse_a_dot() -> None:
    # Seeds 300068, 300148, 400332, 400406, 400447, 400473, 400477 (--faults all): after the
    # handoff deleted its copy, the node's first write back made a local copy that did not
    # hold its earlier dots, and the second write counted from that copy.
    pump = Pump.with_nodes(3)
    pump.settle()
    keys = [b"e%d" % i for i in range(40)]
    for key in keys:  # the second write is stamped with n1's partition actor, counter 1
        first = pump.request("n1", PutRequest(1, "b", key, b"first", EMPTY))
        assert isinstance(first, PutReply)
        assert isinstance(pump.request("n1", PutRequest(1, "b", key, b"old", first.context)),
                          PutReply)
    pump.add_node("n4")
    pump.settle()
    pump.advance(30_000)
    ring = pump.nodes["n1"].ring
    assert ring is not None
    key = next(k for k in keys
               if "n1" not in ring.preference_list(ring.partition_for("b", k), 3))
    assert pump.stored("n1", "b", key) is None
    claimant = ring.claimant
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    assert pump.stored("n1", "b", key) is None
    for value in (b"new1", b"new2"):  # blind writes: each must survive as a sibling
        assert isinstance(pump.request("n1", PutRequest(1, "b", key, value, EMPTY)), PutReply)
    stored = pump.stored("n1", "b", key)
    assert stored is not None and len(stored.dots()) == 2
    pump.advance(30_000)
    got = pump.request("n2", GetRequest(2, "b", key, r=3))
    assert isinstance(got, GetReply)
    assert sorted(got.values) == [b"new1", b"new2", b"old"]
