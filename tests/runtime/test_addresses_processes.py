"""Real processes: listen on every interface and advertise a dialable address, start from a
config file, and run over IPv6 loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

from dynamokv import Client

pytestmark = pytest.mark.cluster


def _node(node_id: str, address: str, data_dir: Path, *extra: str) -> NodeProc:
    argv = [sys.executable, "-m", "dynamokv", "node", "start", "--engine", "memory", *extra]
    return NodeProc(node_id, address, data_dir, argv)


def _members(address: str) -> dict[str, dict[str, str]]:
    with Client([address], timeout_s=2) as c:
        return {m["node"]: m for m in c.status()["members"]}


def _run_two(n1: NodeProc, n2: NodeProc) -> dict[str, dict[str, str]]:
    n1.start()
    try:
        LocalCluster.wait_for(lambda: _members(n1.address), timeout_s=30, what="n1 up")
        n2.start()
        members = LocalCluster.wait_for(
            lambda: (m := _members(n2.address)) and len(m) == 2 and m, timeout_s=40,
            what="n2 to join n1")
        with Client([n2.address], timeout_s=5) as c:
            c.put("where", "here")
        with Client([n1.address], timeout_s=5) as c:
            assert c.get("where").values == [b"here"]
        return members
    finally:
        n2.stop()
        n1.stop()


def test_listen_everywhere_advertise_one_address_from_a_config_file(tmp_path: Path) -> None:
    p1, p2, m1 = free_ports(3)
    config = tmp_path / "n1.toml"
    config.write_text(
        f'id = "n1"\nlisten = "0.0.0.0:{p1}"\nadvertise = "127.0.0.1:{p1}"\n'
        f'metrics = "0.0.0.0:{m1}"\ndata_dir = "n1"\n')
    n1 = _node("n1", f"127.0.0.1:{p1}", tmp_path / "n1", "--config", str(config))
    n2 = _node("n2", f"127.0.0.1:{p2}", tmp_path / "n2", "--id", "n2", "--listen",
               f"0.0.0.0:{p2}", "--advertise", f"127.0.0.1:{p2}", "--data-dir",
               str(tmp_path / "n2"), "--seeds", f"127.0.0.1:{p1}")
    members = _run_two(n1, n2)
    # The ring records what peers and clients dial, never 0.0.0.0.
    assert members["n1"]["address"] == f"127.0.0.1:{p1}"
    assert members["n2"]["address"] == f"127.0.0.1:{p2}"
    assert members["n1"]["metrics"] == f"127.0.0.1:{m1}"
    assert (tmp_path / "n1").is_dir()  # data_dir relative to the config file


def test_listen_everywhere_without_advertise_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dynamokv", "node", "start", "--id", "n1", "--listen",
         "0.0.0.0:7001", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "also give --advertise" in proc.stderr


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_two_nodes_over_ipv6_loopback(tmp_path: Path) -> None:
    p1, p2, m1 = free_ports(3)
    n1 = _node("n1", f"[::1]:{p1}", tmp_path / "n1", "--id", "n1", "--listen", f"[::1]:{p1}",
               "--metrics", f"[::1]:{m1}", "--data-dir", str(tmp_path / "n1"))
    n2 = _node("n2", f"[::1]:{p2}", tmp_path / "n2", "--id", "n2", "--listen", f"[::1]:{p2}",
               "--data-dir", str(tmp_path / "n2"), "--seeds", f"[::1]:{p1}")
    n1.start()
    try:
        LocalCluster.wait_for(lambda: _members(n1.address), timeout_s=30, what="n1 up")
        with urllib.request.urlopen(f"http://[::1]:{m1}/metrics", timeout=10) as r:
            assert b"dynamokv_" in r.read()
    finally:
        n1.stop()
    members = _run_two(n1, n2)
    assert members["n2"]["address"] == f"[::1]:{p2}"
