"""The metrics port's other pages on a real node: /health for readiness probes, /status.json,
and the dashboard (self-contained; rendered in headless Chromium when one is installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

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
    tmp = tmp_path_factory.mktemp("pages")
    port, metrics = free_ports(2)
    proc = NodeProc("n1", f"127.0.0.1:{port}", tmp / "n1", [
        sys.executable, "-m", "dynamokv", "node", "start", "--id", "n1", "--listen",
        f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{metrics}", "--engine", "memory",
        "--data-dir", str(tmp / "n1")])
    proc.start()
    base = f"http://127.0.0.1:{metrics}"
    try:
        LocalCluster.wait_for(lambda: _get(base + "/health")[0] == 200, timeout_s=30,
                              what="/health to say ready")
        yield proc, base
    finally:
        proc.stop()


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


def test_status_json_has_members_and_partition_owners(node: tuple[NodeProc, str]) -> None:
    code, body = _get(node[1] + "/status.json")
    doc = json.loads(body)
    assert code == 200 and doc["node"] == "n1"
    assert [m["node"] for m in doc["members"]] == ["n1"]
    assert sorted(doc["owners"]["n1"]) == list(range(doc["q"]))


def test_the_dashboard_is_self_contained(node: tuple[NodeProc, str]) -> None:
    code, body = _get(node[1] + "/")
    html = body.decode()
    assert code == 200 and "status.json" in html
    assert "<script src" not in html and "https://" not in html and "//cdn" not in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed to render the "
                    "dashboard headless (apt-get install chromium to run this test)")
def test_the_dashboard_renders_the_node_in_headless_chromium(node: tuple[NodeProc, str],
                                                             tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         f"--user-data-dir={tmp_path}", "--dump-dom", node[1] + "/"],
        capture_output=True, text=True, timeout=120, check=False)
    dom = out.stdout
    assert "dynamokv node n1" in dom, out.stderr[-2000:]
    assert '<div id="err"></div>' in dom  # status.json loaded without an error
    assert "<td>n1</td>" in dom and "<td>up</td>" in dom.replace(' class="up"', "")
    assert dom.count("<path") == 64  # the ring: one arc per partition
