"""End to end: ``dynamokv cluster up --detach`` starts real nodes; the CLI talks to them.

Every command runs as a separate ``python -m dynamokv`` process, as a user would run it.
Ports are found free on 127.0.0.1 at test time; ``cluster down`` runs even when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

SRC = Path(__file__).resolve().parents[2] / "src"
NODES = 3


def run(
    *args: str, timeout: float = 60, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("DYNAMOKV_NODES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "dynamokv", *args],
        env=env, input=stdin if stdin is not None else b"", capture_output=True,
        timeout=timeout, check=False,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def free_run(count: int, avoid: frozenset[int] = frozenset()) -> int:
    """A base port such that ``base .. base + count - 1`` are all free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        ports = range(base, base + count)
        if base + count > 65535 or avoid & set(ports):
            continue
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    data_dir: Path
    base_port: int
    metrics_base_port: int
    manifest: dict[str, Any]

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.base_port}"

    def pids(self) -> list[int]:
        return [int(n["pid"]) for n in self.manifest["nodes"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state != "Z"


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    base = free_run(NODES)
    metrics = free_run(NODES, avoid=frozenset(range(base, base + NODES)))
    data_dir = tmp_path / "data"
    up = run("cluster", "up", "--nodes", str(NODES), "--data-dir", str(data_dir),
             "--base-port", str(base), "--metrics-base-port", str(metrics),
             "--http-base-port", "0", "--engine", "memory", "--detach", "--start-timeout", "60",
             timeout=120)
    manifest_path = data_dir / "cluster.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert manifest is not None
        yield LocalCluster(data_dir, base, metrics, manifest)
    finally:
        if manifest is not None:
            down = run("cluster", "down", "--data-dir", str(data_dir), timeout=60)
            pids = [int(n["pid"]) for n in manifest["nodes"]]
            for pid in pids:  # never leave a node behind, even if `down` is broken
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            assert down.returncode == 0, down.stdout + down.stderr


def test_up_writes_the_manifest_and_prints_a_hint(local_cluster: LocalCluster) -> None:
    nodes = local_cluster.manifest["nodes"]
    assert [n["id"] for n in nodes] == [f"n{i}" for i in range(1, NODES + 1)]
    for i, n in enumerate(nodes):
        assert n["address"] == f"127.0.0.1:{local_cluster.base_port + i}"
        assert n["metrics_address"] == f"127.0.0.1:{local_cluster.metrics_base_port + i}"
        assert n["http_address"] is None
        assert Path(n["log"]).exists()
        assert n["argv"][1:5] == ["-m", "dynamokv", "node", "start"]
        assert _alive(n["pid"])


def test_put_get_delete_roundtrip(local_cluster: LocalCluster) -> None:
    node = local_cluster.node
    put = run("put", "--node", node, "greeting", "hello", "--json")
    assert put.returncode == 0, put.stderr
    ctx = json.loads(put.stdout)["context"]
    assert ctx

    got = run("get", "--node", node, "greeting")
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0] == "hello"
    assert got.stdout.splitlines()[1].startswith("context: ")

    # Two writes without a context are concurrent: the next read shows siblings.
    assert run("put", "--node", node, "cart", "milk").returncode == 0
    assert run("put", "--node", node, "cart", "eggs").returncode == 0
    both = json.loads(run("get", "--node", node, "cart", "--json").stdout)
    assert both["siblings"] == 2
    assert sorted(v["value"] for v in both["values"]) == ["eggs", "milk"]
    merged = run("put", "--node", node, "cart", "milk,eggs", "--context", both["context"])
    assert merged.returncode == 0, merged.stderr
    one = json.loads(run("get", "--node", node, "cart", "--json").stdout)
    assert [v["value"] for v in one["values"]] == ["milk,eggs"]

    deleted = run("delete", "--node", node, "greeting", "--context", ctx)
    assert deleted.returncode == 0, deleted.stderr
    gone = json.loads(run("get", "--node", node, "greeting", "--json").stdout)
    assert gone["found"] is False


def test_partition_routing_and_binary_values(local_cluster: LocalCluster) -> None:
    node = local_cluster.node
    put = run("put", "--node", node, "--routing", "partition", "blob", "-", stdin=b"\xff\x00")
    assert put.returncode == 0, put.stderr
    got = json.loads(run("get", "--node", node, "--routing", "partition", "blob", "--json").stdout)
    assert got["values"] == [{"encoding": "base64", "value": "/wA="}]


def test_ring_and_status(local_cluster: LocalCluster) -> None:
    ring = run("ring", "--node", local_cluster.node, "--json")
    assert ring.returncode == 0, ring.stderr
    doc = json.loads(ring.stdout)
    assert sorted(n["id"] for n in doc["nodes"]) == [f"n{i}" for i in range(1, NODES + 1)]
    assert sum(n["partitions"] for n in doc["nodes"]) == doc["q"] == 64

    text = run("ring", "--node", local_cluster.node)
    assert text.returncode == 0 and "imbalance" in text.stdout

    status = run("status", "--one", "--node", f"127.0.0.1:{local_cluster.base_port + 1}",
                 "--json")
    assert status.returncode == 0, status.stderr
    sdoc = json.loads(status.stdout)
    assert sdoc["node_id"] == "n2"
    assert {m["id"] for m in sdoc["members"]} == {f"n{i}" for i in range(1, NODES + 1)}


def test_bucket_props(local_cluster: LocalCluster) -> None:
    set_ = run("bucket", "--node", local_cluster.node, "carts", "--lww", "true", "--json")
    assert set_.returncode == 0, set_.stderr
    assert json.loads(set_.stdout)["props"]["lww"] is True


def test_metrics_endpoint(local_cluster: LocalCluster) -> None:
    import urllib.request

    assert run("put", "--node", local_cluster.node, "m", "1").returncode == 0
    url = f"http://127.0.0.1:{local_cluster.metrics_base_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert b"dynamokv_request_seconds" in resp.read()


def test_errors_exit_1(local_cluster: LocalCluster) -> None:
    too_big = run("get", "--node", local_cluster.node, "x" * 40000)
    assert too_big.returncode == 1
    assert too_big.stderr.startswith("error: ")


def test_unreachable_node_hint(tmp_path: Path) -> None:
    port = free_run(1)
    res = run("get", "--node", f"127.0.0.1:{port}", "k", "--timeout", "2")
    assert res.returncode == 1
    assert "error: NoNodeAvailable" in res.stderr
    assert "cluster up" in res.stderr


def test_down_stops_every_node(local_cluster: LocalCluster) -> None:
    down = run("cluster", "down", "--data-dir", str(local_cluster.data_dir))
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in local_cluster.pids()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in local_cluster.pids())
    # A second `down` finds nothing to stop and says so.
    again = run("cluster", "down", "--data-dir", str(local_cluster.data_dir))
    assert again.returncode == 0
    assert "nothing to stop" in again.stdout
