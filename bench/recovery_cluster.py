"""Node processes for ``recovery.py``: a local cluster whose nodes can be killed, wiped, restarted.

``common.LocalCluster`` starts the whole cluster with ``dynamokv cluster up --detach``, which
suits throughput runs; the recovery benchmark needs to act on one node at a time (kill -9,
SIGTERM, delete its data directory, start it again on the same id and port), so it starts each
node itself with ``python -m dynamokv node start``, as ``tests/cluster_harness.py`` does.

Every process is started here and stopped here by PID (``RecoveryCluster.stop``, also on errors
and Ctrl-C: use it as a context manager). Only 127.0.0.1 is used. Every wait is bounded.

Status probes (``snapshot``, ``roots_agreement``, ``hints_pending``) read the nodes' own status
only: nothing here reads a key, because a read repairs the replicas it reads from and would
take work away from the background processes being measured.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import common

from dynamokv import Client
from dynamokv.core.ring import Ring

T = TypeVar("T")

STOP_WAIT_S = 10.0  # SIGTERM, then this long before SIGKILL
STATUS_TIMEOUT_S = 3.0


class WaitTimeout(RuntimeError):
    """A bounded wait ran out; the message says what was awaited and the last value seen."""


def wait_for(what: str, check: Callable[[], T | None], *, timeout_s: float,
             interval_s: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy (returned), for at most ``timeout_s``.

    An exception from ``check`` counts as "not yet"; the last one is quoted on timeout.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    for _ in range(int(timeout_s / interval_s) + 2):
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # a node not answering yet: asked again until the deadline
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    raise WaitTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}; "
                      f"last: {last!r}"[:2000])


@dataclass
class NodeProc:
    """One node: its id, address and data directory, and the process running it (if any)."""

    node_id: str
    address: str
    data_dir: Path
    log_path: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.node_id} is already running")
        with open(self.log_path, "ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only the benchmark, which then
            # stops the nodes itself, by PID.
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_WAIT_S)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it is still running after a while."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process would ignore SIGTERM
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill9()

    def wipe(self) -> None:
        """Delete the stopped node's data directory: a lost disk."""
        if self.alive:
            raise RuntimeError(f"{self.node_id} is running; stop it before wiping its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive and self.proc is not None else None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


@dataclass
class RecoveryCluster:
    """``count`` local nodes (n1..nN) in a temporary directory, removed again by ``stop``."""

    count: int = 3
    ring_size: int = 16
    n: int = 3
    r: int = 2
    w: int = 2
    engine: str = "lmdb"
    aae_interval_s: float | None = None  # None: the node's default
    start_timeout_s: float = 60.0
    log: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))
    root: Path | None = None
    nodes: list[NodeProc] = field(default_factory=list)

    def __enter__(self) -> RecoveryCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every node and wait until each sees the full ring; on failure stop them all."""
        self.root = Path(tempfile.mkdtemp(prefix="dynamokv-recovery-")).resolve()
        try:
            base = common.free_port_block(self.count, random.Random())
            addresses = [f"{common.HOST}:{base + i}" for i in range(self.count)]
            for i, address in enumerate(addresses, start=1):
                node_id = f"n{i}"
                # n1 starts the cluster; the others join through every earlier node. A node
                # restarted later keeps its ring in its data directory; a wiped one rejoins
                # through these seeds.
                seeds = [a for a in addresses if a != address] if i > 1 else []
                self.nodes.append(NodeProc(node_id, address, self.root / node_id,
                                           self.root / f"{node_id}.log",
                                           self._argv(node_id, address, seeds)))
            for node in self.nodes:
                node.start()
                self.wait_answers(node)
            self.wait_ring()
            self.wait_heartbeats()
        except BaseException:
            self.stop()
            raise

    def _argv(self, node_id: str, address: str, seeds: Sequence[str]) -> list[str]:
        assert self.root is not None
        argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", node_id,
                "--listen", address, "--data-dir", str(self.root / node_id),
                "--engine", self.engine, "--ring-size", str(self.ring_size),
                "--n", str(self.n), "--r", str(self.r), "--w", str(self.w)]
        if self.aae_interval_s is not None:
            argv += ["--aae-interval", f"{self.aae_interval_s:g}"]
        if seeds:
            argv += ["--seeds", ",".join(seeds)]
        return argv

    # ---- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL by PID) and remove the data; safe twice."""
        for node in self.nodes:
            try:
                node.stop()
            except Exception as exc:  # keep going: every other node must be stopped too
                self.log(f"stopping {node.node_id}: {exc!r}; killing it")
                node.kill9()
        for node in self.nodes:
            node.kill9()  # a no-op for the stopped ones
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # ---- access --------------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeProc:
        return next(n for n in self.nodes if n.node_id == node_id)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def live(self) -> list[NodeProc]:
        return [n for n in self.nodes if n.alive]

    def pids(self) -> list[int]:
        return [n.proc.pid for n in self.nodes if n.proc is not None and n.alive]

    def status(self, node: NodeProc, timeout_s: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
        with Client([node.address], timeout_s=timeout_s) as c:
            return c.status()

    def ring(self) -> Ring:
        for node in self.live():
            with contextlib.suppress(Exception), Client([node.address],
                                                         timeout_s=STATUS_TIMEOUT_S) as c:
                return c.ring()
        raise RuntimeError("no node answered a ring request")

    # ---- waits ---------------------------------------------------------------------------------
    def wait_answers(self, node: NodeProc, timeout_s: float | None = None) -> float:
        """Until ``node`` answers a status request; the seconds it took."""
        t0 = time.monotonic()

        def answers() -> bool:
            if not node.alive:
                raise RuntimeError(f"{node.node_id} exited; its log:\n{node.log_tail()}")
            self.status(node, timeout_s=1.0)
            return True

        try:
            wait_for(f"{node.node_id} to answer", answers,
                     timeout_s=timeout_s or self.start_timeout_s, interval_s=0.1)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{node.node_id}'s log:\n{node.log_tail()}") from None
        return time.monotonic() - t0

    def wait_ring(self, timeout_s: float = 60.0) -> None:
        """Until every live node lists every node as a member, all at one ring version."""

        def same_ring() -> bool:
            versions = set()
            for node in self.live():
                status = self.status(node)
                if len(status["members"]) != self.count or not status["joined"]:
                    return False
                versions.add(status["ring_version"])
            return len(versions) == 1

        wait_for("every node to see the same full ring", same_ring, timeout_s=timeout_s)

    def wait_heartbeats(self, timeout_s: float = 30.0) -> None:
        """Until every live node has heard from every other live node (and sees it up)."""
        live_ids = {n.node_id for n in self.live()}

        def heard() -> bool:
            for node in self.live():
                for m in self.status(node)["members"]:
                    if m["node"] in live_ids and m["node"] != node.node_id and (
                            not m["heard"] or not m["up"]):
                        return False
            return True

        wait_for("heartbeats between every pair of live nodes", heard, timeout_s=timeout_s)

    def wait_seen_down(self, victim: NodeProc, timeout_s: float = 60.0) -> float:
        """Until every live node reports ``victim`` as down; the seconds it took."""
        t0 = time.monotonic()

        def seen_down() -> bool:
            for node in self.live():
                members = {m["node"]: m for m in self.status(node)["members"]}
                if members[victim.node_id]["up"]:
                    return False
            return True

        wait_for(f"every live node to see {victim.node_id} down", seen_down,
                 timeout_s=timeout_s, interval_s=0.1)
        return time.monotonic() - t0


# ---- status probes -------------------------------------------------------------------------------


def snapshot(cluster: RecoveryCluster, nodes: Sequence[NodeProc] | None = None,
             timeout_s: float = STATUS_TIMEOUT_S) -> dict[str, dict[str, Any] | None]:
    """The status of each live node (of ``nodes``, default all), ``None`` where none came."""
    out: dict[str, dict[str, Any] | None] = {}
    for node in nodes if nodes is not None else cluster.nodes:
        if not node.alive:
            continue
        try:
            out[node.node_id] = cluster.status(node, timeout_s)
        except Exception:  # busy or still starting: reported as no answer
            out[node.node_id] = None
    return out


def hints_pending(statuses: dict[str, dict[str, Any] | None]) -> int | None:
    """Hints held in all (for any target) plus batches in flight; ``None`` if a node was silent."""
    total = 0
    for status in statuses.values():
        if status is None:
            return None
        hints = status["hints"]
        total += sum(int(v) for v in hints["pending"].values()) + int(hints["in_flight"])
    return total


def counter_sum(statuses: dict[str, dict[str, Any] | None], section: str, name: str) -> int:
    """The sum of one numeric status counter over the nodes that answered."""
    return sum(int(s[section][name]) for s in statuses.values() if s is not None)


def roots_agreement(ring: Ring, statuses: dict[str, dict[str, Any] | None], n: int,
                    among: Sequence[str] | None = None) -> tuple[int, int]:
    """(partitions whose replicas all report one Merkle root, partitions checked).

    A partition is checked among its primaries (``among`` narrows them, e.g. to the live ones).
    A replica that has not built the partition's tree yet, or did not answer, disagrees.
    """
    agree = checked = 0
    for partition in range(ring.q):
        replicas = [r for r in ring.preference_list(partition, n)
                    if among is None or r in among]
        if len(replicas) < 2:
            continue
        checked += 1
        roots: set[str | None] = set()
        for replica in replicas:
            status = statuses.get(replica)
            if status is None:
                roots.add(None)
                continue
            tree_roots = status["merkle_roots"]
            roots.add(tree_roots.get(partition, tree_roots.get(str(partition))))
        if len(roots) == 1 and None not in roots:
            agree += 1
    return agree, checked


def trees_built(statuses: dict[str, dict[str, Any] | None], node_id: str) -> int:
    status = statuses.get(node_id)
    return -1 if status is None else int(status["anti_entropy"]["trees_built"])
