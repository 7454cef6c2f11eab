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
    assert doc["replicas_agree"] is True
    with cluster.client() as c:
        ring = c.ring()
    assert doc["partition"] == ring.partition_for("default", b"wanted")
    assert primaries == list(ring.preference_list(doc["partition"], 3))
    text = cli("where", "wanted", "--node", cluster.node("n1").address, as_json=False)
    assert f"partition {doc['partition']}" in text and text.count("1 sibling(s)") == 3


def _seen_down(cluster: LocalCluster, node: str, by: list[str]) -> bool:
    return all(not next(m["up"] for m in cluster.status(o)["members"] if m["node"] == node)
               for o in by)


def test_hints_shown_and_cleared_then_aae_repairs(cluster: LocalCluster) -> None:
    """n4 away during writes: fallbacks hold hints for it (shown, then cleared). Only
    anti-entropy then brings those writes back, and ``aae --wait`` runs an exchange at once
    and reports what it repaired. (A node that comes back also triggers exchanges of its own:
    if one of those wins the race, ours finds the pair in sync; either way n4 must hold the
    write afterwards.)"""
    with cluster.client() as c:
        ring = c.ring()
    keys = [f"hinted-{i}" for i in range(60)]
    key = next(k for k in keys if "n4" in ring.preference_list(
        ring.partition_for("default", k.encode()), 3))
    partition = ring.partition_for("default", key.encode())
    owner = next(p for p in ring.preference_list(partition, 3) if p != "n4")
    others = ["n1", "n2", "n3"]
    victim = cluster.node("n4")
    victim.pause()  # SIGSTOP: it keeps its data (a restarted empty node would resync it all)
    try:
        # Once they know it is down, writes go to fallbacks, none waits in a connection queue.
        LocalCluster.wait_for(lambda: _seen_down(cluster, "n4", others), timeout_s=30,
                              what="n4 seen down")
        for coordinator in others:  # each key through a node that coordinates it
            with cluster.client(only=coordinator) as c:
                for k in keys:
                    if coordinator == ring.preference_list(
                            ring.partition_for("default", k.encode()), 3)[0] or (
                            k == key and coordinator == owner):
                        c.put(k, "v", w=2)
        held = {n: cli("hints", "--node", cluster.node(n).address)["pending"].get("n4", 0)
                for n in others}
        assert sum(held.values()) > 0
        holder = max(held, key=lambda n: held[n])
        cleared = cli("hints", "--clear", "n4", "--node", cluster.node(holder).address)
        assert cleared["cleared"] == {"n4": held[holder]}
        assert cleared["remaining"] == {}
        for n in others:  # the other fallbacks' hints too (through the library: faster)
            if n != holder and held[n]:
                with cluster.client(only=n) as c:
                    assert c.cluster("hints-clear")["remaining"] == {}
    finally:
        victim.resume()
    doc = cli("aae", str(partition), "--peer", "n4", "--wait", "--node",
              cluster.node(owner).address)
    assert (doc["partition"], doc["peer"]) == (partition, "n4")
    result = doc["result"]
    assert (result["outcome"], result["keys_repaired"] >= 1) in {("repaired", True),
                                                                 ("in sync", False)}, doc
    assert all(step["stage"] for step in doc["progress"])  # what --wait saw on the way
    where = cli("where", key, "--node", victim.address)
    assert where["local"]["siblings"] == 1 and where["replicas_agree"] is True


def test_drain_takes_a_node_out(cluster: LocalCluster) -> None:
    doc = cli("drain", "n4", "--wait", "--wait-timeout", "180", "--node",
              cluster.node("n1").address, timeout=240)
    assert doc["left_after_s"] >= 0
    with cluster.client(only="n1") as c:
        assert "n4" not in c.ring().node_ids()
    cluster.forget("n4")


def test_where_says_replicas_differ_when_a_copy_is_missing_or_unreachable() -> None:
    from dynamokv.cli.operator_verbs import _agree

    copy = {"siblings": 1, "tombstones": 0, "clock_entries": 2, "newest_ms": 5}
    doc = {"primaries": [{"node": "a"}, {"node": "b"}],
           "replicas": {"a": {"local": copy}, "b": {"local": dict(copy)}}}
    assert _agree(doc)
    doc["replicas"]["b"] = {"local": None}
    assert not _agree(doc)
    doc["replicas"]["b"] = {"error": "RequestTimeout: ..."}
    assert not _agree(doc)
