"""Real multi-process tests on 127.0.0.1: three node processes, N=3, R=2, W=2.

Covers the paper's basic promises end to end: quorum reads and writes through any node and
through a partition-aware client, siblings from context-free concurrent writes and their
resolution, kill -9 of a node under reads and writes, restart with data intact, read repair of
the restarted node, and a node that survives malformed input.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster

from dynamokv.errors import ValueTooLarge

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster.start(Path(tmp_path_factory.mktemp("cluster")), 3)
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("routing", ["server", "partition"])
def test_write_then_read_through_every_node(cluster: LocalCluster, routing: str) -> None:
    with cluster.client(routing=routing) as c:
        for i in range(30):
            c.put(f"{routing}-k{i}", f"v{i}")
    for node in cluster.nodes:
        with cluster.client(only=node.node_id) as c:
            for i in range(30):
                assert c.get(f"{routing}-k{i}").values == [f"v{i}".encode()]


def test_concurrent_writers_make_siblings_and_context_resolves(cluster: LocalCluster) -> None:
    with cluster.client(only="n1") as a, cluster.client(only="n2") as b:
        a.put("cart", "apple")
        b.put("cart", "pear")
        got = a.get("cart")
        assert sorted(got.values) == [b"apple", b"pear"]
        b.put("cart", "apple+pear", got.context)
        assert a.get("cart").values == [b"apple+pear"]
        assert b.get("cart").values == [b"apple+pear"]


def test_delete_then_not_found(cluster: LocalCluster) -> None:
    with cluster.client() as c:
        ctx = c.put("gone", "soon")
        c.delete("gone", ctx)
        got = c.get("gone")
        assert not got.found and got.values == []


def test_oversized_value_gets_a_precise_error(cluster: LocalCluster) -> None:
    with cluster.client() as c, pytest.raises(ValueTooLarge) as info:
        c.put("big", b"x" * (1024 * 1024 + 1))
    assert info.value.details["limit"] == 1024 * 1024
    with cluster.client() as c:
        assert c.put("after-big", "fine")


def test_malformed_frames_do_not_hurt_the_node(cluster: LocalCluster) -> None:
    host, _, port = cluster.nodes[0].address.rpartition(":")
    for junk in (b"\x00\x00\x00\x05\x01\xc1\xc1\xc1\xc1\xc1",  # reserved msgpack bytes
                 b"\xff\xff\xff\xff\x01",  # frame larger than any limit
                 struct.pack(">IB", 3, 9) + b"abc",  # unknown protocol version
                 b"GET / HTTP/1.1\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(5)
            try:
                assert s.recv(100) == b""  # the node closes the connection
            except ConnectionResetError:
                pass
    with cluster.client(only="n1") as c:
        assert c.put("still-alive", "yes")


def test_kill9_one_node_reads_and_writes_go_on_then_restart_keeps_data(
    cluster: LocalCluster,
) -> None:
    with cluster.client() as c:
        for i in range(50):
            c.put(f"before-{i}", f"b{i}")
    victim = cluster.node("n3")
    victim.kill9()
    with cluster.client() as c:  # the client lists every node, including the dead one
        for i in range(50):
            c.put(f"during-{i}", f"d{i}")
        for i in range(50):
            assert c.get(f"before-{i}").values == [f"b{i}".encode()]
            assert c.get(f"during-{i}").values == [f"d{i}".encode()]
    with cluster.client(routing="partition") as c:
        for i in range(20):
            assert c.get(f"during-{i}").values == [f"d{i}".encode()]
    victim.start()
    cluster.wait_seen_up(victim)
    # r=1 at n3 answers from n3's own storage first: the data written before the kill is there.
    with cluster.client(only="n3") as c:
        for i in range(50):
            assert c.get(f"before-{i}", r=1).values == [f"b{i}".encode()]
    # Writes made while n3 was down reach it by read repair (hinted handoff comes later).
    with cluster.client(only="n1") as c:
        for i in range(50):
            c.get(f"during-{i}", r=3)
    time.sleep(0.5)
    with cluster.client(only="n3") as c:
        for i in range(50):
            assert c.get(f"during-{i}", r=1).values == [f"d{i}".encode()]
    cluster.wait_converged()


def test_kill9_while_writing_loses_no_acknowledged_write(cluster: LocalCluster) -> None:
    acknowledged: list[int] = []
    victim = cluster.node("n2")
    with cluster.client(timeout_s=3.0) as c:
        for i in range(300):
            if i == 100:
                victim.kill9()
            try:
                c.put(f"ack-{i}", f"a{i}")
                acknowledged.append(i)
            except Exception:
                pass
    assert len(acknowledged) >= 290
    victim.start()
    cluster.wait_seen_up(victim)
    with cluster.client() as c:
        for i in acknowledged:
            assert f"a{i}".encode() in c.get(f"ack-{i}").values
