"""Review: anti-entropy must repair every replica of a bucket, whatever the bucket's N."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dynamokv.core.messages import BucketPropsReply, BucketPropsRequest, PutReply, PutRequest
from dynamokv.core.settings import CoreSettings
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump


@pytest.mark.xfail(strict=True, reason="AntiEntropy.step picks partitions and peers with the "
                   "cluster default N, so replicas past it of a bucket with a larger N are never "
                   "repaired")
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
