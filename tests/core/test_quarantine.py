"""One undecodable stored record is quarantined; the node's background work carries on."""

from __future__ import annotations

from dataclasses import replace

from dynamokv.core.messages import GetReply, GetRequest, PutReply, PutRequest
from dynamokv.core.settings import CoreSettings
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.storage.node_store import NodeStore, hint_key
from dynamokv.storage.objects import QUARANTINE_PREFIX
from tests.pump import Pump

EMPTY = VectorClock.empty()
GARBAGE = b"\xff\x00 not an object"


def _pump() -> Pump:
    settings = CoreSettings(q=16)
    pump = Pump.with_nodes(3, settings=replace(settings, aae=replace(settings.aae,
                                                                      interval_ms=200)))
    pump.settle()
    return pump


def test_a_corrupt_object_is_quarantined_and_restored_while_everything_else_goes_on() -> None:
    pump = _pump()
    keys = [b"q%d" % i for i in range(30)]
    for key in keys:
        assert isinstance(pump.request("n1", PutRequest(1, "b", key, key, EMPTY)), PutReply)
    pump.advance(5_000)
    n3 = pump.nodes["n3"]
    store = n3.raw_store
    assert isinstance(store, NodeStore)
    victim = keys[0]
    store.engine.put(store.storage_key("b", victim), GARBAGE)
    n3 = pump.restart("n3")  # trees are rebuilt from the store: the fold meets the record
    ring = n3.ring
    assert ring is not None
    partition = ring.partition_for("b", victim)
    pump.advance(20_000)
    status = n3.status(pump.now_ms)
    assert status["quarantined"] == 1
    assert n3.store.quarantined() == {partition: 1}
    assert sorted(n3.trees.trees) == list(range(16))  # every tree got built
    assert store.engine.get(QUARANTINE_PREFIX + store.storage_key("b", victim)) == GARBAGE
    assert all(pump.stored("n3", "b", k) is not None for k in keys)  # restored by AAE
    assert n3.trees.forgotten(partition) == 1  # its actor for the partition is a new one
    # Writes through n3 go on, the victim's included.
    for key in keys[:3]:
        assert isinstance(pump.request("n3", PutRequest(1, "b", key, b"new", EMPTY)), PutReply)
    got = pump.request("n2", GetRequest(2, "b", victim, r=3))
    assert isinstance(got, GetReply) and sorted(got.values) == [b"new", victim]


def test_a_corrupt_hint_is_quarantined_and_the_other_hints_are_replayed() -> None:
    pump = _pump()
    n1 = pump.nodes["n1"]
    store = n1.raw_store
    assert isinstance(store, NodeStore)
    for key in (b"h1", b"h2", b"h3"):
        store.put_hint("n2", "b", key, pump_obj(key))
    store.engine.put(hint_key("n2", "b", b"h0"), GARBAGE)  # first in key order
    store._hint_counts = None  # counted afresh, as after a restart
    pump.advance(5_000)
    assert n1.hints.pending() == {}
    assert n1.status(pump.now_ms)["quarantined"] == 1
    assert all(pump.stored("n2", "b", k) is not None for k in (b"h1", b"h2", b"h3"))


def pump_obj(value: bytes) -> VersionedObject:
    return VersionedObject((Sibling(value, Dot("x.1", 1), EMPTY, 1),))
