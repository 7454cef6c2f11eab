"""After a kill -9 during writes, a restarted node's anti-entropy trees hold exactly what its
store holds: its Merkle roots equal those of trees built offline from its data directory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster

from dynamokv.core.trees import TreeStore
from dynamokv.errors import DynamoKVError
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.node_store import NodeStore

pytestmark = pytest.mark.cluster

RING = 16


def _write(cluster: LocalCluster, stop: threading.Event, written: list[int]) -> None:
    with cluster.client(timeout_s=5.0) as c:
        i = 0
        while not stop.is_set():
            try:
                c.put(b"k%06d" % i, b"v" * 200, bucket="b")
                written.append(i)
            except DynamoKVError:
                return  # the node is gone
            i += 1


def _offline_roots(data_dir: Path) -> dict[str, str]:
    engine = LmdbEngine(data_dir / "lmdb")
    try:
        trees = TreeStore(NodeStore(engine, RING), RING)
        for p in range(RING):
            trees.build(p)
        return {str(p): t.tree.root().hex() for p, t in trees.trees.items()}
    finally:
        engine.close()


def test_trees_after_a_kill_during_writes_match_the_store(tmp_path: Path) -> None:
    cluster = LocalCluster.start(tmp_path, 1, n=1, r=1, w=1, ring_size=RING)
    node = cluster.node("n1")
    try:
        cluster.wait_for(lambda: cluster.status("n1")["anti_entropy"]["trees_built"] == RING,
                         timeout_s=60, what="the first trees")
        stop, written = threading.Event(), []
        writer = threading.Thread(target=_write, args=(cluster, stop, written))
        writer.start()
        cluster.wait_for(lambda: len(written) >= 300, timeout_s=60, what="300 writes")
        node.kill9()  # mid-write: the trees in memory die with the process
        stop.set()
        writer.join(timeout=30)
        node.start()
        cluster.wait_up(node, timeout_s=60)
        with cluster.client() as c:  # writes after the restart are tracked from the start
            for i in range(50):
                c.put(b"after%03d" % i, b"w", bucket="b")
        cluster.wait_for(lambda: cluster.status("n1")["anti_entropy"]["trees_built"] == RING,
                         timeout_s=120, what="every tree rebuilt after the restart")
        roots = {str(p): r for p, r in cluster.status("n1")["merkle_roots"].items()}
        node.stop()
        offline = _offline_roots(node.data_dir)
        assert roots == offline
        assert len(set(offline.values())) > 1  # not all empty: the keys are in the trees
        node.start()  # and again after a clean stop
        cluster.wait_up(node, timeout_s=60)
        cluster.wait_for(lambda: cluster.status("n1")["anti_entropy"]["trees_built"] == RING,
                         timeout_s=120, what="every tree rebuilt after a clean stop")
        again = {str(p): r for p, r in cluster.status("n1")["merkle_roots"].items()}
        assert again == offline
    finally:
        cluster.stop()
