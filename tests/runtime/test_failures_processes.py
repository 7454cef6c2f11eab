"""Failure handling with real node processes on 127.0.0.1: Dynamo's "always writeable" promise.

Each test starts its own small cluster (ring size 16, a few hundred keys at most) and breaks it:
a kill -9 during writes (hinted handoff), a wiped data directory (Merkle anti-entropy), a node
joining under load and one leaving with plan/commit (ownership handoff), a paused process (the
phi-accrual detector). Every wait is bounded; every process is stopped by PID by the harness.
The last test guards a fixed failure-detector bug: a peer silent since before this node first
heard from it must still be suspected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster_harness import LocalCluster

pytestmark = pytest.mark.cluster

RING = 16
FAST_AAE = ("--aae-interval", "0.2")


def _start(root: Path, count: int = 3, **kw: Any) -> LocalCluster:
    return LocalCluster.start(root, count, ring_size=RING, **kw)


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[LocalCluster]:
    c = _start(tmp_path, 3, extra_args=FAST_AAE)
    try:
        yield c
    finally:
        c.stop()


def _pending(status: dict[str, Any], target: str) -> int:
    return int(status["hints"]["pending"].get(target, 0))


def _up(status: dict[str, Any], node: str) -> bool:
    return bool(next(m["up"] for m in status["members"] if m["node"] == node))


def _wait_heartbeats(cluster: LocalCluster) -> None:
    """Until every running node has heard from every other (the phi detector has a history)."""

    def heard() -> bool:
        statuses = cluster.statuses()
        return all(m["node"] == nid or m["heard"]
                   for nid, s in statuses.items() for m in s["members"])

    cluster.wait_for(heard, timeout_s=20, what="heartbeats between every pair of nodes")


def _hints_drained(cluster: LocalCluster, count: int) -> bool:
    statuses = cluster.statuses()
    return len(statuses) == count and all(
        not any(s["hints"]["pending"].values()) and not s["hints"]["in_flight"]
        for s in statuses.values())


# -- 1. hinted handoff ----------------------------------------------------------------------


def test_writes_while_a_node_is_down_reach_it_by_hinted_handoff(cluster3: LocalCluster) -> None:
    cluster = cluster3
    victim = cluster.node("n3")
    victim.kill9()
    with cluster.client(timeout_s=5.0) as c:
        for i in range(100):
            c.put(f"hint-{i}", f"h{i}", w=2)
    held = {nid: _pending(cluster.status(nid), "n3") for nid in ("n1", "n2")}
    assert sum(held.values()) >= 100, held  # every write left a hint for n3 somewhere

    victim.start()
    t0 = time.monotonic()
    cluster.wait_up(victim)
    cluster.wait_for(lambda: _hints_drained(cluster, 3), timeout_s=30,
                     what="hints for n3 to be replayed")
    print(f"hints held {held}, replayed {time.monotonic() - t0:.1f}s after the restart")
    replayed = sum(cluster.status(nid)["hints"]["replayed"] for nid in ("n1", "n2"))
    assert replayed >= 100
    # n3's own copy, no read through another node first: r=1 at n3 answers from n3 itself.
    with cluster.client(only="n3") as c:
        missing = [i for i in range(100)
                   if c.get(f"hint-{i}", r=1).values != [f"h{i}".encode()]]
    assert missing == []


# -- 2. anti-entropy after a lost disk ---------------------------------------------------------


def _repaired(cluster: LocalCluster) -> int:
    return sum(s["anti_entropy"]["keys_repaired"] for s in cluster.statuses().values())


def test_wiped_node_is_refilled_by_anti_entropy(cluster3: LocalCluster) -> None:
    cluster = cluster3
    with cluster.client() as c:
        for i in range(200):
            c.put(f"wipe-{i}", f"w{i}")
    victim = cluster.node("n2")
    victim.stop()
    victim.wipe()
    assert not victim.data_dir.exists()
    before = _repaired(cluster)
    old_actor = cluster.status("n1")["actor"]
    victim.start()  # same id and port, empty directory: rejoins through n1 as a new incarnation
    cluster.wait_up(victim)
    cluster.wait_converged()
    assert cluster.status("n2")["actor"] not in (old_actor, "")

    # Poll status only: a read at n2 would repair the keys it reads (read repair), and this
    # test is about anti-entropy doing it alone.
    def roots_equal() -> bool:
        roots = {nid: s["merkle_roots"] for nid, s in cluster.statuses().items()}
        return len(roots) == 3 and all(len(r) == RING for r in roots.values()) and (
            roots["n1"] == roots["n2"] == roots["n3"])

    t0 = time.monotonic()
    cluster.wait_for(roots_equal, timeout_s=60, interval_s=0.5,
                     what="equal Merkle roots for every partition on every node")
    print(f"anti-entropy refilled n2 in {time.monotonic() - t0:.1f}s")
    assert _repaired(cluster) - before >= 200
    with cluster.client(only="n2") as c:
        missing = [i for i in range(200) if c.get(f"wipe-{i}", r=1).values != [f"w{i}".encode()]]
    assert missing == []


# -- 3. a node joins under load ----------------------------------------------------------------


class Load:
    """Reads and writes from a background thread, bounded in count and time; records failures.

    Reads go to keys written before the load started (``known``) and to keys this load wrote
    and had acknowledged; any read that raises, misses such a key or returns another value is a
    failure.
    """

    def __init__(self, cluster: LocalCluster, known: dict[str, str], *, ops_max: int = 3000,
                 seconds_max: float = 90.0) -> None:
        self.cluster = cluster
        self.known = dict(known)
        self.ops_max = ops_max
        self.seconds_max = seconds_max
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.reads = 0
        self.writes = 0
        self.thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "load thread did not stop"

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds_max
        keys = sorted(self.known)
        with self.cluster.client(timeout_s=5.0) as c:
            for i in range(self.ops_max):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                if i % 3 == 0:
                    key, value = f"load-{i}", f"l{i}"
                    try:
                        c.put(key, value)
                        self.known[key] = value
                        keys.append(key)
                        self.writes += 1
                    except Exception as exc:
                        self.failures.append(f"put {key}: {type(exc).__name__}: {exc}")
                else:
                    key = keys[(i * 7919) % len(keys)]
                    try:
                        got = c.get(key)
                        self.reads += 1
                        if got.values != [self.known[key].encode()]:
                            self.failures.append(f"get {key}: found={got.found} {got.values}")
                    except Exception as exc:
                        self.failures.append(f"get {key}: {type(exc).__name__}: {exc}")
                time.sleep(0.005)


def _handoff_idle(status: dict[str, Any]) -> bool:
    return not status["handoff"]["active"] and not status["handoff"]["queued"]


def _partitions(status: dict[str, Any]) -> dict[str, int]:
    return {m["node"]: m["partitions"] for m in status["members"]}


def _read_all(cluster: LocalCluster, data: dict[str, str], nodes: list[str]) -> list[str]:
    bad = []
    for nid in nodes:
        with cluster.client(only=nid) as c:
            for key, value in data.items():
                got = c.get(key)
                if got.values != [value.encode()]:
                    bad.append(f"{nid} {key}: {got.values}")
    return bad


def test_node_joins_under_load_without_failed_reads(tmp_path: Path) -> None:
    cluster = _start(tmp_path, 3)
    try:
        data = {f"pre-{i}": f"p{i}" for i in range(150)}
        quiet = {f"quiet-{i}": f"q{i}" for i in range(100)}  # never read before the end
        with cluster.client() as c:
            for key, value in (data | quiet).items():
                c.put(key, value)
        with Load(cluster, data) as load:
            time.sleep(0.5)
            t0 = time.monotonic()
            cluster.add_node("n4", seeds=["n1"])
            cluster.wait_converged()

            stable: list[bool] = []

            def settled() -> bool:
                statuses = cluster.statuses()
                ok = (len(statuses) == 4
                      and all(_partitions(s).get("n4", 0) > 0 for s in statuses.values())
                      and all(_handoff_idle(s) for s in statuses.values())
                      and sum(s["handoff"]["completed"] for s in statuses.values()) > 0)
                stable.append(ok)
                return len(stable) >= 3 and all(stable[-3:])  # idle for three polls in a row

            cluster.wait_for(settled, timeout_s=60, interval_s=0.3,
                             what="n4 to own partitions and every handoff to finish")
            print(f"join settled in {time.monotonic() - t0:.1f}s")
            time.sleep(0.5)
        assert load.reads > 50 and load.writes > 20, (load.reads, load.writes)
        assert load.failures == []
        statuses = cluster.statuses()
        counts = _partitions(statuses["n1"])
        assert all(_partitions(s) == counts for s in statuses.values())
        assert sorted(counts) == ["n1", "n2", "n3", "n4"]
        assert max(counts.values()) - min(counts.values()) <= 1, counts
        assert sum(s["handoff"]["objects_moved"] for s in statuses.values()) > 0
        # Handoff filled n4: r=1 at n4 answers from n4's own storage for the keys it replicates
        # (first reads of these keys anywhere, so read repair cannot have put them there).
        with cluster.client(only="n4") as c:
            ring = c.ring()
            mine = [k for k in quiet
                    if "n4" in ring.preference_list(ring.partition_for("default", k.encode()), 3)]
            assert len(mine) > 30
            missing = [k for k in mine if c.get(k, r=1).values != [quiet[k].encode()]]
        assert missing == []
        assert _read_all(cluster, load.known | quiet, ["n1", "n4"]) == []
    finally:
        cluster.stop()


# -- 4. a node leaves with plan/commit ---------------------------------------------------------


def test_node_leaves_with_plan_and_commit(tmp_path: Path) -> None:
    cluster = _start(tmp_path, 4)
    try:
        data = {f"leave-{i}": f"v{i}" for i in range(150)}
        with cluster.client() as c:
            for key, value in data.items():
                c.put(key, value)
            staged = c.cluster("leave", node="n4")
            assert [s["node"] for s in staged["staged"]] == ["n4"]
            plan = c.cluster("plan")
            assert plan["transfers"], plan
            assert {t["from"] for t in plan["transfers"]} == {"n4"}, plan["transfers"]
            assert plan["partitions_moving"] == len(plan["transfers"])
            c.cluster("commit")
        t0 = time.monotonic()
        cluster.wait_for(lambda: cluster.status("n4")["left"], timeout_s=60, interval_s=0.3,
                         what="n4 to report that it left")
        print(f"leave completed in {time.monotonic() - t0:.1f}s")
        final = cluster.status("n4")
        assert final["merkle_roots"] == {}  # n4 replicates nothing any more
        assert final["hints"]["pending"] == {}
        cluster.forget("n4")
        cluster.wait_converged()
        for nid in ("n1", "n2", "n3"):
            members = cluster.status(nid)["members"]
            assert sorted(m["node"] for m in members) == ["n1", "n2", "n3"]
        # With three nodes left and N=3, each holds every key: r=1 at node k % 3 answers from
        # that node's own copy (the first read of the key anywhere, so no read repair yet).
        remaining = ["n1", "n2", "n3"]
        clients = {nid: cluster.client(only=nid) for nid in remaining}
        try:
            missing = [key for i, (key, value) in enumerate(data.items())
                       if clients[remaining[i % 3]].get(key, r=1).values != [value.encode()]]
        finally:
            for c in clients.values():
                c.close()
        assert missing == []
        assert _read_all(cluster, data, remaining) == []
    finally:
        cluster.stop()


# -- 5. a paused node ----------------------------------------------------------------------------


def test_writes_go_on_while_a_node_is_paused(cluster3: LocalCluster) -> None:
    cluster = cluster3
    victim = cluster.node("n3")
    latencies: list[float] = []
    down_at: float | None = None  # seconds into the pause when n1 and n2 suspected n3
    hinted = 0
    written = 0
    _wait_heartbeats(cluster)  # (a peer never heard from is never suspected: see below)
    try:
        victim.pause()
        paused_at = time.monotonic()
        # Clients talk to n1 and n2 only: a paused node accepts connections but never answers.
        with cluster.client(only=["n1", "n2"], timeout_s=15.0) as c:
            deadline = paused_at + 40
            # Until both coordinators suspect n3 (phi > 8 takes 2-3.5 s of silence), then 30 more:
            # those leave hints (earlier ones were sent to n3 and wait in its socket buffer).
            while written < 400 and time.monotonic() < deadline:
                t = time.monotonic()
                c.put(f"pause-{written}", f"s{written}", w=2)
                latencies.append(time.monotonic() - t)
                written += 1
                if down_at is None and written % 5 == 0:
                    if all(not _up(cluster.status(n), "n3") for n in ("n1", "n2")):
                        down_at, stop_at = time.monotonic() - paused_at, written + 30
                elif down_at is not None and written >= stop_at:
                    break
                time.sleep(0.05)
        hinted = sum(_pending(cluster.status(n), "n3") for n in ("n1", "n2"))
    finally:
        victim.resume()
    latencies.sort()
    print(f"{written} writes while n3 paused: suspected after {down_at}s, p50 "
          f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
          f"{hinted} hints")
    assert down_at is not None, "the phi detector never suspected the paused n3"
    assert latencies[-1] < 15.0
    assert hinted >= 30  # every write after the suspicion left a hint for n3

    cluster.wait_for(lambda: _hints_drained(cluster, 3), timeout_s=30,
                     what="hints for n3 to be replayed")
    with cluster.client(only="n3") as c:
        missing = [i for i in range(written)
                   if c.get(f"pause-{i}", r=1).values != [f"s{i}".encode()]]
    assert missing == []


def test_restarted_node_suspects_a_peer_that_was_already_paused(
    cluster3: LocalCluster,
) -> None:
    cluster = cluster3
    _wait_heartbeats(cluster)
    victim, observer = cluster.node("n3"), cluster.node("n2")
    try:
        victim.pause()
        observer.kill9()
        observer.start()  # its detector starts empty; n3 will never send it anything
        cluster.wait_up(observer)
        t0 = time.monotonic()
        # n1 (which had heard from n3) suspects it after ~9 s of silence; n2 should as well.
        cluster.wait_for(lambda: not _up(cluster.status("n1"), "n3"), timeout_s=20,
                         what="n1 to suspect the paused n3")
        cluster.wait_for(lambda: not _up(cluster.status("n2"), "n3"),
                         timeout_s=max(1.0, 20 - (time.monotonic() - t0)),
                         what="the restarted n2 to suspect the paused n3")
    finally:
        victim.resume()
