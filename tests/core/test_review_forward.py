"""Review: a put reaching a node that is no replica, while no replica is reachable."""

from __future__ import annotations

from dynamokv.core.events import ClientRequested
from dynamokv.core.messages import ClusterReply, ClusterRequest, ErrorReply, PutRequest
from dynamokv.core.ring import MemberStatus
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump


def test_put_at_a_leaving_node_cut_off_from_every_replica_gets_an_error_reply() -> None:
    pump = Pump.with_nodes(4)
    pump.settle()
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    assert isinstance(pump.request(claimant, ClusterRequest(5, "leave", "n4")), ClusterReply)
    assert isinstance(pump.request(claimant, ClusterRequest(6, "commit")), ClusterReply)
    node = pump.nodes["n4"]
    assert node.ring is not None
    assert node.ring.member("n4").status is MemberStatus.LEAVING  # type: ignore[union-attr]
    assert not node.ring.partitions_of("n4")
    for other in ("n1", "n2", "n3"):  # a network partition isolates the leaving node
        node.detector.unreachable(other, pump.now_ms)
    effects = node.handle(
        ClientRequested(9, PutRequest(1, "b", b"k", b"v", VectorClock.empty())),
        pump.now_ms, 1_000_000 + pump.now_ms)
    replies = [e.msg for e in effects if getattr(e, "client", None) == 9]
    assert replies and isinstance(replies[0], ErrorReply)
