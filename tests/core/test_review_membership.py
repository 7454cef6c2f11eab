"""Review: membership changes must survive restarts of the nodes they concern."""

from __future__ import annotations

from dynamokv.core.messages import ClusterReply, ClusterRequest, PutRequest
from dynamokv.core.ring import MemberStatus
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump


def test_a_leaving_node_that_restarts_still_leaves() -> None:
    pump = Pump.with_nodes(4)
    pump.settle()
    pump.advance(2000)  # past every node's join retry timer
    for i in range(30):
        pump.request("n1", PutRequest(1, "b", b"m%d" % i, b"v", VectorClock.empty()))
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    member = pump.nodes["n4"].ring.member("n4")  # type: ignore[union-attr]
    assert member is not None and member.status is MemberStatus.LEAVING
    pump.restart("n4")  # e.g. a crash in the middle of handing off; address unchanged
    pump.advance(30_000)
    ring = pump.nodes["n1"].ring
    assert ring is not None
    assert ring.member("n4") is None  # the leave completed
    assert pump.nodes["n4"].left


def test_cluster_plan_after_a_staged_node_was_removed_answers() -> None:
    from dynamokv.core.events import ClientRequested

    pump = Pump.with_nodes(4)
    pump.settle()
    pump.advance(2000)
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    # Staged again while it is leaving (accepted: it is still a member).
    assert isinstance(pump.request(claimant, ClusterRequest(7, "leave", "n4")), ClusterReply)
    pump.advance(30_000)
    assert pump.nodes[claimant].ring.member("n4") is None  # type: ignore[union-attr]
    effects = pump.nodes[claimant].handle(ClientRequested(3, ClusterRequest(8, "plan")),
                                          pump.now_ms, 1_000_000 + pump.now_ms)
    assert [e for e in effects if getattr(e, "client", None) == 3]


def test_a_node_joined_again_after_leaving_runs_background_work() -> None:
    pump = Pump.with_nodes(4)
    pump.settle()
    pump.advance(2000)
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    pump.advance(10_000)
    node = pump.nodes["n4"]
    assert node.left and pump.nodes[claimant].ring.member("n4") is None  # type: ignore[union-attr]
    rejoin = ClusterRequest(7, "join", "n4", node.me.address)
    assert isinstance(pump.request(claimant, rejoin), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(8, "commit")), ClusterReply)
    pump.advance(10_000)
    assert node.ring is not None and node.ring.partitions_of("n4")  # an owner again
    assert node.aae.status()["trees_built"] > 0, node.left  # its background work runs again
