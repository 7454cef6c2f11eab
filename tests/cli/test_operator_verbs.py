"""``dynamokv where|hints|aae|drain`` against real node processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster_harness import LocalCluster

pytestmark = pytest.mark.cluster

SRC = Path(__file__).resolve().parents[2] / "src"


def cli(*args: str, timeout: float = 120, as_json: bool = True) -> Any:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "200"
    argv = [sys.executable, "-m", "dynamokv", *args, *(["--json"] if as_json else [])]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout) if as_json else proc.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster.start(Path(tmp_path_factory.mktemp("ops")), 4, engine="memory",
                           extra_args=("--aae-interval", "3600"))
    try:
        yield c
    finally:
        c.stop()


def test_where_names_the_replicas_and_their_copies(cluster: LocalCluster) -> None:
    with cluster.client() as c:
        c.put("wanted", "here", w=3)
    doc = cli("where", "wanted", "--node", cluster.node("n1").address)
    primaries = [p["node"] for p in doc["primaries"]]
    assert len(primaries) == 3 and len(set(primaries)) == 3
    for node in primaries:
        assert doc["replicas"][node]["local"]["siblings"] == 1
    with cluster.client() as c:
        ring = c.ring()
    assert doc["partition"] == ring.partition_for("default", b"wanted")
    assert primaries == list(ring.preference_list(doc["partition"], 3))
    text = cli("where", "wanted", "--node", cluster.node("n1").address, as_json=False)
    assert f"partition {doc['partition']}" in text and text.count("1 sibling(s)") == 3


def test_aae_runs_an_exchange_now(cluster: LocalCluster) -> None:
    with cluster.client() as c:
        ring = c.ring()
    owner = ring.owners[5]
    doc = cli("aae", "5", "--wait", "--node", cluster.node(owner).address)
    assert doc["partition"] == 5 and doc["peer"] in ring.preference_list(5, 3)
    assert doc["result"]["outcome"]  # finished, with whatever outcome it reached


def test_hints_show_then_clear(cluster: LocalCluster) -> None:
    victim = cluster.node("n4")
    victim.kill9()
    try:
        with cluster.client(only=["n1", "n2", "n3"]) as c:
            for i in range(60):
                c.put(f"hinted-{i}", "v", w=2)
        held = {n: cli("hints", "--node", cluster.node(n).address)["pending"].get("n4", 0)
                for n in ("n1", "n2", "n3")}
        assert sum(held.values()) > 0
        holder = max(held, key=lambda n: held[n])
        cleared = cli("hints", "--clear", "n4", "--node", cluster.node(holder).address)
        assert cleared["cleared"] == {"n4": held[holder]}
        assert cleared["remaining"] == {}
        assert "n4" not in cli("hints", "--node", cluster.node(holder).address)["pending"]
    finally:
        victim.start()
        cluster.wait_up(victim)


def test_drain_takes_a_node_out(cluster: LocalCluster) -> None:
    doc = cli("drain", "n4", "--wait", "--wait-timeout", "180", "--node",
              cluster.node("n1").address, timeout=240)
    assert doc["left_after_s"] >= 0
    with cluster.client(only="n1") as c:
        assert "n4" not in c.ring().node_ids()
    cluster.forget("n4")
