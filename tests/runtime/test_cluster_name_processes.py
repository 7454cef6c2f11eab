"""Real processes of two clusters: a node pointed at the other cluster's seed by mistake never
joins it, a raw connection announcing another cluster is refused, and neither ring changes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

from dynamokv import Client
from dynamokv.core.messages import GossipRing, Hello
from dynamokv.core.ring import Member
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import FrameDecoder, frame

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def alpha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster.start(Path(tmp_path_factory.mktemp("alpha")), 2, engine="memory",
                           extra_args=("--cluster-name", "alpha"))
    try:
        yield c
    finally:
        c.stop()


def _ownership(alpha: LocalCluster) -> tuple[object, ...]:
    """What n1's ring says: members, owners and claimant."""
    with Client([alpha.node("n1").address], timeout_s=5) as c:
        ring = c.ring()
    assert sorted(ring.node_ids()) == ["n1", "n2"]
    return ring.node_ids(), ring.owners, ring.claimant


def _log(root: Path, node_id: str) -> str:
    return (root / f"{node_id}.log").read_text(errors="replace")


def test_a_node_of_another_cluster_pointed_at_a_seed_never_joins(
    alpha: LocalCluster, tmp_path: Path
) -> None:
    before = _ownership(alpha)
    port = free_ports(1)[0]
    rogue = NodeProc("b1", f"127.0.0.1:{port}", tmp_path / "b1", [
        *alpha._argv("b1", f"127.0.0.1:{port}", tmp_path / "b1", [alpha.node("n1").address]),
        "--cluster-name", "beta"])
    rogue.start()
    try:
        alpha.wait_up(rogue)
        # Both sides say why, in their logs.
        LocalCluster.wait_for(lambda: "refused peer b1" in _log(alpha.root, "n1"),
                              timeout_s=30, what="n1 to log the refused peer")
        LocalCluster.wait_for(lambda: "cluster 'alpha'" in _log(tmp_path, "b1"),
                              timeout_s=30, what="b1 to log which cluster refused it")
        # (The ring version may still tick once as the first handoffs settle: compare what
        # the ring says, not its version.)
        assert _ownership(alpha) == before
        with Client([rogue.address], timeout_s=5) as c:
            assert c.status()["joined"] is False
    finally:
        rogue.stop()


def test_a_connection_announcing_another_cluster_cannot_push_its_ring(
    alpha: LocalCluster,
) -> None:
    before = _ownership(alpha)
    with Client([alpha.node("n1").address], timeout_s=5) as c:
        ring = c.ring()
    stranger = Member("x9", "127.0.0.1:1")
    hijack = replace(ring, owners=tuple("x9" for _ in ring.owners), members=(stranger,),
                     version=ring.version + 1000, claimant="x9")
    host, _, port = alpha.node("n1").address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(encode(Hello("x9", hijack.version, "beta")))
                  + frame(encode(GossipRing(hijack, {}, 0, "beta"))))
        # The node answers with its own Hello (naming its cluster), then closes.
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    replies = [decode(p) for p in FrameDecoder(1 << 20).feed(data)]
    assert replies and isinstance(replies[0], Hello) and replies[0].cluster == "alpha"
    assert _ownership(alpha) == before
    assert "refused peer x9" in _log(alpha.root, "n1")
