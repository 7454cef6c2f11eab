"""Real node processes on loopback for integration tests: start, kill -9, restart, stop.

Every node listens on 127.0.0.1, or with ``distinct_hosts`` node ``i`` on its own address
127.0.0.(10+i) (a node's outbound connections start from its listen address, so a firewall
rule can cut one node off from the others while test clients on 127.0.0.1 still reach it).
Every process is started by this harness and stopped by PID; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dynamokv import Client
from dynamokv.errors import DynamoKVError

T = TypeVar("T")


def host_of(index: int, distinct_hosts: bool) -> str:
    """The loopback address of the ``index``-th node (1-based): 127.0.W.(10+index) for pytest-xdist
    worker W (0 without workers), so that firewall rules between the nodes of one worker's test
    never cut those of another worker's."""
    return f"127.0.{_worker()}.{10 + index}" if distinct_hosts else "127.0.0.1"


def _worker() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw<N>" under pytest-xdist
    return int(name[2:]) if name[2:].isdigit() else 0


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
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

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets open but answers nothing."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def wipe(self) -> None:
        """Delete the (stopped) node's data directory entirely; its log stays."""
        if self.alive:
            raise AssertionError(f"{self.node_id} is running; stop it before wiping its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()  # a paused process would not act on SIGTERM
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
    engine: str = "lmdb"
    n: int = 3
    r: int = 2
    w: int = 2
    ring_size: int = 64
    extra_args: tuple[str, ...] = ()  # passed to every `node start`, e.g. --aae-interval 0.2
    distinct_hosts: bool = False  # node i on 127.0.0.(10+i) instead of all on 127.0.0.1

    def _argv(self, node_id: str, address: str, data_dir: Path, seeds: Sequence[str],
              extra_args: Sequence[str] = ()) -> list[str]:
        argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", node_id,
                "--listen", address, "--data-dir", str(data_dir), "--engine", self.engine,
                "--ring-size", str(self.ring_size), "--n", str(self.n), "--r", str(self.r),
                "--w", str(self.w), *self.extra_args, *extra_args]
        if seeds:
            argv += ["--seeds", ",".join(seeds)]
        return argv

    @staticmethod
    def start(root: Path, count: int = 3, *, engine: str = "lmdb", n: int = 3, r: int = 2,
              w: int = 2, ring_size: int = 64, extra_args: Sequence[str] = (),
              distinct_hosts: bool = False) -> LocalCluster:
        cluster = LocalCluster(root, engine=engine, n=n, r=r, w=w, ring_size=ring_size,
                               extra_args=tuple(extra_args), distinct_hosts=distinct_hosts)
        hosts = [host_of(i, distinct_hosts) for i in range(1, count + 1)]
        ports = (free_ports(count) if not distinct_hosts
                 else [free_ports(1, host)[0] for host in hosts])
        first = f"{hosts[0]}:{ports[0]}"
        for i, (host, port) in enumerate(zip(hosts, ports, strict=True), start=1):
            address = f"{host}:{port}"
            data_dir = root / f"n{i}"
            argv = cluster._argv(f"n{i}", address, data_dir, [first] if i > 1 else [])
            cluster.nodes.append(NodeProc(f"n{i}", address, data_dir, argv))
        try:
            for node in cluster.nodes:
                node.start()
            cluster.wait_converged()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def add_node(self, node_id: str | None = None, *, seeds: Sequence[str] = ("n1",),
                 extra_args: Sequence[str] = ()) -> NodeProc:
        """Start one more node (joining through the named seed nodes); returns once it answers.

        It is part of ``nodes`` from then on (``wait_converged`` expects it in the ring).
        """
        node_id = node_id or f"n{len(self.nodes) + 1}"
        host = host_of(len(self.nodes) + 1, self.distinct_hosts)
        address = f"{host}:{free_ports(1, host)[0]}"
        data_dir = self.root / node_id
        argv = self._argv(node_id, address, data_dir, [self.node(s).address for s in seeds],
                          extra_args)
        node = NodeProc(node_id, address, data_dir, argv)
        self.nodes.append(node)
        node.start()
        self.wait_up(node)
        return node

    def forget(self, node_id: str) -> None:
        """Stop a node (if running) and drop it from ``nodes``, e.g. once it left the ring."""
        node = self.node(node_id)
        node.stop()
        self.nodes.remove(node)

    def status(self, node_id: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """``node_id``'s own view (raises ``DynamoKVError`` if it does not answer)."""
        with Client([self.node(node_id).address], timeout_s=timeout_s) as c:
            return c.status()

    def statuses(self, timeout_s: float = 2.0) -> dict[str, dict[str, Any]]:
        """The status of every running node, by node id."""
        return {node.node_id: self.status(node.node_id, timeout_s)
                for node in self.nodes if node.alive}

    @staticmethod
    def wait_for(check: Callable[[], T | None], *, timeout_s: float, what: str,
                 interval_s: float = 0.2) -> T:
        """Poll ``check`` until it returns something truthy (returned), at most ``timeout_s``.

        A ``DynamoKVError`` from ``check`` (a node not answering yet) counts as "not yet". The
        assertion message carries the last value or error seen.
        """
        deadline = time.monotonic() + timeout_s
        last: object = None
        while True:
            try:
                value = check()
                if value:
                    return value
                last = value
            except DynamoKVError as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                     f"last: {last!r}"[:4000])
            time.sleep(interval_s)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def node(self, node_id: str) -> NodeProc:
        return next(n for n in self.nodes if n.node_id == node_id)

    def client(self, *, routing: str = "server", only: str | Sequence[str] | None = None,
               timeout_s: float = 5.0) -> Client:
        """A client of every node, or ``only`` of the named one(s)."""
        if isinstance(only, str):
            only = [only]
        nodes = [self.node(n).address for n in only] if only else self.addresses
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

    def wait_seen_up(self, node: NodeProc, timeout_s: float = 20.0) -> None:
        """``node`` answers, and every other running node's failure detector has seen it back
        (a coordinator skips a peer it still suspects, however briefly)."""
        self.wait_up(node, timeout_s)

        def seen() -> bool:
            for other in self.nodes:
                if other is node or not other.alive:
                    continue
                try:
                    members = self.status(other.node_id)["members"]
                except DynamoKVError:
                    return False
                if not any(m["node"] == node.node_id and m["up"] for m in members):
                    return False
            return True

        self.wait_for(seen, timeout_s=timeout_s, what=f"every node to see {node.node_id} up")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
