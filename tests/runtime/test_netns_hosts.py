"""Three "machines" as network namespaces on one bridge: every node listens on 0.0.0.0:7001 of
its own host and advertises its host's address; then one host's cable is pulled and plugged
back. Needs root and `ip netns`; skipped otherwise. Everything created is removed after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

SRC = Path(__file__).resolve().parents[2] / "src"
SUBNET = "10.213.77"
HOSTS = 3


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def _why_not() -> str | None:
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"dkv-probe-{os.getpid()}"
    if _ip("netns", "add", probe, check=False).returncode != 0:
        return "cannot create network namespaces here (no CAP_SYS_ADMIN?)"
    _ip("netns", "del", probe, check=False)
    return None


REASON = _why_not()


@dataclass
class Hosts:
    tag: str
    root: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def ns(self, i: int) -> str:
        return f"dkv-{self.tag}-h{i}"

    @property
    def bridge_ns(self) -> str:
        return f"dkv-{self.tag}-br"

    def address(self, i: int) -> str:
        return f"{SUBNET}.{i}:7001"

    def create(self) -> None:
        _ip("netns", "add", self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for i in range(1, HOSTS + 1):
            _ip("netns", "add", self.ns(i))
            _ip("link", "add", "eth0", "netns", self.ns(i), "type", "veth", "peer", "name",
                f"port{i}", "netns", self.bridge_ns)
            _ip("-n", self.ns(i), "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0")
            _ip("-n", self.ns(i), "link", "set", "eth0", "up")
            _ip("-n", self.ns(i), "link", "set", "lo", "up")
            _ip("-n", self.bridge_ns, "link", "set", f"port{i}", "master", "br0")
            self.cable(i, up=True)

    def cable(self, i: int, *, up: bool) -> None:
        _ip("-n", self.bridge_ns, "link", "set", f"port{i}", "up" if up else "down")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        return env

    def start(self, i: int) -> None:
        data = self.root / f"n{i}"
        argv = ["ip", "netns", "exec", self.ns(i), sys.executable, "-m", "dynamokv", "node",
                "start", "--id", f"n{i}", "--listen", "0.0.0.0:7001", "--advertise",
                self.address(i), "--data-dir", str(data), "--engine", "memory"]
        if i > 1:
            argv += ["--seeds", self.address(1)]
        log = open(self.root / f"n{i}.log", "ab")  # noqa: SIM115
        self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env())
        log.close()

    def cli(self, i: int, *args: str) -> Any:
        """``dynamokv ARGS --json`` run on host ``i``, against its own node."""
        proc = subprocess.run(["ip", "netns", "exec", self.ns(i), sys.executable, "-m",
                               "dynamokv", *args, "--json", "--node", self.address(i)],
                              capture_output=True, text=True, timeout=60, env=self.env(),
                              check=False)
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return json.loads(proc.stdout)

    def destroy(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for name in [self.ns(i) for i in range(1, HOSTS + 1)] + [self.bridge_ns]:
            _ip("netns", "del", name, check=False)


def _until(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}"[:3000])


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    if REASON:
        pytest.skip(REASON)
    h = Hosts(str(os.getpid()), tmp_path_factory.mktemp("netns"))
    try:
        h.create()
        for i in range(1, HOSTS + 1):
            h.start(i)
            _until(lambda i=i: h.cli(i, "status", "--one"), f"n{i} to answer")
        yield h
    finally:
        h.destroy()


def _members(hosts: Hosts, i: int) -> list[dict[str, Any]]:
    """Host ``i``'s node's own view of the members (node, address, up)."""
    return list(hosts.cli(i, "status", "--one")["status"]["members"])


def _values(hosts: Hosts, i: int, key: str, *args: str) -> list[str]:
    return [v["value"] for v in hosts.cli(i, "get", key, *args)["values"]]


def _roots(hosts: Hosts, i: int) -> dict[str, str]:
    """Host ``i``'s Merkle roots per partition: equal on every host once they converged
    (three hosts, N=3: each holds every partition)."""
    return dict(hosts.cli(i, "status", "--one")["status"]["merkle_roots"])


def test_three_hosts_form_one_cluster_on_their_advertised_addresses(hosts: Hosts) -> None:
    status = _until(lambda: (s := _members(hosts, 1)) and len(s) == HOSTS and s,
                    "all three in n1's ring")
    assert {m["node"]: m["address"] for m in status} == {
        f"n{i}": hosts.address(i) for i in range(1, HOSTS + 1)}
    for i in range(1, HOSTS + 1):  # a write through every host
        hosts.cli(i, "put", f"from-{i}", f"host {i}")
    assert _values(hosts, 3, "from-1") == ["host 1"]  # (the end of the next test: all agree)


def test_a_pulled_cable_then_plugged_back(hosts: Hosts) -> None:
    hosts.cable(3, up=False)
    try:
        # n1 and n2 still make the write quorum (W=2) while n3 is cut off.
        hosts.cli(1, "put", "while-cut", "yes", "--timeout", "10")
        hosts.cli(2, "put", "while-cut-2", "yes", "--timeout", "10")
        _until(lambda: not {m["node"]: m["up"] for m in _members(hosts, 1)}["n3"],
               "n1 to see n3 down")
        assert _roots(hosts, 3) != _roots(hosts, 1)  # n3 missed those writes
    finally:
        hosts.cable(3, up=True)
    # Back on the wire: n3 gets the writes it missed (hint replay, anti-entropy), and the
    # three hosts converge: the same Merkle root for every partition.
    _until(lambda: (r := _roots(hosts, 1)) and all(_roots(hosts, i) == r for i in (2, 3)),
           "the three hosts to converge (equal Merkle roots)", timeout_s=90)
    assert _values(hosts, 3, "while-cut-2", "--r", "1") == ["yes"]
