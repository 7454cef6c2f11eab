"""Real node processes on 127.0.0.1 for integration tests: start, kill -9, restart, stop.

Every process is started by this harness and stopped by PID; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dynamokv import Client
from dynamokv.errors import DynamoKVError


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class NodeProc:
    node_id: str
    address: str
    data_dir: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.data_dir.parent / f"{self.node_id}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class LocalCluster:
    root: Path
    nodes: list[NodeProc] = field(default_factory=list)

    @staticmethod
    def start(root: Path, count: int = 3, *, engine: str = "lmdb", n: int = 3, r: int = 2,
              w: int = 2, ring_size: int = 64) -> LocalCluster:
        ports = free_ports(count)
        cluster = LocalCluster(root)
        first = f"127.0.0.1:{ports[0]}"
        for i, port in enumerate(ports, start=1):
            address = f"127.0.0.1:{port}"
            data_dir = root / f"n{i}"
            argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", f"n{i}",
                    "--listen", address, "--data-dir", str(data_dir), "--engine", engine,
                    "--ring-size", str(ring_size), "--n", str(n), "--r", str(r), "--w", str(w)]
            if i > 1:
                argv += ["--seeds", first]
            cluster.nodes.append(NodeProc(f"n{i}", address, data_dir, argv))
        try:
            for node in cluster.nodes:
                node.start()
            cluster.wait_converged()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def node(self, node_id: str) -> NodeProc:
        return next(n for n in self.nodes if n.node_id == node_id)

    def client(self, *, routing: str = "server", only: str | None = None,
               timeout_s: float = 5.0) -> Client:
        nodes = [self.node(only).address] if only else self.addresses
        return Client(nodes, routing=routing, timeout_s=timeout_s)

    def wait_converged(self, timeout_s: float = 30.0) -> None:
        """Until every live node reports the same ring version with every member in it."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                versions = set()
                for node in self.nodes:
                    if not node.alive:
                        if node.proc is not None:
                            continue
                        raise AssertionError(f"{node.node_id} is not running")
                    with Client([node.address], timeout_s=1.0) as c:
                        status = c.status()
                    last = status
                    if len(status["members"]) != len(self.nodes):
                        raise DynamoKVError("not all members yet")
                    versions.add(status["ring_version"])
                if len(versions) == 1:
                    return
            except DynamoKVError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"cluster did not converge in {timeout_s}s; last status {last}")

    def wait_up(self, node: NodeProc, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with Client([node.address], timeout_s=1.0) as c:
                    c.status()
                return
            except DynamoKVError:
                time.sleep(0.1)
        raise AssertionError(f"{node.node_id} did not come up in {timeout_s}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
