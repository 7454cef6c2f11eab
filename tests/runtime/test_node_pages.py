"""The metrics port's other pages on a real three-node cluster: /health for readiness probes,
/status.json, /cluster.json (every member's view), and the dashboard (self-contained; rendered
in headless Chromium when one is installed, its screenshot kept as a test artifact)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

from dynamokv import Client

pytestmark = pytest.mark.cluster


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""  # not listening yet


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProc, str]]:
    """n1 of a real three-node cluster, every node with a metrics port; some writes done."""
    tmp = tmp_path_factory.mktemp("pages")
    ports = free_ports(6)
    procs = []
    for i in range(3):
        port, metrics = ports[2 * i], ports[2 * i + 1]
        seeds = ["--seeds", f"127.0.0.1:{ports[0]}"] if i else []
        procs.append(NodeProc(f"n{i + 1}", f"127.0.0.1:{port}", tmp / f"n{i + 1}", [
            sys.executable, "-m", "dynamokv", "node", "start", "--id", f"n{i + 1}", "--listen",
            f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{metrics}", "--engine", "memory",
            "--data-dir", str(tmp / f"n{i + 1}"), *seeds]))
    bases = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(3)]
    try:
        for proc in procs:
            proc.start()
        for base in bases:
            LocalCluster.wait_for(lambda b=base: _get(b + "/health")[0] == 200, timeout_s=60,
                                  what=f"{base}/health to say ready")
        LocalCluster.wait_for(lambda: _members_up(bases[0]) == ["n1", "n2", "n3"],
                              timeout_s=60, what="n1 to see three members up")
        with Client([procs[0].address], routing="server") as client:
            for i in range(20):
                client.put(f"k{i}".encode(), b"v")
        _NODES[:] = procs
        yield procs[0], bases[0]
    finally:
        for proc in procs:
            proc.stop()


_NODES: list[NodeProc] = []


def _members_up(base: str) -> list[str]:
    code, body = _get(base + "/status.json")
    if code != 200:
        return []
    return [m["node"] for m in json.loads(body)["members"] if m["up"] and m["heard"]]


def test_health_says_ready_with_the_node_and_cluster(node: tuple[NodeProc, str]) -> None:
    code, body = _get(node[1] + "/health")
    doc = json.loads(body)
    assert code == 200 and doc["ready"] is True
    assert (doc["node"], doc["cluster"]) == ("n1", "dynamokv")


def test_a_node_that_has_not_joined_is_not_ready(tmp_path: Path) -> None:
    port, metrics, nowhere = free_ports(3)
    proc = NodeProc("n2", f"127.0.0.1:{port}", tmp_path / "n2", [
        sys.executable, "-m", "dynamokv", "node", "start", "--id", "n2", "--listen",
        f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{metrics}", "--engine", "memory",
        "--data-dir", str(tmp_path / "n2"), "--seeds", f"127.0.0.1:{nowhere}"])
    proc.start()
    try:
        code = LocalCluster.wait_for(
            lambda: _get(f"http://127.0.0.1:{metrics}/health")[0], timeout_s=30,
            what="the metrics port to answer", interval_s=0.3)
        assert code == 503  # its seed is nowhere: it never joins, so it is never ready
    finally:
        proc.stop()


def test_status_json_has_owners_leaders_and_latency_per_minute(
        node: tuple[NodeProc, str]) -> None:
    code, body = _get(node[1] + "/status.json")
    doc = json.loads(body)
    assert code == 200 and doc["node"] == "n1"
    assert [m["node"] for m in doc["members"]] == ["n1", "n2", "n3"]
    owned = sorted(p for ps in doc["owners"].values() for p in ps)
    assert owned == list(range(doc["q"]))  # every partition has exactly one owner
    leaders = doc["partition_leaders"]
    assert set(leaders["known"].values()) <= {"n1", "n2", "n3"}
    assert all(leaders["known"][str(p)] == "n1" for p in leaders["leading"])
    put = doc["latency_minutes"]["ops"]["put"]
    assert len(put) == doc["latency_minutes"]["minutes"]
    assert sum(r["requests"] for r in put) >= 20 and put[-1]["minutes_ago"] == 0


def test_cluster_json_has_every_members_own_view(node: tuple[NodeProc, str]) -> None:
    def views() -> dict[str, object] | None:
        code, body = _get(node[1] + "/cluster.json")
        doc = json.loads(body) if code == 200 else {}
        nodes = doc.get("nodes", {})
        # every partition led by someone: the table logs elected once the ring settled
        led = sum(len(v.get("leading", ())) for v in nodes.values())
        all_up = all(m.get("up") for v in nodes.values() for m in v.get("members", [{}]))
        return nodes if set(nodes) == {"n1", "n2", "n3"} and led == 64 and all_up else None

    nodes = LocalCluster.wait_for(views, timeout_s=60, what="three views, every partition led")
    for name, view in nodes.items():
        assert isinstance(view, dict) and view["node"] == name, view
        assert [(m["node"], m["up"]) for m in view["members"]] == [
            ("n1", True), ("n2", True), ("n3", True)]
        assert {"trees_built", "exchanges", "current"} <= set(view["anti_entropy"])
        assert view["hints_pending"] == {} and view["handoffs"]["active"] == []


def test_cluster_json_names_a_member_that_does_not_answer(node: tuple[NodeProc, str]) -> None:
    n3 = _NODES[2]
    n3.pause()
    try:
        code, body = _get(node[1] + "/cluster.json")
    finally:
        n3.resume()
    nodes = json.loads(body)["nodes"]
    assert code == 200 and "timed out" in nodes["n3"]["error"]
    assert nodes["n2"]["node"] == "n2"  # the others are still shown


def test_the_dashboard_is_self_contained(node: tuple[NodeProc, str]) -> None:
    code, body = _get(node[1] + "/")
    html = body.decode()
    assert code == 200 and "status.json" in html and "cluster.json" in html
    assert "<script src" not in html and "https://" not in html and "//cdn" not in html
    assert "<link" not in html and "@import" not in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


ARTIFACTS = Path(os.environ.get("DYNAMOKV_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed to render the "
                    "dashboard headless (apt-get install chromium to run this test)")
def test_the_dashboard_renders_the_cluster_in_headless_chromium(node: tuple[NodeProc, str],
                                                                tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    test_cluster_json_has_every_members_own_view(node)  # every view in, every partition led
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
         f"--user-data-dir={tmp_path}", "--window-size=1400,1100", f"--screenshot={shot}",
         "--dump-dom", node[1] + "/"], capture_output=True, text=True, timeout=120, check=False)
    dom = out.stdout
    assert "dynamokv node n1" in dom, out.stderr[-2000:]
    assert '<div id="err" class="err"></div>' in dom  # both JSON pages loaded
    assert dom.count('class="own"') == 64 and dom.count('class="lead"') == 64  # the ring
    assert "none known</title>" not in dom  # every partition's leader is shown
    seen = dom[dom.index('id="seen"'):dom.index('id="ring"')]
    assert seen.count('<td class="up"') == 9  # three nodes, each seeing three members up
    assert "<td>put</td>" in dom and "<polyline" in dom  # latency per minute, charted
    assert shot.exists() and shot.stat().st_size > 10_000, "no screenshot was written"
