"""A node of another cluster never joins, and its ring is never merged (core level)."""

from __future__ import annotations

from dataclasses import replace

from dynamokv.core.effects import Log
from dynamokv.core.events import MessageReceived
from dynamokv.core.messages import GossipRing, Hello, JoinRequest
from dynamokv.core.ring import Member
from tests.pump import Pump


def _bigger_ring(pump: Pump, cluster_nodes: tuple[str, ...]) -> GossipRing:
    ring = pump.nodes["n1"].ring
    assert ring is not None
    stranger = Member("x1", "10.9.9.9:7000")
    taken = replace(ring, owners=tuple("x1" for _ in ring.owners),
                    members=(stranger,), version=ring.version + 100, claimant="x1")
    return GossipRing(taken, {}, 0, cluster_nodes[0])


def test_a_joiner_of_another_cluster_is_refused(pump3: Pump) -> None:
    assert pump3.settings is not None
    before = pump3.nodes["n1"].ring
    stranger = pump3.add_node("x1", settings=replace(pump3.settings, cluster_name="other"))
    pump3.advance(10_000)  # ten join retries
    assert pump3.nodes["n1"].ring == before
    assert stranger.ring is None  # it never got a ring either


def test_a_ring_of_another_cluster_is_never_adopted(pump3: Pump) -> None:
    n1 = pump3.nodes["n1"]
    before = n1.ring
    effects = n1.handle(MessageReceived("x1", _bigger_ring(pump3, ("other",))), 10_000, 10_000)
    assert n1.ring == before
    assert [e.level for e in effects if isinstance(e, Log)] == ["error"]
    assert "cluster 'other'" in next(e.message for e in effects if isinstance(e, Log))


def test_the_same_ring_of_this_cluster_is_adopted(pump3: Pump) -> None:
    # The control: only the cluster name differs from the refused case above.
    n1 = pump3.nodes["n1"]
    n1.handle(MessageReceived("x1", _bigger_ring(pump3, ("dynamokv",))), 10_000, 10_000)
    assert n1.ring is not None and n1.ring.claimant == "x1"


def test_hello_and_join_of_another_cluster_are_logged_errors(pump3: Pump) -> None:
    n1 = pump3.nodes["n1"]
    for msg in (Hello("x1", 5, "other"), JoinRequest("x1", "10.9.9.9:7000", cluster="other")):
        effects = n1.handle(MessageReceived("x1", msg), 10_000, 10_000)
        assert [type(e) for e in effects] == [Log]
    assert n1.ring is not None and "x1" not in n1.ring.node_ids()
