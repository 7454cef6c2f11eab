"""Admission control (paper 6.5), the anti-entropy half: foreground latency while Merkle
exchanges rebuild a wiped node, with the feedback loop on and off, side by side in one run.

Owns: ``run_admission_aae`` / ``plot_admission_aae`` (experiment ``admission_aae`` of
``paper.py``); may import ``paper_common``, ``paper_admission`` (its backlog writer and
throttle counter) and ``recovery_cluster``.

Two 4-node clusters run at once, one with admission control (the default) and one with
``node start --no-admission-control``; rounds alternate between them (on, off, off, on, ...).
A round: with every node up, write a backlog of large values; then run a light foreground and,
after ``PRE_S``, kill one node (SIGKILL), delete its data directory and start it again empty.
Only anti-entropy brings the bulk values back (they were written while it was up, so no hint
holds them; the foreground never reads them). Every ``POLL_S`` the round records how many of
the rebuilt node's partitions have the same Merkle root on all three replicas, and the keys
repaired so far (summed over the nodes). The foreground reads keys of every partition (written
before the wipe, so read repair gives the rebuilt node the few it is asked for) and writes only
keys of partitions the rebuilt node does not replicate: a write in flight makes replicas'
roots differ for a moment, and polls of four nodes one after another would then never see its
partitions agree. If the rebuild is not over when the foreground stops,
it waits for it (bounded), so the next round starts clean. Values of earlier rounds stay in
the cluster, so a cluster's later round rebuilds more.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import common
from paper_admission import FG_CONCURRENCY, VALUE_BYTES, _backlog, _throttled_windows
from paper_admission_common import admission_rounds, latency_panel
from paper_common import BenchCluster, Progress, Scale, closed_loop, over_time
from recovery_cluster import NodeProc, snapshot

from dynamokv.client.client import AsyncClient
from dynamokv.core.ring import Ring

N = 3
PRE_S = 3.0  # foreground with every node up before the wipe (the baseline of each round)
POLL_S = 1.0  # status polls read every node's Merkle roots: not too often
FG_KEYS = 500  # foreground reads
FG_WRITE_KEYS = 100  # foreground writes, all outside the rebuilt node's partitions


def _plan(scale: Scale) -> dict[str, Any]:
    if scale.quick:
        return {"rounds": 1, "backlog": 400, "measure_s": max(6.0, scale.seconds),
                "rebuild_timeout_s": 15.0}
    return {"rounds": 2, "backlog": 6_000, "measure_s": max(20.0, scale.seconds * 0.8),
            "rebuild_timeout_s": 120.0}


def run_admission_aae(scale: Scale, progress: Progress) -> dict[str, Any]:
    return admission_rounds(_plan(scale), {"value_bytes": VALUE_BYTES,
                                           "fg_concurrency": FG_CONCURRENCY}, PRE_S,
                            "admission: fg during AAE rebuild", progress, _round, _pool)


def _round(cluster: BenchCluster, plan: dict[str, Any], index: int, tick: Any
           ) -> dict[str, Any]:
    victim = cluster.nodes[-1]
    t0 = time.monotonic()
    asyncio.run(_backlog(cluster, plan["backlog"], index))
    backlog_s = time.monotonic() - t0
    asyncio.run(_prewrite(cluster))
    throttled = _throttled_windows(snapshot(cluster))
    ring = cluster.ring()
    samples, failures, progress = asyncio.run(_measure(cluster, ring, victim,
                                                       plan["measure_s"], tick))
    rebuilt_at = _finish(cluster, ring, victim, progress, plan["rebuild_timeout_s"])
    return {"backlog_writes": plan["backlog"], "backlog_s": round(backlog_s, 1),
            "samples": [[round(a - PRE_S, 3), round(b, 5)] for a, b in samples],
            "failures": failures, "progress": progress, "rebuild_s": rebuilt_at,
            "throttled_windows": _throttled_windows(snapshot(cluster)) - throttled}


async def _prewrite(cluster: BenchCluster) -> None:
    """The keys the foreground reads, on every replica while every node is up."""
    async with AsyncClient(cluster.addresses, routing="partition", timeout_s=5.0) as c:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await c.put(f"fg{i}", b"f" * 200, bucket="fg")
        await asyncio.gather(*(one(i) for i in range(FG_KEYS)))


def write_keys(ring: Ring, victim: str, count: int) -> list[str]:
    """``count`` foreground keys whose partitions ``victim`` does not replicate."""
    out: list[str] = []
    i = 0
    while len(out) < count:
        key = f"fgw{i}"
        if victim not in ring.preference_list(ring.partition_for("fg", key.encode()), N):
            out.append(key)
        i += 1
    return out


def in_sync(ring: Ring, statuses: dict[str, dict[str, Any] | None], victim: str
            ) -> tuple[int, int]:
    """(the victim's partitions whose N replicas all report one Merkle root, its partitions);
    a replica without that tree, or silent, disagrees."""
    agree = checked = 0
    for partition in range(ring.q):
        replicas = ring.preference_list(partition, N)
        if victim not in replicas:
            continue
        checked += 1
        roots: set[str | None] = set()
        for replica in replicas:
            status = statuses.get(replica)
            got = None if status is None else status["merkle_roots"]
            roots.add(None if got is None else got.get(str(partition), got.get(partition)))
        agree += len(roots) == 1 and None not in roots
    return agree, checked


def _repaired(statuses: dict[str, dict[str, Any] | None]) -> tuple[int, int]:
    """Keys repaired and exchanges, summed over the nodes that answered."""
    live = [s["anti_entropy"] for s in statuses.values() if s is not None]
    return sum(int(a["keys_repaired"]) for a in live), sum(int(a["exchanges"]) for a in live)


async def _measure(cluster: BenchCluster, ring: Ring, victim: NodeProc, measure_s: float,
                   tick: Any) -> tuple[list[tuple[float, float]], int, list[list[float]]]:
    """Foreground for ``PRE_S + measure_s``; the victim is killed, wiped and restarted at
    ``PRE_S``. Returns the samples (start offset, latency), the failures, and rows of
    (s since the restart, partitions in sync, of, keys repaired, exchanges)."""
    progress: list[list[float]] = []
    writes = write_keys(ring, victim.node_id, FG_WRITE_KEYS)

    async def wipe_and_poll() -> None:
        await asyncio.sleep(PRE_S)
        # The victim's counters restart from 0 with it: the base is the other nodes'.
        others = [n for n in cluster.nodes if n is not victim]
        base = _repaired(await asyncio.to_thread(snapshot, cluster, others))
        await asyncio.to_thread(victim.kill9)
        victim.wipe()
        restarted = time.monotonic()
        victim.start()
        while (elapsed := time.monotonic() - restarted) < measure_s:
            statuses = await asyncio.to_thread(snapshot, cluster)
            if statuses.get(victim.node_id) is not None:
                agree, of = in_sync(ring, statuses, victim.node_id)
                keys, exchanges = _repaired(statuses)
                progress.append([round(elapsed, 2), agree, of, keys - base[0],
                                 exchanges - base[1]])
            await asyncio.sleep(POLL_S)

    async with AsyncClient(cluster.addresses, routing="partition", timeout_s=5.0) as c:
        async def op(i: int) -> None:
            if i % 2:
                await c.put(writes[i // 2 % len(writes)], b"f" * 200, bucket="fg")
            else:
                await c.get(f"fg{i // 2 % FG_KEYS}", bucket="fg")
        await op(1)
        fg = closed_loop(op, PRE_S + measure_s, FG_CONCURRENCY, tick)
        (samples, failures), _ = await asyncio.gather(fg, wipe_and_poll())
    return samples, failures, progress


def _finish(cluster: BenchCluster, ring: Ring, victim: NodeProc, progress: list[list[float]],
            timeout_s: float) -> float | None:
    """Seconds from the restart until every partition of the victim was in sync: from the polls
    when it happened during the measurement, else by waiting for it (bounded, no foreground);
    None if it never did."""
    for row in progress:
        if row[1] == row[2]:
            return row[0]
    cluster.wait_answers(victim)
    last = progress[-1][0] if progress else 0.0
    waited_from = time.monotonic()
    while time.monotonic() - waited_from < timeout_s:
        agree, of = in_sync(ring, snapshot(cluster), victim.node_id)
        if agree == of:
            return round(last + time.monotonic() - waited_from, 1)
        time.sleep(POLL_S)
    return None


def _pool(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode's rounds together: foreground before the wipe, and from the restart until the
    rebuilt node was in sync (or the end of the measurement); rebuild times."""
    before: list[float] = []
    during: list[float] = []
    timeline: list[tuple[float, float]] = []
    rebuilding_s = 0.0
    for r in rounds:
        end = r["rebuild_s"] if r["rebuild_s"] is not None else float("inf")
        last = max((at for at, _ in r["samples"]), default=0.0)
        rebuilding_s += max(0.0, min(end, last))
        for at, lat in r["samples"]:
            if at < 0:
                before.append(lat)
            elif at < end:
                during.append(lat)
            timeline.append((at, lat))
    return {"before_wipe": common.summarize(before),
            "while_rebuilding": common.summarize(during),
            "while_rebuilding_ops_per_s": round(len(during) / rebuilding_s, 1) if rebuilding_s
            else None,
            "before_wipe_ops_per_s": round(len(before) / (PRE_S * len(rounds)), 1)
            if rounds else None,
            "rebuild_s": [r["rebuild_s"] for r in rounds],
            "keys_repaired": [r["progress"][-1][3] if r["progress"] else None for r in rounds],
            "throttled_windows": [r["throttled_windows"] for r in rounds],
            "failures": sum(r["failures"] for r in rounds),
            "over_time": over_time([(a + PRE_S, b) for a, b in timeline], 1.0)}


def plot_admission_aae(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8))
    latency_panel(a, data, "s after the wiped node restarted (anti-entropy rebuilding it)")
    for r in data["rounds_run"]:
        color = "C0" if r["mode"] == "feedback on" else "C1"
        b.plot([p[0] for p in r["progress"]], [p[1] / p[2] if p[2] else 0.0
                                               for p in r["progress"]],
               color=color, marker=".", label=f"{r['mode']} (round {r['round']})")
    b.set_xlabel("s after the restart")
    b.set_ylabel("its partitions in sync (Merkle roots)")
    b.set_ylim(-0.05, 1.05)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
