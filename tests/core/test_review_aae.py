"""Review: anti-entropy must repair every replica of a bucket, whatever the bucket's N."""

from __future__ import annotations

from dataclasses import replace

from dynamokv.core.messages import BucketPropsReply, BucketPropsRequest, PutReply, PutRequest
from dynamokv.core.settings import CoreSettings
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump


def test_anti_entropy_repairs_the_fourth_replica_of_an_n4_bucket() -> None:
    settings = CoreSettings(q=16)
    settings = replace(settings, aae=replace(settings.aae, interval_ms=200))
    pump = Pump.with_nodes(4, settings=settings)
    pump.settle()
    reply = pump.request("n1", BucketPropsRequest(3, "big", {"n": 4}))
    assert isinstance(reply, BucketPropsReply)
    pump.advance(2000)
    assert all(n.bucket_props("big").n == 4 for n in pump.nodes.values())
    keys = [b"k%d" % i for i in range(40)]
    for key in keys:
        put = PutRequest(1, "big", key, key, VectorClock.empty(), w=4)
        assert isinstance(pump.request("n1", put), PutReply)
    victim = pump.nodes["n4"]
    ring = victim.ring
    assert ring is not None
    fourth = [k for k in keys if ring.preference_list(ring.partition_for("big", k), 4)[3] == "n4"]
    assert fourth  # keys whose fourth replica is n4
    victim.raw_store.engine._data.clear()  # type: ignore[attr-defined]  # the disk is gone
    victim.trees.trees.clear()
    pump.advance(60_000)
    others = [k for k in keys if k not in fourth]
    assert all(pump.stored("n4", "big", k) is not None for k in others)  # AAE ran and repaired
    missing = [k for k in fourth if pump.stored("n4", "big", k) is None]
    assert not missing


def test_anti_entropy_and_handoff_settle_for_an_n1_bucket() -> None:
    settings = CoreSettings(q=16)
    settings = replace(settings, aae=replace(settings.aae, interval_ms=200))
    pump = Pump.with_nodes(3, settings=settings)
    pump.settle()
    reply = pump.request("n1", BucketPropsRequest(3, "one", {"n": 1, "r": 1, "w": 1}))
    assert isinstance(reply, BucketPropsReply)
    pump.advance(2000)
    keys = [b"k%d" % i for i in range(30)]
    for key in keys:
        assert isinstance(pump.request("n1", PutRequest(1, "one", key, key, VectorClock.empty())),
                          PutReply)
    pump.advance(60_000)
    moved = sum(n.handoff.objects_moved for n in pump.nodes.values())
    pump.advance(30_000)
    assert sum(n.handoff.objects_moved for n in pump.nodes.values()) == moved  # nothing moving
    ring = pump.nodes["n1"].ring
    assert ring is not None
    strays = [(k, n) for k in keys for n in pump.nodes if pump.stored(n, "one", k) is not None
              and n not in ring.preference_list(ring.partition_for("one", k), 1)]
    assert not strays
