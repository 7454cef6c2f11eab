"""The ring file records its cluster: old files (before the name) read as the default cluster,
and a data dir refuses to start under another cluster's name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import pytest

from dynamokv.core.claim import claim
from dynamokv.core.messages import GossipRing
from dynamokv.core.ring import Member
from dynamokv.errors import ConfigError
from dynamokv.runtime.config import NodeConfig
from dynamokv.runtime.persist import RING_FILE, load_ring, save_ring, stored_cluster
from dynamokv.runtime.server import start_node
from dynamokv.wire.codec import encode


def _ring():  # type: ignore[no-untyped-def]
    return claim(None, [Member("n1", "127.0.0.1:7001")], q=8, target_n=3, claimant="n1")


def test_a_ring_file_from_before_cluster_names_reads_as_the_default_cluster(
        tmp_path: Path) -> None:
    ring = _ring()
    fields = msgpack.unpackb(encode(GossipRing(ring, {"b": {"n": 2}}, 4, "dynamokv")))
    (tmp_path / RING_FILE).write_bytes(msgpack.packb(fields[:-1], use_bin_type=True))
    assert load_ring(tmp_path) == (ring, {"b": {"n": 2}}, 4)
    assert stored_cluster(tmp_path) == "dynamokv"


def test_the_ring_file_keeps_the_cluster_name(tmp_path: Path) -> None:
    save_ring(tmp_path, _ring(), {}, 0, cluster="prod-eu")
    assert stored_cluster(tmp_path) == "prod-eu"
    assert stored_cluster(tmp_path / "empty") is None


def test_a_data_dir_of_another_cluster_does_not_start(tmp_path: Path) -> None:
    save_ring(tmp_path, _ring(), {}, 0, cluster="prod-eu")
    config = NodeConfig(node_id="n1", listen="127.0.0.1:7001", data_dir=tmp_path,
                        engine="memory", cluster_name="staging")
    with pytest.raises(ConfigError, match=r"holds a ring of cluster 'prod-eu'.*'staging'"):
        asyncio.run(start_node(config))
